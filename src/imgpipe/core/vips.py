"""libvips set up for untrusted input, and its errors translated into ours.

Importing this module configures the process once: every libvips loader is blocked except the
allow-listed web formats, libvips' own "untrusted" operations are blocked, the operation cache
is off (a long-lived worker must not hoard decoded images), and Pillow's decompression-bomb
warning becomes an error. No external program is ever started by either library.
"""

from __future__ import annotations

import warnings

import pyvips
from PIL import Image

from imgpipe.core.formats import SourceFormat, looks_truncated
from imgpipe.errors import CorruptError, RejectedError, TruncatedError

__all__ = ["LOADERS", "VipsError", "pyvips", "translate_error", "vips_version"]

VipsError = pyvips.Error

# The libvips loader class allowed for each sniffed format (HEIF/HEVC is decoded by pillow-heif:
# the libvips wheel ships without an HEVC decoder).
LOADERS: dict[SourceFormat, str] = {
    SourceFormat.JPEG: "VipsForeignLoadJpeg",
    SourceFormat.PNG: "VipsForeignLoadPng",
    SourceFormat.GIF: "VipsForeignLoadNsgif",
    SourceFormat.WEBP: "VipsForeignLoadWebp",
    SourceFormat.AVIF: "VipsForeignLoadHeif",
    SourceFormat.TIFF: "VipsForeignLoadTiff",
}

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


def _configure() -> None:
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for loader in LOADERS.values():
        pyvips.operation_block_set(loader, False)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def vips_version() -> str:
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def translate_error(exc: Exception, fmt: SourceFormat, data: bytes) -> RejectedError:
    """Turn a decoder failure into ``truncated`` or ``corrupt`` (both permanent rejections)."""
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    lowered = detail.lower()
    if looks_truncated(fmt, data) or any(w in lowered for w in _TRUNCATION_WORDS):
        return TruncatedError(f"{fmt.value.upper()} data ends early: {detail}")
    return CorruptError(f"{fmt.value.upper()} data cannot be decoded: {detail}")


_configure()
