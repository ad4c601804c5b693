"""``UploadSigner`` as an S3 presigned POST to the raw bucket.

The policy allows exactly one key, exactly one ``Content-Type`` and a body of 1..``max_bytes``
bytes until it expires; S3 checks every condition when the form arrives and, once the object is
stored, the raw bucket's event notification announces it to the jobs queue.

Tests run against moto, which does not enforce POST policies (nor signatures or expiry), so
they decode the ``policy`` field and check its conditions instead.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from imgpipe.adapters.aws._errors import translated
from imgpipe.errors import InternalError
from imgpipe.keys import RAW_PREFIX, check_key
from imgpipe.ports import PresignedPost

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3UploadSigner"]


class S3UploadSigner:
    """Presigned POST forms for ``raw/<id>`` keys in ``raw_bucket`` (signing sends no request).

    The signing role needs ``s3:PutObject`` on ``raw/*``: a presigned form carries the
    signer's authority, not more.
    """

    def __init__(self, s3_client: S3Client, raw_bucket: str) -> None:
        self._s3 = s3_client
        self.raw_bucket = raw_bucket

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int
    ) -> PresignedPost:
        if not check_key(key).startswith(RAW_PREFIX):
            raise ValueError(f"uploads go to {RAW_PREFIX} keys only, not {key!r}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        with translated(f"S3 presign POST s3://{self.raw_bucket}/{key}"):
            # boto3 adds the bucket, key and credential conditions itself.
            post = self._s3.generate_presigned_post(
                Bucket=self.raw_bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes],
                ],
                ExpiresIn=expires_s,
            )
        fields = {str(name): str(value) for name, value in post["fields"].items()}
        return PresignedPost(url=str(post["url"]), fields=fields,
                             expires_at=_expiration(fields["policy"]))  # fmt: skip


def _expiration(encoded_policy: str) -> str:
    """The policy's own expiry (``%Y-%m-%dT%H:%M:%SZ``), so the answer never disagrees with S3."""
    try:
        return str(json.loads(base64.b64decode(encoded_policy))["expiration"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InternalError("boto3 returned a POST policy without an expiration") from exc
