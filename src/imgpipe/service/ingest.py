"""Ingest: an image enters - a direct upload, or a granted presigned-style upload and its claim.

Every face applies these rules the same way: the HTTP API, the local form endpoint standing in
for S3, and (through S3's own policy check) the AWS upload path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from imgpipe.core.formats import ACCEPTED_MIME_TYPES
from imgpipe.core.text import sanitize
from imgpipe.core.validation import screen
from imgpipe.errors import TooLargeBytesError, UnsupportedTypeError, UploadPolicyError
from imgpipe.events import object_created_event
from imgpipe.keys import id_from_key, new_id, raw_key
from imgpipe.model import ImageRecord
from imgpipe.ports import PresignedPost
from imgpipe.service._base import RAW_BUCKET, ServiceBase, now_iso

__all__ = ["Ingest", "UploadTicket"]


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """The answer to ``POST /uploads``: the new image id and its upload form."""

    id: str
    upload: PresignedPost


class Ingest(ServiceBase):
    def upload(
        self, data: bytes, filename: str | None = None, uploaded_by: str | None = None
    ) -> ImageRecord:
        """Validate ``data`` from its header, store it privately and queue it for processing
        (``uploaded_by``: the signed-in caller's subject, if any)."""
        cap = self.settings.service.direct_max_bytes
        if len(data) > cap:
            raise TooLargeBytesError(
                f"{len(data):,} bytes is over the {cap:,} byte limit for direct uploads; "
                "use POST /uploads for larger files"
            )
        # Headers only, without the imaging engine (the processor inspects again with it).
        info = screen(data, self.settings.limits)
        image_id = new_id()
        key = raw_key(image_id)
        sha256 = hashlib.sha256(data).hexdigest()
        name = _clean_filename(filename)
        self.blobs.put(key, data, info.format.mime, {"filename": name or "", "sha256": sha256})
        record = ImageRecord(id=image_id, status="pending", raw_key=key, created_at=now_iso(),
                             filename=name, content_type=info.format.mime, bytes=len(data),
                             sha256=sha256, uploaded_by=uploaded_by)  # fmt: skip
        self.records.create(record)
        if not self.store_notifies:
            self.queue.send(object_created_event(RAW_BUCKET, key, len(data), sha256))
        return record

    def create_upload(
        self, filename: str | None, content_type: str, size: int, uploaded_by: str | None = None
    ) -> UploadTicket:
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
                                        content_type=content_type,
                                        uploaded_by=uploaded_by))  # fmt: skip
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


def _clean_filename(filename: str | None) -> str | None:
    """A display name only (never used for storage): basename, sanitised, <= 255 bytes."""
    if not filename:
        return None
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return sanitize(base, limit=255) or None
