"""The S3 blob store's own promises, beyond the ``BlobStore`` contract suite."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import aws_support
from imgpipe.adapters.aws.s3_blob_store import S3BlobStore
from imgpipe.errors import InternalError

pytestmark = pytest.mark.aws

ID = "0" * 27 + "a"
RAW, THUMB = f"raw/{ID}", f"processed/{ID}/thumb.webp"


@pytest.fixture
def s3() -> Any:
    return aws_support.client("s3")


@pytest.fixture
def store(s3: Any) -> Iterator[S3BlobStore]:
    with aws_support.make_buckets() as (raw, processed):
        yield S3BlobStore(s3, raw, processed)


def test_raw_and_processed_keys_land_in_their_own_buckets(store: S3BlobStore, s3: Any) -> None:
    """raw/<id> goes to the raw bucket and processed/... to the processed one, keys unchanged."""
    store.put(RAW, b"original", "image/jpeg")
    store.put(THUMB, b"thumb", "image/webp")
    raw = s3.list_objects_v2(Bucket=store.raw_bucket).get("Contents", [])
    processed = s3.list_objects_v2(Bucket=store.processed_bucket).get("Contents", [])
    assert [o["Key"] for o in raw] == [RAW]
    assert [o["Key"] for o in processed] == [THUMB]


def test_non_ascii_metadata_round_trips_as_ascii_headers(store: S3BlobStore, s3: Any) -> None:
    """User metadata is percent-encoded in S3 (headers are ASCII) and decoded by head."""
    name = 'Été à Zürich "1".jpg'
    store.put(RAW, b"x", "image/jpeg", {"filename": name, "sha256": "ab" * 32})
    stored = s3.head_object(Bucket=store.raw_bucket, Key=RAW)["Metadata"]
    assert stored["filename"].isascii()
    head = store.head(RAW)
    assert head is not None
    assert (head["filename"], head["sha256"]) == (name, "ab" * 32)


def test_metadata_names_s3_would_mangle_are_refused(store: S3BlobStore) -> None:
    """A metadata name S3 would lower-case or cannot carry raises ValueError, storing nothing."""
    for bad in ("FileName", "file name", "", "né"):
        with pytest.raises(ValueError, match="metadata names"):
            store.put(RAW, b"x", "image/jpeg", {bad: "v"})
    assert store.head(RAW) is None


def test_list_ignores_objects_that_are_not_imgpipe_keys(store: S3BlobStore, s3: Any) -> None:
    """Strays in the buckets (other prefixes, invalid keys) never show up in list."""
    store.put(RAW, b"x", "image/jpeg")
    s3.put_object(Bucket=store.raw_bucket, Key=THUMB, Body=b"wrong bucket")
    s3.put_object(Bucket=store.raw_bucket, Key="raw/not-an-id", Body=b"junk")
    s3.put_object(Bucket=store.processed_bucket, Key="notes.txt", Body=b"junk")
    assert list(store.list("")) == [RAW]


def test_download_url_serves_the_object_inline(store: S3BlobStore) -> None:
    """The presigned GET fetches the bytes, typed by extension, shown inline under a filename."""
    store.put(THUMB, b"webp bytes", "application/octet-stream")
    url = store.download_url(THUMB, "café thumb.webp", 300)
    assert url is not None
    assert url.startswith(aws_support.endpoint())
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"webp bytes"
        assert response.headers["Content-Type"] == "image/webp"
        disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('inline; filename="caf_ thumb.webp"')
    assert "filename*=UTF-8''caf%C3%A9%20thumb.webp" in disposition


def test_head_reports_the_md5_etag_without_quotes(store: S3BlobStore) -> None:
    """The etag of a single-part put is the bare MD5 hex of the bytes."""
    store.put(RAW, b"some bytes", "image/png")
    head = store.head(RAW)
    assert head is not None
    assert head["etag"] == hashlib.md5(b"some bytes").hexdigest()


def test_missing_bucket_is_an_internal_error(s3: Any) -> None:
    """A bucket that does not exist is a deployment fault (InternalError), not a missing key."""
    store = S3BlobStore(s3, aws_support.unique("gone"), aws_support.unique("gone"))
    with pytest.raises(InternalError, match="NoSuchBucket"):
        store.get(RAW)
    with pytest.raises(InternalError, match="NoSuchBucket"):
        store.put(RAW, b"x", "image/jpeg")


def test_unreachable_endpoint_is_an_internal_error() -> None:
    """A connection failure surfaces as InternalError naming the operation."""
    s3 = aws_support.client("s3", url="http://127.0.0.1:9", retries={"total_max_attempts": 1})
    with pytest.raises(InternalError, match="S3 head"):
        S3BlobStore(s3, "raw-bucket", "processed-bucket").head(RAW)
