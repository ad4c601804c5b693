"""The use cases over the ports: ingest, process, query, delete, reprocess, reconcile.

Every face calls these - the local HTTP server and its workers, the Lambda handlers, the CLI.
Nothing here knows which adapters it runs on.

Processing is idempotent on object identity (raw key + sha256): a re-delivered event for an
image already in a terminal state with the same content is acknowledged without work, and the
terminal status is written last - after the renditions - so a crash part-way is redone, never
half-visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imgpipe.core.formats import ACCEPTED_MIME_TYPES
from imgpipe.core.metadata import sanitize
from imgpipe.core.pipeline import process
from imgpipe.core.validation import inspect
from imgpipe.errors import (
    ConflictError,
    ImgpipeError,
    NotFoundError,
    RejectedError,
    TooLargeBytesError,
    UnsupportedTypeError,
    UploadPolicyError,
)
from imgpipe.etags import content_etag
from imgpipe.events import object_created_event, parse_event
from imgpipe.keys import PROCESSED_PREFIX, RAW_PREFIX, id_from_key, new_id, raw_key, rendition_key
from imgpipe.model import TERMINAL, ImageRecord, Page, Status, utc_iso
from imgpipe.ports import BlobStore, MetadataStore, PresignedPost, Queue, Tagger, UploadSigner
from imgpipe.settings import Settings

__all__ = ["Delivery", "ImageService", "UploadTicket", "now_iso"]

log = logging.getLogger("imgpipe.service")

RAW_BUCKET = "raw"
_DOWNLOAD_URL_S = 300
_PROCESSABLE: frozenset[Status] = frozenset({"pending", "processing"})
_CONTENT_TYPES = {"jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif",
                  "png": "image/png"}  # fmt: skip


def now_iso() -> str:
    """UTC now as ISO 8601 with microseconds (sortable as text)."""
    return utc_iso(datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A rendition to send: ``redirect`` (a presigned URL) or ``data`` (the bytes)."""

    content_type: str
    etag: str
    data: bytes | None = None
    redirect: str | None = None


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """The answer to ``POST /uploads``: the new image id and its upload form."""

    id: str
    upload: PresignedPost


class ImageService:
    """The use cases, wired to one set of adapters by ``imgpipe.bootstrap``."""

    def __init__(
        self,
        blobs: BlobStore,
        records: MetadataStore,
        queue: Queue,
        tagger: Tagger,
        signer: UploadSigner,
        settings: Settings,
        store_notifies: bool = False,
    ) -> None:
        """``store_notifies``: the blob store announces new raw objects to the queue itself
        (S3 event notifications); otherwise ``upload`` sends the event (local mode)."""
        self.blobs, self.records, self.queue = blobs, records, queue
        self.tagger, self.signer, self.settings = tagger, signer, settings
        self.store_notifies = store_notifies

    # -- ingest -----------------------------------------------------------------------------

    def upload(self, data: bytes, filename: str | None = None) -> ImageRecord:
        """Validate ``data`` from its header, store it privately and queue it for processing."""
        cap = self.settings.service.direct_max_bytes
        if len(data) > cap:
            raise TooLargeBytesError(
                f"{len(data):,} bytes is over the {cap:,} byte limit for direct uploads; "
                "use POST /uploads for larger files"
            )
        info = inspect(data, self.settings.limits)
        image_id = new_id()
        key = raw_key(image_id)
        sha256 = hashlib.sha256(data).hexdigest()
        name = _clean_filename(filename)
        self.blobs.put(key, data, info.format.mime, {"filename": name or "", "sha256": sha256})
        record = ImageRecord(id=image_id, status="pending", raw_key=key, created_at=now_iso(),
                             filename=name, content_type=info.format.mime, bytes=len(data),
                             sha256=sha256)  # fmt: skip
        self.records.create(record)
        if not self.store_notifies:
            self.queue.send(object_created_event(RAW_BUCKET, key, len(data), sha256))
        return record

    def create_upload(self, filename: str | None, content_type: str, size: int) -> UploadTicket:
        """Grant one presigned-style upload of ``size`` bytes of ``content_type``."""
        if content_type not in ACCEPTED_MIME_TYPES:
            raise UnsupportedTypeError(
                f"content type {content_type!r} is not accepted; use one of "
                f"{', '.join(sorted(ACCEPTED_MIME_TYPES))}"
            )
        if size > self.settings.limits.max_bytes:
            raise TooLargeBytesError(
                f"{size:,} bytes exceeds the {self.settings.limits.max_bytes:,} byte limit"
            )
        image_id = new_id()
        key = raw_key(image_id)
        # The grant allows at most the declared size: a client cannot declare 1 KB and send 25 MB.
        post = self.signer.presign_post(key, content_type, size,
                                        self.settings.service.upload_expiry_s)  # fmt: skip
        self.records.create(ImageRecord(id=image_id, status="pending", raw_key=key,
                                        created_at=now_iso(), filename=_clean_filename(filename),
                                        content_type=content_type))  # fmt: skip
        return UploadTicket(id=image_id, upload=post)

    def claim_upload(self, key: str) -> ImageRecord:
        """The record waiting for a granted upload to ``key``; ``UploadPolicyError`` when its
        form was used already, or the upload was cancelled (deleted) or has expired."""
        if self.blobs.head(key) is not None:
            raise UploadPolicyError("this upload form has already been used")
        record = self.records.get(id_from_key(key))
        if record is None:
            raise UploadPolicyError("this upload was cancelled or has expired")
        return record

    def object_created(self, key: str) -> None:
        """Announce a stored raw object, as S3 does to SQS (the local upload endpoint calls it)."""
        head = self.blobs.head(key) or {}
        self.queue.send(object_created_event(RAW_BUCKET, key, int(head.get("size", 0)),
                                             head.get("etag", "")))  # fmt: skip

    # -- processing -------------------------------------------------------------------------

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
        record = self.records.update(image_id, _PROCESSABLE, {
            "status": "processing", "sha256": sha256, "bytes": len(data)})  # fmt: skip
        try:
            try:
                return self._render(record, data, sha256)
            except RejectedError as exc:
                changes = {"status": "rejected", "error": exc.to_dict(), "processed_at": now_iso()}
                return self.records.update(image_id, _PROCESSABLE, changes)
        except NotFoundError:
            # The image was deleted while it was being processed: leave nothing behind.
            if self.records.get(image_id) is None:
                self._remove_renditions(image_id)
                return None
            raise

    def _remove_renditions(self, image_id: str) -> None:
        for key in list(self.blobs.list(f"{PROCESSED_PREFIX}{image_id}/")):
            self.blobs.delete(key)

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
            done = process(data, self.settings, self.tagger)
            renditions = []
            for rendition in done.renditions:
                key = rendition_key(record.id, rendition.filename)
                self.blobs.put(key, rendition.data, _CONTENT_TYPES[rendition.extension])
                etag = content_etag(rendition.data).strip('"')
                renditions.append({**rendition.describe(), "key": key, "etag": etag})
            metadata, tags, duplicate_of = done.metadata, [t.to_dict() for t in done.tags], None
        self._drop_stale(record, {r["key"] for r in renditions})
        return self.records.update(record.id, _PROCESSABLE, {
            "status": "processed", "processed_at": now_iso(), "error": None,
            # The type the bytes are, whatever the client declared (a duplicate: its original's).
            "content_type": metadata["mime_type"],
            "width": metadata["width"], "height": metadata["height"],
            "format": metadata["format"], "metadata": metadata, "renditions": renditions,
            "tags": tags, "duplicate_of": duplicate_of})  # fmt: skip

    def _reusable(self, original: ImageRecord, record: ImageRecord) -> bool:
        """An older image with this content, rendered with the presets in force now."""
        wanted = {(s.name, f) for s in self.settings.renditions for f in s.formats}
        made = {(r["name"], r["format"]) for r in original.renditions}
        return (
            original.id != record.id
            and (original.created_at, original.id) < (record.created_at, record.id)
            and made == wanted
        )

    def _copy_renditions(self, original: ImageRecord, image_id: str) -> list[dict[str, Any]]:
        """Reuse an identical image's renditions: copied bytes, no decoding or encoding."""
        copies = []
        for rendition in original.renditions:
            key = rendition_key(image_id, rendition["key"].rsplit("/", 1)[1])
            ext = key.rsplit(".", 1)[1]
            self.blobs.put(key, self.blobs.get(rendition["key"]), _CONTENT_TYPES[ext])
            copies.append({**rendition, "key": key})
        return copies

    def _drop_stale(self, record: ImageRecord, keep: set[str]) -> None:
        for rendition in record.renditions:
            if rendition["key"] not in keep:
                self.blobs.delete(rendition["key"])

    def mark_failed(self, image_id: str, error: ImgpipeError) -> None:
        """Give up on an image (its job is dead-lettered); no-op when already terminal."""
        changes = {"status": "failed", "error": error.to_dict(), "processed_at": now_iso()}
        with contextlib.suppress(ConflictError, NotFoundError):
            self.records.update(image_id, _PROCESSABLE, changes)

    # -- queries and commands ---------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord:
        record = self.records.get(image_id)
        if record is None:
            raise NotFoundError(f"no image {image_id}")
        return record

    def list(self, status: Status | None = None, tag: str | None = None, limit: int = 50,
             cursor: str | None = None) -> Page:  # fmt: skip
        return self.records.list(status=status, tag=tag, limit=limit, cursor=cursor)

    def rendition(self, image_id: str, filename: str) -> Delivery:
        """How to deliver one rendition: a redirect URL where the store has one, else the
        bytes; ``NotFoundError`` when the image or rendition does not exist."""
        record = self.get(image_id)
        match = next((r for r in record.renditions if r["key"].endswith(f"/{filename}")), None)
        if match is None or record.status != "processed":
            raise NotFoundError(f"image {image_id} has no rendition {filename}")
        content_type = _CONTENT_TYPES[filename.rsplit(".", 1)[1]]
        etag = f'"{match.get("etag", "")}"'
        url = self.blobs.download_url(match["key"], f"{image_id}-{filename}", _DOWNLOAD_URL_S)
        if url is not None:
            return Delivery(content_type=content_type, etag=etag, redirect=url)
        data = self.blobs.get(match["key"])
        if etag == '""':
            etag = content_etag(data)
        return Delivery(content_type=content_type, etag=etag, data=data)

    def delete(self, image_id: str) -> None:
        """Remove the raw object, every rendition and the record; idempotent."""
        record = self.records.get(image_id)
        if record is not None:
            for rendition in record.renditions:
                self.blobs.delete(rendition["key"])
        self._remove_renditions(image_id)
        self.blobs.delete(raw_key(image_id))
        self.records.delete(image_id)

    def reprocess(self, image_id: str) -> ImageRecord:
        """Run processing again (e.g. after the presets changed)."""
        record = self.get(image_id)
        if self.blobs.head(record.raw_key) is None:
            raise NotFoundError(f"image {image_id} has no stored original to reprocess")
        record = self.records.update(image_id, TERMINAL | _PROCESSABLE,
                                     {"status": "pending", "error": None})  # fmt: skip
        self._forget_dead_letters(record.raw_key)
        self.object_created(record.raw_key)
        return record

    def _forget_dead_letters(self, key: str) -> None:
        """Drop this object's dead-lettered jobs: they must not fail the image again."""
        for message in self.queue.dead_letters():
            if key in _raw_keys(message.body):
                self.queue.delete_dead_letter(message.id)

    # -- housekeeping -----------------------------------------------------------------------

    def reconcile(self, older_than_s: float = 60.0, orphans_only: bool = False) -> int:
        """Re-announce raw objects whose record is missing or not terminal; expire stale grants.

        Covers a crash between storing an upload and enqueuing its event. At start-up (nothing
        in flight from this process) every unfinished image is re-announced; a periodic pass
        sets ``orphans_only`` and re-announces only objects with no record at all - a pending
        image may still have a job retrying, and a second job for it would outlive a later
        reprocess and fail it from the dead-letter list. Returns the number re-announced.
        """
        cutoff = utc_iso(datetime.now(UTC) - timedelta(seconds=older_than_s))
        announced = 0
        for key in list(self.blobs.list(RAW_PREFIX)):
            record = self.records.get(id_from_key(key))
            stale = not orphans_only and record is not None and record.created_at < cutoff
            if record is None or (stale and record.status not in TERMINAL):
                self.object_created(key)
                announced += 1
        self._expire_unused_grants()
        return announced

    def _expire_unused_grants(self) -> None:
        expiry = timedelta(seconds=self.settings.service.upload_expiry_s + 60)
        cutoff = utc_iso(datetime.now(UTC) - expiry)
        cursor = None
        while True:
            page = self.records.list(status="pending", limit=100, cursor=cursor)
            for record in page.items:
                if record.created_at < cutoff and self.blobs.head(record.raw_key) is None:
                    self.records.delete(record.id)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def sweep_dead_letters(self) -> int:
        """Mark the images of dead-lettered jobs ``failed``; returns how many messages it read.

        The messages stay in the dead-letter list for an operator (``reprocess`` drops an
        image's own); marking is idempotent, so sweeping again changes nothing."""
        dead = self.queue.dead_letters()
        for message in dead:
            self.fail_dead_letter(message.body)
        return len(dead)

    def fail_dead_letter(self, body: Mapping[str, Any]) -> tuple[str, ...]:
        """Mark the images named by one dead-lettered job ``failed``; return their ids
        (none when the body is not a notification of raw objects)."""
        image_ids = tuple(id_from_key(key) for key in _raw_keys(body))
        for image_id in image_ids:
            self.mark_failed(image_id, ImgpipeError(
                f"processing failed {self.queue.max_receives} times; the job went to the "
                "dead-letter queue"))  # fmt: skip
        return image_ids


def _raw_keys(body: Mapping[str, Any]) -> list[str]:
    """The raw keys an S3 notification names; ``[]`` for anything else."""
    try:
        return [obj.key for obj in parse_event(body)]
    except ImgpipeError:
        return []


def _clean_filename(filename: str | None) -> str | None:
    """A display name only (never used for storage): basename, sanitised, <= 255 bytes."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return sanitize(base, limit=255) or None
