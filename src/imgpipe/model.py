"""Value types shared by the core, the ports and the faces (ground floor: no imports of ours)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "TERMINAL",
    "FaceBox",
    "ImageRecord",
    "Message",
    "Page",
    "Rendition",
    "Status",
    "Tag",
    "refusal",
    "utc_iso",
]

Status = Literal["pending", "processing", "processed", "rejected", "failed"]
TERMINAL: frozenset[Status] = frozenset({"processed", "rejected", "failed"})


@dataclass(frozen=True, slots=True)
class Tag:
    """A label on an image: ``name`` (lower-case, e.g. ``landscape``, ``color:blue``),
    ``confidence`` in [0, 1] and the ``source`` that produced it (``local``, ``rekognition``)."""

    name: str
    confidence: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": round(self.confidence, 4), "source": self.source}


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face found on an image: its box as fractions of the image's width and height (``left``,
    ``top``, ``width``, ``height`` in [0, 1], as Rekognition reports them) and ``confidence`` in
    [0, 1]."""

    left: float
    top: float
    width: float
    height: float
    confidence: float

    def in_pixels(self, width: int, height: int) -> dict[str, Any]:
        """The box in pixels of a ``width`` x ``height`` image, clipped to it."""
        left = min(max(self.left, 0.0), 1.0)
        top = min(max(self.top, 0.0), 1.0)
        right = min(max(self.left + self.width, left), 1.0)
        bottom = min(max(self.top + self.height, top), 1.0)
        x, y = round(left * width), round(top * height)
        return {"x": x, "y": y, "width": round(right * width) - x,
                "height": round(bottom * height) - y,
                "confidence": round(self.confidence, 4)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rendition:
    """One encoded rendition: ``name`` from its spec, ``format`` (jpeg/webp/avif/png), pixel size
    and the encoded bytes (metadata-free)."""

    name: str
    format: str
    width: int
    height: int
    data: bytes

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg"}.get(self.format, self.format)

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.extension}"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description without the bytes."""
        return {
            "name": self.name,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": len(self.data),
        }


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """The stored state of one uploaded image (what ``GET /images/{id}`` shows).

    ``renditions`` entries are ``{name, format, width, height, bytes, key}``; ``tags`` entries
    ``{name, confidence, source}``; ``error`` is ``{code, message}`` when rejected or failed.
    Times are ISO 8601 UTC strings.
    """

    id: str
    status: Status
    raw_key: str
    created_at: str
    filename: str | None = None
    content_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    processed_at: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    renditions: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    duplicate_of: str | None = None
    # The closest older processed image whose pHash is within the service's
    # ``near_duplicate_distance``: ``{"id", "distance"}`` (shown, never hidden).
    near_duplicate_of: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    uploaded_by: str | None = None  # the signed-in uploader's subject (the token's ``sub``)
    # Which processing attempt the record is on: ``reprocess`` adds one and stamps it on the job
    # it sends, so a dead letter of an older attempt can never fail a newer one.
    generation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Message:
    """A received queue message: ``receipt`` identifies this delivery (for delete/visibility)."""

    id: str
    receipt: str
    body: dict[str, Any]
    receive_count: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of records, newest first; ``next_cursor`` is ``None`` on the last page."""

    items: list[ImageRecord]
    next_cursor: str | None


def utc_iso(moment: datetime) -> str:
    """The one timestamp format of records and events: ISO 8601 UTC with microseconds, ``Z``
    (fixed width, so it sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def refusal(
    record: ImageRecord, expected: frozenset[Status], if_generation: int | None = None
) -> str | None:
    """Why a conditional update of ``record`` must not apply (``MetadataStore.update``'s
    condition), or ``None`` when it may: every store raises ``ConflictError`` with this text."""
    if record.status not in expected:
        return f"image {record.id} is {record.status}, expected one of {sorted(expected)}"
    if if_generation is not None and record.generation != if_generation:
        return f"image {record.id} is on generation {record.generation}, not {if_generation}"
    return None
