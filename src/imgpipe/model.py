"""Value types shared by the core, the ports and the faces (ground floor: no imports of ours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Rendition", "Tag"]


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
