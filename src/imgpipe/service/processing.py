"""Processing: one raw object becomes renditions, metadata and tags - or a rejection.

Idempotent on object identity (raw key + sha256): a re-delivered event for an image already in
a terminal state with the same content is acknowledged without work, and the terminal status is
written last - after the renditions - so a crash part-way is redone, never half-visible. An
image whose bytes an earlier one already had reuses that one's renditions (``duplicate_of``);
one whose pHash is close to an older processed image's records it (``near_duplicate_of``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from imgpipe.errors import ConflictError, NotFoundError, RejectedError
from imgpipe.etags import content_etag
from imgpipe.events import parse_event
from imgpipe.image_events import EventType
from imgpipe.keys import id_from_key, rendition_key
from imgpipe.model import TERMINAL, ImageRecord
from imgpipe.service._base import (
    PROCESSABLE,
    RENDITION_TYPES,
    ServiceBase,
    now_iso,
    user_focal_point,
)
from imgpipe.similarity import indexed_phash

__all__ = ["Processing"]


class Processing(ServiceBase):
    def handle_event(self, body: dict[str, Any]) -> list[ImageRecord]:
        """Process every raw object named in one S3 event notification."""
        return [r for obj in parse_event(body) if (r := self.process_object(obj.key)) is not None]

    def process_object(self, key: str) -> ImageRecord | None:
        """Process one raw object; idempotent. ``None`` when the object no longer exists."""
        image_id = id_from_key(key)
        head = self.blobs.head(key)
        if head is None:
            self._remove_renditions(image_id)  # deleted since the event was sent
            return None
        record = self.records.get(image_id) or self._adopt(image_id, key, head)
        data = self.blobs.get(key)
        sha256 = hashlib.sha256(data).hexdigest()
        if record.status in TERMINAL and record.sha256 == sha256:
            return record  # duplicate delivery: already done for this very content
        record = self.records.update(image_id, PROCESSABLE, {
            "status": "processing", "sha256": sha256, "bytes": len(data)})  # fmt: skip
        kind: EventType = "image.processed"
        try:
            try:
                done = self._render(record, data, sha256)
            except RejectedError as exc:
                changes = {"status": "rejected", "error": exc.to_dict(), "processed_at": now_iso()}
                done, kind = self.records.update(image_id, PROCESSABLE, changes), "image.rejected"
        except NotFoundError:
            # The image was deleted while it was being processed: leave nothing behind.
            if self.records.get(image_id) is None:
                self._remove_renditions(image_id)
                return None
            raise
        self._announce(kind, done)
        return done

    def _adopt(self, image_id: str, key: str, head: Any) -> ImageRecord:
        """Create the record of a raw object that has none (its creation was interrupted)."""
        record = ImageRecord(id=image_id, status="pending", raw_key=key, created_at=now_iso(),
                             filename=head.get("filename") or None,
                             content_type=head.get("content_type"))  # fmt: skip
        try:
            self.records.create(record)
        except ConflictError:
            return self.records.get(image_id) or record
        return record

    def _render(self, record: ImageRecord, data: bytes, sha256: str) -> ImageRecord:
        original = self.records.find_processed_by_sha256(sha256)
        if original is not None and self._reusable(original, record):
            renditions = self._copy_renditions(original, record.id)
            metadata, tags, duplicate_of = original.metadata, original.tags, original.id
        else:
            # Imported here: only the processing faces load the rendering engine.
            from imgpipe.core.pipeline import process  # noqa: PLC0415

            done = process(data, self.settings, self.tagger, sha256, user_focal_point(record),
                           self.faces)  # fmt: skip
            renditions = []
            for rendition in done.renditions:
                key = rendition_key(record.id, rendition.filename)
                self.blobs.put(key, rendition.data, RENDITION_TYPES[rendition.extension])
                etag = content_etag(rendition.data).strip('"')
                renditions.append({**rendition.describe(), "key": key, "etag": etag})
            metadata, tags, duplicate_of = done.metadata, [t.to_dict() for t in done.tags], None
        self._drop_stale(record, {r["key"] for r in renditions})
        near = None if duplicate_of else self._near_duplicate(record, metadata)
        return self.records.update(record.id, PROCESSABLE, {
            "status": "processed", "processed_at": now_iso(), "error": None,
            # The type the bytes are, whatever the client declared (a duplicate: its original's).
            "content_type": metadata["mime_type"],
            "width": metadata["width"], "height": metadata["height"],
            "format": metadata["format"], "metadata": metadata, "renditions": renditions,
            "tags": tags, "duplicate_of": duplicate_of, "near_duplicate_of": near})  # fmt: skip

    def _near_duplicate(
        self, record: ImageRecord, metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The closest older processed image within ``near_duplicate_distance`` of this one's
        pHash, as ``{"id", "distance"}`` - older only, so the first of a group is the one the
        others point to, however they are reprocessed."""
        phash = indexed_phash(replace(record, status="processed", metadata=metadata))
        if phash is None:
            return None
        limit = self.settings.service.near_duplicate_distance
        for found in self.records.similar(phash, limit, 50):
            other = found.record
            if (other.created_at, other.id) < (record.created_at, record.id):
                return {"id": other.id, "distance": found.distance}
        return None

    def _reusable(self, original: ImageRecord, record: ImageRecord) -> bool:
        """An older image with this content, rendered with the presets in force now."""
        wanted = {(s.name, f) for s in self.settings.renditions for f in s.formats}
        made = {(r["name"], r["format"]) for r in original.renditions}
        return (
            original.id != record.id
            and (original.created_at, original.id) < (record.created_at, record.id)
            and made == wanted
            and user_focal_point(record) is None  # its own crops: render them
        )

    def _copy_renditions(self, original: ImageRecord, image_id: str) -> list[dict[str, Any]]:
        """Reuse an identical image's renditions: copied bytes, no decoding or encoding."""
        copies = []
        for rendition in original.renditions:
            key = rendition_key(image_id, rendition["key"].rsplit("/", 1)[1])
            ext = key.rsplit(".", 1)[1]
            self.blobs.put(key, self.blobs.get(rendition["key"]), RENDITION_TYPES[ext])
            copies.append({**rendition, "key": key})
        return copies

    def _drop_stale(self, record: ImageRecord, keep: set[str]) -> None:
        for rendition in record.renditions:
            if rendition["key"] not in keep:
                self.blobs.delete(rendition["key"])
