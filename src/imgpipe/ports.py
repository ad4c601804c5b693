"""The roles the core and the service need from the outside world, as narrow ``Protocol``s.

Adapters live in ``imgpipe.adapters.local`` (filesystem, SQLite) and ``imgpipe.adapters.aws``
(S3, DynamoDB, SQS, Rekognition);
``imgpipe.testing`` has in-memory fakes. ``imgpipe.bootstrap`` is the only place that chooses.
Every adapter of a port passes the same contract suite in ``tests/contract``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imgpipe.model import FaceBox, ImageRecord, Message, Page, Status, Tag
from imgpipe.similarity import Matches

__all__ = [
    "PREVIEW_MAX_BYTES",
    "BlobStore",
    "Cdn",
    "EventPublisher",
    "FaceFinder",
    "MetadataStore",
    "PresignedPost",
    "Queue",
    "TagSubject",
    "Tagger",
    "UploadSigner",
]


# The largest preview taggers and face finders are shown: what Rekognition reads inline
# (Image.Bytes).
PREVIEW_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TagSubject:
    """What a tagger may look at: the metadata record and a JPEG preview (<= 5 MB, no metadata)."""

    metadata: Mapping[str, Any]
    preview_jpeg: bytes


class Tagger(Protocol):
    """Labels an image.

    Contract: returns zero or more tags (names lower-case, confidence in [0, 1]); a tagger that
    cannot judge an image returns no tags rather than raising. A service outage may raise - the
    caller decides whether that fails the image - but a bad image must never make it raise.
    """

    def tag(self, subject: TagSubject) -> Sequence[Tag]: ...


class FaceFinder(Protocol):
    """Finds faces on a JPEG preview (display orientation, no metadata, <= 5 MB): where they
    are decides the focal point that cover crops keep (``imgpipe.core.focus``).

    Contract, as ``Tagger``'s: an image it cannot judge has no faces rather than raising; a
    service outage may raise (the job is retried), a bad image never does.
    """

    def find_faces(self, preview_jpeg: bytes) -> Sequence[FaceBox]: ...


class BlobStore(Protocol):
    """Objects by key, laid out like the S3 buckets: ``raw/<id>`` and ``processed/<id>/<file>``.

    Contract: keys are made by the server (``imgpipe.keys``), never from client file names; an
    invalid key raises ``ValueError``. ``put`` is atomic (readers see the old object or the new
    one, never a part) and overwrites. ``get`` of a missing key raises ``NotFoundError``;
    ``delete`` of a missing key is a no-op. ``metadata`` is a small str->str map stored beside the
    object (S3 user metadata).
    """

    def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None: ...

    def get(self, key: str) -> bytes: ...

    def head(self, key: str) -> Mapping[str, str] | None:
        """``content_type``, ``size``, ``etag`` and user metadata; ``None`` when missing."""
        ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in key order."""
        ...

    def download_url(self, key: str, filename: str, expires_s: int) -> str | None:
        """A time-limited URL that serves ``key`` directly (S3 presigned GET), or ``None`` when
        this store has none - the API then streams the bytes itself."""
        ...


class Cdn(Protocol):
    """A cache in front of the renditions (CloudFront on AWS; none locally).

    Contract: ``invalidate(paths)`` asks the cache to drop ``paths`` (``/processed/<id>/*``);
    it returns once the request is accepted (the cache forgets within minutes) and raises on
    failure, so that the caller can retry.
    """

    def invalidate(self, paths: Sequence[str]) -> None: ...


class EventPublisher(Protocol):
    """Sends image events (``imgpipe.image_events``) out: to webhooks locally, to EventBridge
    on AWS.

    Contract: ``publish`` returns once the event is durably handed over (queued for every
    webhook; accepted by EventBridge) and raises otherwise. ``stats`` is the delivery backlog
    (``visible``, ``in_flight``, ``dead``) where this side delivers, else ``None``.
    """

    def publish(self, event: Mapping[str, Any]) -> None: ...

    def stats(self) -> Mapping[str, float] | None: ...


class MetadataStore(Protocol):
    """Image records by id, with conditional status transitions (DynamoDB condition semantics).

    Contract: ``create`` raises ``ConflictError`` when the id exists. ``get`` returns ``None`` for
    an unknown id. ``update`` applies ``changes`` only when the record's status is in
    ``expected`` and, when ``if_generation`` is given, its ``generation`` equals it (else
    ``ConflictError``; unknown id: ``NotFoundError``); it returns the new record. ``list`` is
    newest first (``created_at``, then id) with an opaque cursor. ``delete`` is idempotent.
    """

    def create(self, record: ImageRecord) -> None: ...

    def get(self, image_id: str) -> ImageRecord | None: ...

    def update(
        self,
        image_id: str,
        expected: frozenset[Status],
        changes: Mapping[str, Any],
        if_generation: int | None = None,
    ) -> ImageRecord: ...

    def list(
        self,
        status: Status | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page: ...

    def find_processed_by_sha256(self, sha256: str) -> ImageRecord | None:
        """The oldest ``processed`` record with this content hash, if any."""
        ...

    def similar(self, phash: str, max_distance: int, limit: int) -> Matches:
        """Every ``processed`` record whose pHash is within ``max_distance`` bits of ``phash``
        - exactly, through the band index of ``imgpipe.similarity``, never a scan - closest
        first, then oldest; at most ``limit``."""
        ...

    def delete(self, image_id: str) -> None: ...


class Queue(Protocol):
    """A message queue with SQS semantics.

    Contract: at-least-once delivery. ``receive`` hides each returned message for the
    visibility timeout and increments its receive count; a message received more than
    ``max_receives`` times moves to the dead-letter list instead of being returned. ``receive``
    waits up to ``wait_s`` for a message (long poll) without spinning. ``delete`` and
    ``change_visibility`` take the receipt of the latest receive; a stale receipt is a no-op.
    """

    max_receives: int

    def send(self, body: Mapping[str, Any]) -> str: ...

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]: ...

    def delete(self, receipt: str) -> None: ...

    def change_visibility(self, receipt: str, visibility_s: float) -> None: ...

    def dead_letters(self) -> list[Message]:
        """The messages that exhausted their receives (receipt ``""``); they stay for an
        operator. Only the local face reads them: on AWS the dead-letter function consumes
        the dead-letter queue."""
        ...

    def stats(self) -> Mapping[str, float]:
        """Approximate counts: ``visible``, ``in_flight``, ``dead`` and ``oldest_age_s``."""
        ...


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """An upload form, shaped like an S3 presigned POST: POST ``fields`` + ``file`` to ``url``."""

    url: str
    fields: dict[str, str]
    expires_at: str


class UploadSigner(Protocol):
    """Grants one upload of one object.

    Contract: the grant allows exactly ``key``, exactly ``content_type``, a size in
    [1, ``max_bytes``] and nothing after ``expires_s`` seconds; whoever receives the upload
    (S3, or the local server) enforces every condition.
    """

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int
    ) -> PresignedPost: ...
