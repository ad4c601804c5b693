"""Decide an upload's type from its bytes, never from its name or a client's content type.

Only an allow-list of web raster formats passes; everything else - SVG, PDF, PostScript, PSD,
BMP, ICO, DDS, archives, documents - is refused as ``unsupported_type`` before any decoder runs.
"""

from __future__ import annotations

import struct
from enum import StrEnum

from imgpipe.errors import (
    CorruptError,
    EmptyError,
    RejectedError,
    TruncatedError,
    UnsupportedTypeError,
)

__all__ = ["ACCEPTED_MIME_TYPES", "SourceFormat", "decode_refusal", "looks_truncated", "sniff"]


class SourceFormat(StrEnum):
    """The formats imgpipe accepts, with their canonical MIME types."""

    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"
    AVIF = "avif"
    HEIF = "heif"
    TIFF = "tiff"

    @property
    def mime(self) -> str:
        return _MIME[self]


_MIME = {
    SourceFormat.JPEG: "image/jpeg",
    SourceFormat.PNG: "image/png",
    SourceFormat.GIF: "image/gif",
    SourceFormat.WEBP: "image/webp",
    SourceFormat.AVIF: "image/avif",
    SourceFormat.HEIF: "image/heic",
    SourceFormat.TIFF: "image/tiff",
}

# What a client may declare for an upload: each format's MIME type, plus image/heif for HEIC.
ACCEPTED_MIME_TYPES: tuple[str, ...] = (*_MIME.values(), "image/heif")

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
# Baseline TIFF plus the two lossless codecs every reader handles: none, CCITT RLE, LZW,
# Adobe Deflate, PackBits, Deflate. JPEG-in-TIFF, JBIG, old-style JPEG and friends are refused.
_TIFF_COMPRESSIONS = {1, 2, 5, 8, 32773, 32946}
_TIFF_MAX_IFD_ENTRIES = 1000


def sniff(data: bytes) -> SourceFormat:
    """The format the magic numbers announce; raise ``EmptyError`` or ``UnsupportedTypeError``."""
    if not data:
        raise EmptyError("the upload is empty (0 bytes)")
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return SourceFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return SourceFormat.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return SourceFormat.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return SourceFormat.WEBP
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(data)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        _check_baseline_tiff(data)
        return SourceFormat.TIFF
    raise UnsupportedTypeError(f"not an accepted image type: {_describe(head)}; {_ALLOWED}")


_ALLOWED = "accepted: JPEG, PNG, GIF, WebP, AVIF, HEIC/HEIF, baseline TIFF"


def _sniff_isobmff(data: bytes) -> SourceFormat:
    (size,) = struct.unpack(">I", data[:4])
    box = data[8 : min(max(size, 16), 256)]
    brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4) if i != 4}  # skip minor version
    if brands & _AVIF_BRANDS:
        return SourceFormat.AVIF
    if brands & _HEIF_BRANDS:
        return SourceFormat.HEIF
    raise UnsupportedTypeError(f"ISO media file that is neither AVIF nor HEIC; {_ALLOWED}")


def _check_baseline_tiff(data: bytes) -> None:
    """Refuse TIFF variants outside the baseline (and multi-GB offset tricks) by reading IFD0."""
    endian = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(endian + "I", data[4:8])
        (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
        if count > _TIFF_MAX_IFD_ENTRIES:
            raise UnsupportedTypeError(f"TIFF with {count} tags in its first directory")
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, _n = struct.unpack(endian + "HHI", entry[:8])
            if tag == 259:  # Compression
                value = struct.unpack(
                    endian + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12]
                )[0]
                if value not in _TIFF_COMPRESSIONS:
                    raise UnsupportedTypeError(
                        f"TIFF compression {value} is not baseline; {_ALLOWED}"
                    )
    except struct.error as exc:
        # An unreadable directory is not a TIFF we can vouch for; the decoder never sees it.
        raise UnsupportedTypeError("TIFF whose first directory cannot be read") from exc


def looks_truncated(fmt: SourceFormat, data: bytes) -> bool:
    """True when the format's end marker is missing: tells ``truncated`` from ``corrupt``."""
    tail = data[-4096:]
    if fmt is SourceFormat.JPEG:
        return b"\xff\xd9" not in tail
    if fmt is SourceFormat.PNG:
        return b"IEND" not in tail
    if fmt is SourceFormat.GIF:
        return not data.rstrip(b"\x00").endswith(b";")
    if fmt is SourceFormat.WEBP and len(data) >= 8:
        riff_size: int = struct.unpack("<I", data[4:8])[0]
        return len(data) < riff_size + 8
    return False


_TRUNCATION_WORDS = (
    "premature end",
    "truncat",
    "unexpected end",
    "not enough data",
    "out of data",
    "short read",
    "end of file",
    "eof",
)


def decode_refusal(fmt: SourceFormat, data: bytes, detail: str) -> RejectedError:
    """A decoder's (or header parser's) complaint about ``data`` as ``truncated`` - the end
    marker is missing or the complaint says so - or else ``corrupt``."""
    lowered = detail.lower()
    if looks_truncated(fmt, data) or any(w in lowered for w in _TRUNCATION_WORDS):
        return TruncatedError(f"{fmt.value.upper()} data ends early: {detail}")
    return CorruptError(f"{fmt.value.upper()} data cannot be decoded: {detail}")


def _describe(head: bytes) -> str:
    text = head.lstrip()[:16].lower()
    for marker, name in (
        (b"<svg", "SVG"),
        (b"<?xml", "XML/SVG"),
        (b"%pdf", "PDF"),
        (b"%!", "PostScript/EPS"),
        (b"8bps", "PSD"),
        (b"bm", "BMP"),
        (b"pk\x03\x04", "ZIP archive"),
        (b"<!doctype", "HTML"),
        (b"<html", "HTML"),
    ):
        if text.startswith(marker):
            return f"looks like {name}"
    if head[:4] == b"\xc5\xd0\xd3\xc6":
        return "looks like EPS"
    if head[:4] == b"\x00\x00\x01\x00":
        return "looks like ICO"
    if head[:4] == b"DDS ":
        return "looks like DDS"
    return "unrecognised signature"
