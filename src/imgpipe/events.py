"""S3 "object created" event notifications: made by the local server, parsed by every processor.

Locally, a stored upload enqueues exactly the JSON that S3 sends to SQS, so the processor has one
parser for both faces. Keys arrive URL-encoded (``unquote_plus``); test events are ignored; keys
outside ``raw/`` are refused (a processed object must never trigger processing).

A job the service sends itself (reprocess, recovery) also carries ``imgpipe.generation``, the
processing attempt of the record it was sent for; S3's own notifications carry none and are the
first attempt, generation 0 (``generation_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from imgpipe.errors import BadRequestError
from imgpipe.keys import RAW_PREFIX, check_key
from imgpipe.model import utc_iso

__all__ = ["ObjectCreated", "generation_of", "object_created_event", "parse_event"]


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    """One created raw object."""

    bucket: str
    key: str
    size: int
    etag: str


def object_created_event(
    bucket: str, key: str, size: int, etag: str, generation: int = 0
) -> dict[str, Any]:
    """The S3 event notification for one ``ObjectCreated:Post``, stamped with the record's
    ``generation``."""
    return {
        "imgpipe": {"generation": generation},
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventTime": utc_iso(datetime.now(UTC)),
            "eventName": "ObjectCreated:Post",
            "s3": {
                "bucket": {"name": bucket},
                "object": {"key": quote_plus(key), "size": size, "eTag": etag},
            },
        }]
    }  # fmt: skip


def parse_event(body: Mapping[str, Any]) -> list[ObjectCreated]:
    """The created raw objects in an S3 notification; ``[]`` for ``s3:TestEvent``.

    Raises ``BadRequestError`` for anything that is not an S3 notification of raw objects.
    """
    if body.get("Event") == "s3:TestEvent":
        return []
    records = body.get("Records")
    if not isinstance(records, list):
        raise BadRequestError("not an S3 event notification (no Records list)")
    found = []
    for record in records:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            key = unquote_plus(str(s3["object"]["key"]))
            bucket = str(s3["bucket"]["name"])
            size, etag = int(s3["object"].get("size", 0)), str(s3["object"].get("eTag", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequestError(f"malformed S3 event record: {exc}") from exc
        if not key.startswith(RAW_PREFIX):
            raise BadRequestError(f"refusing to process a key outside {RAW_PREFIX}: {key[:80]!r}")
        try:
            check_key(key)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
        found.append(ObjectCreated(bucket=bucket, key=key, size=size, etag=etag))
    return found


def generation_of(body: Mapping[str, Any]) -> int:
    """The processing attempt a job was sent for: 0 for S3's own notifications."""
    stamp = body.get("imgpipe")
    value = stamp.get("generation", 0) if isinstance(stamp, Mapping) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
