"""The presigned POST policy: moto does not enforce it, so its conditions are read back here."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import aws_support
from imgpipe.adapters.aws.s3_blob_store import S3BlobStore
from imgpipe.adapters.aws.s3_upload_signer import S3UploadSigner

pytestmark = pytest.mark.aws

KEY = f"raw/{'0' * 27}a"


@pytest.fixture
def buckets() -> Iterator[tuple[str, str]]:
    with aws_support.make_buckets() as names:
        yield names


@pytest.fixture
def signer(buckets: tuple[str, str]) -> S3UploadSigner:
    return S3UploadSigner(aws_support.client("s3"), buckets[0])


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


def _conditions(policy: dict[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    exact = {k: v for c in policy["conditions"] if isinstance(c, dict) for k, v in c.items()}
    ranges = [c for c in policy["conditions"] if isinstance(c, list)]
    return exact, ranges


def test_policy_allows_exactly_one_key_type_and_size_range(
    signer: S3UploadSigner, buckets: tuple[str, str]
) -> None:
    """The policy pins bucket, key and Content-Type, and the size to [1, max_bytes]."""
    post = signer.presign_post(KEY, "image/png", 123_456, 600)
    exact, ranges = _conditions(_policy(post.fields))
    assert exact["bucket"] == buckets[0]
    assert exact["key"] == KEY
    assert exact["Content-Type"] == "image/png"
    assert ranges == [["content-length-range", 1, 123_456]]
    assert not any(r[0] == "starts-with" for r in ranges)  # no key or type prefixes allowed
    assert (post.fields["key"], post.fields["Content-Type"]) == (KEY, "image/png")
    assert post.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"


def test_policy_expires_after_the_given_seconds(signer: S3UploadSigner) -> None:
    """The policy expires expires_s from now, and expires_at is that very instant."""
    before = datetime.now(UTC).replace(microsecond=0)
    post = signer.presign_post(KEY, "image/jpeg", 1000, 900)
    expiration = _policy(post.fields)["expiration"]
    assert post.expires_at == expiration
    expires = datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=899) <= expires <= before + timedelta(seconds=902)


def test_form_posts_the_object_into_the_raw_bucket(
    signer: S3UploadSigner, buckets: tuple[str, str]
) -> None:
    """Posting the form's fields and a file stores the object under the key, with its type."""
    post = signer.presign_post(KEY, "image/png", 1000, 60)
    assert post.url.startswith(aws_support.endpoint())
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in post.fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + b"\x89PNG fake"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        post.url,
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201, 204)
    blobs = S3BlobStore(aws_support.client("s3"), *buckets)
    assert blobs.get(KEY) == b"\x89PNG fake"
    head = blobs.head(KEY)
    assert head is not None
    assert head["content_type"] == "image/png"


def test_only_raw_keys_can_be_granted(signer: S3UploadSigner) -> None:
    """A grant for a processed key, or a key imgpipe could not have made, raises ValueError."""
    for key in (f"processed/{'0' * 27}a/thumb.jpg", "raw/../x", "uploads/evil"):
        with pytest.raises(ValueError):
            signer.presign_post(key, "image/jpeg", 1000, 60)
    with pytest.raises(ValueError):
        signer.presign_post(KEY, "image/jpeg", 0, 60)
