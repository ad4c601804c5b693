"""Queries and commands on stored images: list, get, similar, deliver a rendition, delete,
reprocess, set the focal point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgpipe.errors import ConflictError, InvalidRequestError, NotFoundError
from imgpipe.etags import content_etag
from imgpipe.keys import PROCESSED_PREFIX, raw_key
from imgpipe.model import TERMINAL, ImageRecord, Page, Status
from imgpipe.service._base import PROCESSABLE, RENDITION_TYPES, ServiceBase
from imgpipe.similarity import DEFAULT_DISTANCE, Matches, indexed_phash

__all__ = ["Delivery", "Queries"]

_DOWNLOAD_URL_S = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    """A rendition to send: ``redirect`` (a presigned URL) or ``data`` (the bytes)."""

    content_type: str
    etag: str
    data: bytes | None = None
    redirect: str | None = None


class Queries(ServiceBase):
    def list(self, status: Status | None = None, tag: str | None = None, limit: int = 50,
             cursor: str | None = None) -> Page:  # fmt: skip
        return self.records.list(status=status, tag=tag, limit=limit, cursor=cursor)

    def similar(
        self, image_id: str, max_distance: int = DEFAULT_DISTANCE, limit: int = 20
    ) -> Matches:
        """The other processed images whose pHash is within ``max_distance`` bits of this
        one's, closest first (then oldest). ``ConflictError`` until the image is processed
        (only then has it a hash); ``ValueError`` for a distance out of range."""
        record = self.get(image_id)
        phash = indexed_phash(record)
        if phash is None:
            raise ConflictError(
                f"image {image_id} is {record.status}: only a processed image can be compared"
            )
        found = self.records.similar(phash, max_distance, limit + 1)
        return [s for s in found if s.record.id != image_id][:limit]

    def rendition(self, image_id: str, filename: str) -> Delivery:
        """How to deliver one rendition: a redirect URL where the store has one, else the
        bytes; ``NotFoundError`` when the image or rendition does not exist."""
        record = self.get(image_id)
        match = next((r for r in record.renditions if r["key"].endswith(f"/{filename}")), None)
        if match is None or record.status != "processed":
            raise NotFoundError(f"image {image_id} has no rendition {filename}")
        content_type = RENDITION_TYPES[filename.rsplit(".", 1)[1]]
        etag = f'"{match.get("etag", "")}"'
        url = self.blobs.download_url(match["key"], f"{image_id}-{filename}", _DOWNLOAD_URL_S)
        if url is not None:
            return Delivery(content_type=content_type, etag=etag, redirect=url)
        data = self.blobs.get(match["key"])
        if etag == '""':
            etag = content_etag(data)
        return Delivery(content_type=content_type, etag=etag, data=data)

    def delete(self, image_id: str) -> None:
        """Remove the raw object, every rendition and the record, and drop the renditions from
        the CDN; idempotent (a retry after a failed invalidation invalidates again)."""
        record = self.records.get(image_id)
        if record is not None:
            for rendition in record.renditions:
                self.blobs.delete(rendition["key"])
        self._remove_renditions(image_id)
        self.blobs.delete(raw_key(image_id))
        self.records.delete(image_id)
        if record is not None:
            self._announce("image.deleted", record)
        if self.cdn is not None:
            self.cdn.invalidate([f"/{PROCESSED_PREFIX}{image_id}/*"])

    def set_focal_point(self, image_id: str, x: int, y: int) -> ImageRecord:
        """Make (``x``, ``y``) - display pixels of the processed image - the point its cover
        crops keep, and render them again (a reprocess that keeps this point from now on).
        ``ConflictError`` until the image is processed; ``InvalidRequestError`` outside it."""
        record = self.get(image_id)
        if record.status != "processed" or not record.width or not record.height:
            raise ConflictError(
                f"image {image_id} is {record.status}: only a processed image has a focal point"
            )
        if not (0 <= x < record.width and 0 <= y < record.height):
            raise InvalidRequestError(
                f"focal point ({x}, {y}) is outside the {record.width}x{record.height} image"
            )
        point = {"x": x, "y": y, "source": "user"}
        return self.reprocess(image_id, {"metadata": {**record.metadata, "focal_point": point}})

    def reprocess(self, image_id: str, changes: Mapping[str, Any] | None = None) -> ImageRecord:
        """Run processing again (e.g. after the presets changed), as a new generation: jobs and
        dead letters of earlier attempts can no longer fail it, so nothing needs to look into
        the dead-letter queue. ``changes`` go into the record in the same write."""
        record = self.get(image_id)
        if self.blobs.head(record.raw_key) is None:
            raise NotFoundError(f"image {image_id} has no stored original to reprocess")
        record = self.records.update(image_id, TERMINAL | PROCESSABLE, {
            **(changes or {}), "status": "pending", "error": None,
            "generation": record.generation + 1})  # fmt: skip
        self.object_created(record.raw_key, record.generation)
        return record
