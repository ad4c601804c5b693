"""What every role of the service shares: the ports, the settings, and the few steps more than
one role takes (announce a raw object, drop an image's renditions, mark it failed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from imgpipe.errors import ConflictError, ImgpipeError, NotFoundError
from imgpipe.events import object_created_event, parse_event
from imgpipe.image_events import EventType, image_event
from imgpipe.keys import PROCESSED_PREFIX
from imgpipe.model import ImageRecord, Status, utc_iso
from imgpipe.ports import (
    BlobStore,
    Cdn,
    EventPublisher,
    FaceFinder,
    MetadataStore,
    Queue,
    Tagger,
    UploadSigner,
)
from imgpipe.settings import Settings

__all__ = ["PROCESSABLE", "RAW_BUCKET", "RENDITION_TYPES", "ServiceBase", "now_iso", "raw_keys",
           "user_focal_point"]  # fmt: skip

log = logging.getLogger("imgpipe.service")

RAW_BUCKET = "raw"
PROCESSABLE: frozenset[Status] = frozenset({"pending", "processing"})
RENDITION_TYPES = {"jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
                   "png": "image/png"}  # fmt: skip


def now_iso() -> str:
    """UTC now as ISO 8601 with microseconds (sortable as text)."""
    return utc_iso(datetime.now(UTC))


def raw_keys(body: Mapping[str, Any]) -> list[str]:
    """The raw keys an S3 notification names; ``[]`` for anything else."""
    try:
        return [obj.key for obj in parse_event(body)]
    except ImgpipeError:
        return []


def user_focal_point(record: ImageRecord) -> tuple[int, int] | None:
    """The focal point a user set on the image (``PUT /images/{id}/focal-point``), which every
    processing of it keeps; ``None`` when it is one the processor found (faces, attention)."""
    point = record.metadata.get("focal_point")
    if not isinstance(point, dict) or point.get("source") != "user":
        return None
    x, y = point.get("x"), point.get("y")
    return (x, y) if isinstance(x, int) and isinstance(y, int) else None


class ServiceBase:
    """The ports and settings one ``ImageService`` is wired to (by ``imgpipe.bootstrap``)."""

    def __init__(
        self,
        blobs: BlobStore,
        records: MetadataStore,
        queue: Queue,
        tagger: Tagger,
        signer: UploadSigner,
        settings: Settings,
        store_notifies: bool = False,
        cdn: Cdn | None = None,
        events: EventPublisher | None = None,
        faces: FaceFinder | None = None,
    ) -> None:
        """``store_notifies``: the blob store announces new raw objects to the queue itself
        (S3 event notifications); otherwise ``upload`` sends the event (local mode). ``cdn``:
        the cache in front of the renditions, told when an image is deleted. ``events``: where
        terminal states are announced (webhooks, EventBridge; none by default). ``faces``: finds
        the faces that place the focal point (Rekognition DetectFaces; none by default)."""
        self.blobs, self.records, self.queue = blobs, records, queue
        self.tagger, self.faces, self.signer, self.settings = tagger, faces, signer, settings
        self.store_notifies, self.cdn, self.events = store_notifies, cdn, events

    def get(self, image_id: str) -> ImageRecord:
        record = self.records.get(image_id)
        if record is None:
            raise NotFoundError(f"no image {image_id}")
        return record

    def object_created(self, key: str, generation: int = 0) -> None:
        """Announce a stored raw object, as S3 does to SQS (the local upload endpoint calls it),
        for processing attempt ``generation`` of its record."""
        head = self.blobs.head(key) or {}
        self.queue.send(object_created_event(RAW_BUCKET, key, int(head.get("size", 0)),
                                             head.get("etag", ""), generation))  # fmt: skip

    def mark_failed(self, image_id: str, error: ImgpipeError, generation: int) -> bool:
        """Give up on attempt ``generation`` of an image (its job is dead-lettered). A no-op,
        returning ``False``, when the image is already terminal, gone, or was reprocessed since
        (a newer generation: an old attempt's dead letter must not fail the new one)."""
        changes = {"status": "failed", "error": error.to_dict(), "processed_at": now_iso()}
        try:
            failed = self.records.update(image_id, PROCESSABLE, changes, if_generation=generation)
        except (ConflictError, NotFoundError):
            return False
        self._announce("image.failed", failed)
        return True

    def _announce(self, kind: EventType, record: ImageRecord) -> None:
        """Send the event of ``record`` reaching ``kind``. Right after the write that made it
        so: a publisher failure is logged, never undoes or fails the image (its state is
        already stored, and ``GET /images/{id}`` tells it)."""
        if self.events is None:
            return
        try:
            self.events.publish(image_event(kind, record))
        except Exception:  # the image is done; the event is best effort past this point
            log.exception("publishing an event failed", extra={"type": kind, "id": record.id})

    def _remove_renditions(self, image_id: str) -> None:
        for key in list(self.blobs.list(f"{PROCESSED_PREFIX}{image_id}/")):
            self.blobs.delete(key)
