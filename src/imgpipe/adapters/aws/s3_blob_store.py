"""``BlobStore`` on two S3 buckets: ``raw/<id>`` in the raw bucket, ``processed/...`` in the
processed one.

The object key is the imgpipe key itself, so ``raw/`` and ``processed/`` are also the prefixes
the IAM policies and the raw bucket's event notification are written for. Two buckets keep the
originals (private, versioned, notifying SQS) apart from the renditions, which must never
trigger processing.

Encryption is the buckets' default (SSE-S3 or the KMS key the template sets), so a put never
overrides it. S3 user metadata travels as HTTP headers and must be ASCII: values are
percent-encoded on the way in and decoded on the way out; names must be lower-case ASCII
(S3 lower-cases them anyway, which would break the round trip silently).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError

from imgpipe.adapters.aws._errors import error_code, translated
from imgpipe.errors import NotFoundError
from imgpipe.keys import PROCESSED_PREFIX, RAW_PREFIX, check_key, is_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3BlobStore"]

_META_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_CONTENT_TYPES = {"jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
                  "png": "image/png"}  # fmt: skip


class S3BlobStore:
    """Objects in ``raw_bucket`` (``raw/``) and ``processed_bucket`` (``processed/``).

    Needs ``s3:GetObject``, ``s3:PutObject``, ``s3:DeleteObject`` on the prefixes it touches and
    ``s3:ListBucket`` on both buckets - without it S3 answers 403 instead of 404 for a missing
    key, and ``head`` could not tell "missing" from "forbidden". Give it a client made with
    ``Config(signature_version="s3v4")`` (``build_aws`` does): in us-east-1 boto3 otherwise
    presigns with the legacy SigV2.
    """

    def __init__(self, s3_client: S3Client, raw_bucket: str, processed_bucket: str) -> None:
        self._s3 = s3_client
        self.raw_bucket, self.processed_bucket = raw_bucket, processed_bucket

    def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        bucket = self._bucket(key)
        encoded = _encode_metadata(metadata or {})
        with translated(f"S3 put s3://{bucket}/{key}"):
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=encoded
            )

    def get(self, key: str) -> bytes:
        bucket = self._bucket(key)
        with translated(f"S3 get s3://{bucket}/{key}"):
            try:
                response = self._s3.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    raise NotFoundError(f"no object {key}") from exc
                raise
            return response["Body"].read()

    def head(self, key: str) -> Mapping[str, str] | None:
        bucket = self._bucket(key)
        with translated(f"S3 head s3://{bucket}/{key}"):
            try:
                response = self._s3.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
        described = {name: unquote(value) for name, value in response["Metadata"].items()}
        described.update(
            content_type=response.get("ContentType", "application/octet-stream"),
            size=str(response["ContentLength"]),
            # A single-part upload's ETag is the MD5 of the bytes; S3 sends it quoted.
            etag=response["ETag"].strip('"'),
        )
        return described

    def delete(self, key: str) -> None:
        """Idempotent (S3 answers 204 for a missing key). In the versioned raw bucket this
        leaves a delete marker; the bucket's lifecycle rule expires the old version."""
        bucket = self._bucket(key)
        with translated(f"S3 delete s3://{bucket}/{key}"):
            self._s3.delete_object(Bucket=bucket, Key=key)

    def list(self, prefix: str) -> Iterator[str]:
        # Every processed key sorts before every raw key, so walking the processed bucket first
        # keeps the whole listing in key order.
        for bucket, root in (
            (self.processed_bucket, PROCESSED_PREFIX),
            (self.raw_bucket, RAW_PREFIX),
        ):
            if root.startswith(prefix) or prefix.startswith(root):
                yield from self._list(bucket, root, max(prefix, root, key=len))

    def _list(self, bucket: str, root: str, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        with translated(f"S3 list s3://{bucket}/{prefix}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.startswith(root) and is_key(key):  # strays are not our objects
                        yield key

    def download_url(self, key: str, filename: str, expires_s: int) -> str | None:
        """A presigned GET that makes the browser show ``filename`` inline with the right type.

        Signing is local (no request is sent). The URL also stops working when the signing
        credentials expire - for a Lambda role, at the end of its session - even if
        ``expires_s`` has not passed.
        """
        bucket = self._bucket(key)
        params = {"Bucket": bucket, "Key": key,
                  "ResponseContentDisposition": _inline_disposition(filename)}  # fmt: skip
        if content_type := _CONTENT_TYPES.get(key.rsplit(".", 1)[-1]):
            params["ResponseContentType"] = content_type
        with translated(f"S3 presign GET s3://{bucket}/{key}"):
            return self._s3.generate_presigned_url("get_object", Params=params,
                                                   ExpiresIn=expires_s)  # fmt: skip

    def _bucket(self, key: str) -> str:
        check_key(key)
        return self.raw_bucket if key.startswith(RAW_PREFIX) else self.processed_bucket


def _encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    for name in metadata:
        if not _META_NAME.match(name):
            raise ValueError(f"S3 metadata names must be lower-case ASCII, not {name[:80]!r}")
    return {name: quote(value, safe="") for name, value in metadata.items()}


def _inline_disposition(filename: str) -> str:
    """``inline`` with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)  # fmt: skip
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
