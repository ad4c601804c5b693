"""The metadata record of one image: what it is, what its EXIF says, and its fingerprints.

Every string that came from the file is sanitised (valid UTF-8, no control characters) and capped
at 1 KB; the whole record is capped at 16 KB. Metadata is data, never markup: faces that display
it escape it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import ImageCms

from imgpipe.core.exif import read_exif
from imgpipe.core.fingerprint import Fingerprint
from imgpipe.core.text import sanitize
from imgpipe.core.validation import SourceInfo

__all__ = ["MAX_RECORD_BYTES", "build_metadata"]

MAX_RECORD_BYTES = 16 * 1024
_ANIMATABLE = {"gif", "webp", "avif"}
# Fields dropped first, in this order, when a hostile file bloats the record past its cap.
_SHEDDABLE = ("software", "lens", "icc_profile", "model", "make")


def build_metadata(
    info: SourceInfo, sha256: str, fingerprint: Fingerprint, keep_gps: bool
) -> dict[str, Any]:
    """Assemble the record; ``width``/``height`` are the display size (after orientation)."""
    width, height = info.display_size
    record: dict[str, Any] = {
        "width": width,
        "height": height,
        "stored_width": info.width,
        "stored_height": info.height,
        "format": info.format.value,
        "mime_type": info.format.mime,
        "color_space": info.interpretation,
        "bands": info.bands,
        "bit_depth": info.bit_depth,
        "has_alpha": info.has_alpha,
        "animated": info.frames > 1 and info.format.value in _ANIMATABLE,
        "frames": info.frames,
        "bytes": info.byte_size,
        "sha256": sha256,
        "megapixels": round(width * height / 1e6, 2),
        "icc_profile": _icc_description(info.icc),
    }
    exif = read_exif(info.exif, keep_gps=keep_gps)
    exif.setdefault("has_gps", False)
    record["has_gps"] = exif.pop("has_gps")
    record["exif"] = {k: sanitize(v) if isinstance(v, str) else v for k, v in exif.items()}
    record.update(fingerprint)
    if isinstance(record["icc_profile"], str):
        record["icc_profile"] = sanitize(record["icc_profile"])
    return _cap(record)


def _icc_description(icc: bytes | None) -> str | None:
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return "unreadable"
    return description.strip() or None


def _cap(record: dict[str, Any]) -> dict[str, Any]:
    def size() -> int:
        return len(json.dumps(record, ensure_ascii=False).encode("utf-8"))

    for key in _SHEDDABLE:
        if size() <= MAX_RECORD_BYTES:
            break
        record["exif"].pop(key, None)
        if key == "icc_profile":
            record["icc_profile"] = None
    if size() > MAX_RECORD_BYTES:
        record["exif"] = {}
    return record
