"""The events imgpipe sends when an image reaches a terminal state, version 1.

Every face sends the same JSON (``image_event``): locally to the configured webhooks, on AWS to
the stack's EventBridge bus (as the ``detail``). The envelope follows CloudEvents 1.0
(``specversion``, ``id``, ``source``, ``type``, ``time``, ``dataschema``); ``data`` describes
the image. The JSON Schema is ``imgpipe/schemas/image-event.v1.json``; a new major version gets
a new ``dataschema``, fields are only ever added to a version.

Types: ``image.processed``, ``image.rejected``, ``image.failed``, ``image.deleted``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from imgpipe.model import ImageRecord, utc_iso

__all__ = ["DATASCHEMA", "EVENT_TYPES", "SOURCE", "EventType", "image_event"]

EventType = Literal["image.processed", "image.rejected", "image.failed", "image.deleted"]
EVENT_TYPES: tuple[EventType, ...] = ("image.processed", "image.rejected", "image.failed",
                                      "image.deleted")  # fmt: skip
DATASCHEMA = "urn:imgpipe:schema:image-event:1"
SOURCE = "imgpipe"


def image_event(kind: EventType, record: ImageRecord) -> dict[str, Any]:
    """The event of ``record`` reaching ``kind`` (for ``image.deleted``: as it was)."""
    data: dict[str, Any] = {
        "id": record.id,
        "status": "deleted" if kind == "image.deleted" else record.status,
        "filename": record.filename,
        "content_type": record.content_type,
        "bytes": record.bytes,
        "sha256": record.sha256,
        "width": record.width,
        "height": record.height,
        "format": record.format,
        "created_at": record.created_at,
        "processed_at": record.processed_at,
        "uploaded_by": record.uploaded_by,
        "generation": record.generation,
        "renditions": [
            {k: r[k] for k in ("name", "format", "width", "height", "bytes", "key")}
            for r in record.renditions
        ],
        "tags": sorted({str(t["name"]) for t in record.tags}),
        "duplicate_of": record.duplicate_of,
        "near_duplicate_of": record.near_duplicate_of,
        "error": record.error,
    }
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": kind,
        "time": utc_iso(datetime.now(UTC)),
        "dataschema": DATASCHEMA,
        "datacontenttype": "application/json",
        "subject": record.id,
        "data": data,
    }
