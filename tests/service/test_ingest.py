"""ImageService.upload: validated from the header, stored privately, announced once - or refused
with a typed error and no trace left behind."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

import fixtures as F
from imgpipe.errors import (
    EmptyError,
    RejectedError,
    TooLargeBytesError,
    TooManyPixelsError,
    TruncatedError,
    UnsupportedTypeError,
)
from imgpipe.events import parse_event
from imgpipe.keys import is_id, raw_key
from imgpipe.settings import Service, Settings

from .conftest import MakePipeline, Pipeline

DIRECT_CAP = 4 * 1024 * 1024


def test_upload_stores_the_original_under_its_raw_key(pipeline: Pipeline) -> None:
    """The exact bytes are kept at ``raw/<id>`` with their sniffed type and hash as metadata."""
    data = F.jpeg()
    record = pipeline.service.upload(data, "cat.jpg")

    assert is_id(record.id)
    assert record.raw_key == raw_key(record.id)
    assert pipeline.blob_keys() == [record.raw_key]
    assert pipeline.blobs.get(record.raw_key) == data
    head = pipeline.blobs.head(record.raw_key)
    assert head is not None
    assert head["content_type"] == "image/jpeg"
    assert head["sha256"] == hashlib.sha256(data).hexdigest()
    assert head["filename"] == "cat.jpg"


def test_upload_creates_a_pending_record_described_by_the_bytes(pipeline: Pipeline) -> None:
    """The record's type, size and hash come from the bytes: a PNG named .jpg is image/png."""
    data = F.png()
    record = pipeline.service.upload(data, "holiday.jpg")

    stored = pipeline.records.get(record.id)
    assert stored == record
    assert stored.status == "pending"
    assert stored.content_type == "image/png"
    assert stored.bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.filename == "holiday.jpg"
    assert (stored.processed_at, stored.renditions, stored.error) == (None, [], None)


def test_upload_enqueues_exactly_one_s3_object_created_event(pipeline: Pipeline) -> None:
    """One S3-shaped ObjectCreated notification naming the raw key is queued per upload."""
    data = F.jpeg()
    record = pipeline.service.upload(data)

    messages = pipeline.queue.receive(max_messages=10)
    assert len(messages) == 1
    (s3_record,) = messages[0].body["Records"]
    assert s3_record["eventSource"] == "aws:s3"
    assert s3_record["eventName"].startswith("ObjectCreated:")
    (created,) = parse_event(messages[0].body)
    assert (created.key, created.size) == (record.raw_key, len(data))


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        pytest.param("../../etc/passwd.jpg", "passwd.jpg", id="posix-path"),
        pytest.param("C:\\Users\\me\\cat.png", "cat.png", id="windows-path"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_upload_keeps_only_a_display_basename(
    pipeline: Pipeline, filename: str | None, expected: str | None
) -> None:
    """A client's file name is reduced to its basename and never used as a storage key."""
    record = pipeline.service.upload(F.jpeg(), filename)
    assert record.filename == expected
    assert pipeline.blob_keys() == [raw_key(record.id)]


@pytest.mark.parametrize(
    ("data", "error", "status"),
    [
        pytest.param(b"", EmptyError, 400, id="empty"),
        pytest.param(F.svg(), UnsupportedTypeError, 415, id="svg"),
        pytest.param(F.svg_bare(), UnsupportedTypeError, 415, id="svg-bare"),
        pytest.param(F.jpeg()[:20], TruncatedError, 422, id="truncated-header"),
        pytest.param(F.png_bomb(), TooManyPixelsError, 422, id="png-bomb"),
        pytest.param(F.gif_bomb(), TooManyPixelsError, 422, id="gif-bomb"),
        pytest.param(b"\xff\xd8\xff" + bytes(DIRECT_CAP), TooLargeBytesError, 413, id="over-cap"),
    ],
)
def test_refused_upload_raises_its_typed_error_and_leaves_no_trace(
    pipeline: Pipeline, data: bytes, error: type[RejectedError], status: int
) -> None:
    """Refused bytes raise the matching error; no object, no record and no job are created."""
    with pytest.raises(error) as caught:
        pipeline.service.upload(data, "x.jpg")

    assert caught.value.http_status == status
    assert pipeline.blob_keys() == []
    assert pipeline.records.list().items == []
    assert pipeline.queue.receive(max_messages=10) == []


def test_over_the_direct_cap_points_to_presigned_uploads(pipeline: Pipeline) -> None:
    """A direct upload over the 4 MiB cap is refused with a hint to use POST /uploads."""
    with pytest.raises(TooLargeBytesError, match="/uploads"):
        pipeline.service.upload(b"\xff\xd8\xff" + bytes(DIRECT_CAP))


def test_the_direct_cap_comes_from_the_settings(
    make_pipeline: MakePipeline, settings: Settings
) -> None:
    """``service.direct_max_bytes`` bounds direct uploads; a file of exactly the cap passes."""
    data = F.jpeg()
    exact = make_pipeline(settings=replace(settings, service=Service(direct_max_bytes=len(data))))
    exact.service.upload(data)

    smaller = make_pipeline(
        settings=replace(settings, service=Service(direct_max_bytes=len(data) - 1))
    )
    with pytest.raises(TooLargeBytesError):
        smaller.service.upload(data)
    assert smaller.blob_keys() == []
