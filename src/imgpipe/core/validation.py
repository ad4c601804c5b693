"""Everything checked before a pixel is decoded: type by magic bytes, byte, pixel and frame caps.

Both read headers only and raise a ``RejectedError`` subclass for anything imgpipe will not
process:

- ``screen`` needs no imaging engine: magic bytes, PNG chunk structure, every animation frame's
  descriptor, HEIF/AVIF ``ispe`` sizes, and Pillow's header parser for the other formats. The API
  runs it on every direct upload; the API function ships without libvips or pillow-heif.
- ``inspect`` makes the same checks, then libvips' lazy open (pillow-heif's for HEIC), and
  returns the ``SourceInfo`` the processor renders from.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgpipe.core.bmff import declared_sizes
from imgpipe.core.formats import SourceFormat, decode_refusal, sniff
from imgpipe.core.frames import check_frames
from imgpipe.core.geometry import display_size
from imgpipe.core.png import check_png
from imgpipe.errors import (
    CorruptError,
    TooLargeBytesError,
    TooManyFramesError,
    TooManyPixelsError,
)
from imgpipe.settings import Limits

if TYPE_CHECKING:
    import pyvips

__all__ = ["Screened", "SourceInfo", "check_limits", "inspect", "screen"]

_BITS = {"uchar": 8, "char": 8, "ushort": 16, "short": 16, "uint": 32, "int": 32, "float": 32}


@dataclass(frozen=True, slots=True)
class Screened:
    """What an upload's headers say, read without an imaging engine: the stored size (for
    AVIF/HEIF the largest item's ``ispe``, before rotation) and the frames declared."""

    format: SourceFormat
    width: int
    height: int
    frames: int


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the header says about a source image (stored size, before orientation)."""

    format: SourceFormat
    width: int
    height: int
    orientation: int
    frames: int
    byte_size: int
    bands: int
    bit_depth: int
    interpretation: str
    has_alpha: bool
    exif: bytes | None
    icc: bytes | None

    @property
    def display_size(self) -> tuple[int, int]:
        return display_size(self.width, self.height, self.orientation)


def check_limits(width: int, height: int, frames: int, limits: Limits) -> None:
    """Raise if the declared geometry exceeds the limits (nothing decoded yet)."""
    if width < 1 or height < 1:
        raise CorruptError(f"header declares an empty image ({width}x{height})")
    if width > limits.max_side or height > limits.max_side:
        raise TooManyPixelsError(
            f"{width}x{height} exceeds the {limits.max_side} px per side limit"
        )
    if width * height > limits.max_pixels:
        raise TooManyPixelsError(
            f"{width}x{height} = {width * height / 1e6:.1f} MP exceeds the "
            f"{limits.max_pixels / 1e6:g} MP limit"
        )
    if frames > limits.max_frames:
        raise TooManyFramesError(f"{frames} frames exceeds the {limits.max_frames} frame limit")
    if width * height * frames > limits.max_total_pixels:
        raise TooManyFramesError(
            f"{frames} frames of {width}x{height} exceed the "
            f"{limits.max_total_pixels / 1e6:g} MP total for an animation"
        )


def screen(data: bytes, limits: Limits) -> Screened:
    """Validate ``data`` from its headers without an imaging engine; raise a ``RejectedError``
    if refused. Pixel data is never read: a file whose pixels are broken passes here and is
    ``rejected`` by the processor (``inspect``, then the decode itself)."""
    fmt, frames = _structure(data, limits)
    if fmt in _BMFF:
        sizes = declared_sizes(data)
        if not sizes:
            raise CorruptError(f"{fmt.value.upper()} declares no image size (no ispe property)")
        width, height = max(sizes, key=lambda size: size[0] * size[1])
    else:
        width, height = _pillow_size(fmt, data)
    check_limits(width, height, frames, limits)
    return Screened(format=fmt, width=width, height=height, frames=frames)


def inspect(data: bytes, limits: Limits) -> SourceInfo:
    """Validate ``data`` from its headers alone, with the engine that will decode it; raise a
    ``RejectedError`` if refused."""
    fmt, _ = _structure(data, limits)
    info = _inspect_heif(data) if fmt is SourceFormat.HEIF else _inspect_vips(data, fmt)
    check_limits(info.width, info.height, info.frames, limits)
    return info


_BMFF = (SourceFormat.AVIF, SourceFormat.HEIF)


def _structure(data: bytes, limits: Limits) -> tuple[SourceFormat, int]:
    """The checks no parser library is needed for: the format, the byte cap, PNG chunks, frame
    descriptors, HEIF/AVIF item sizes. Returns the format and the number of frames declared."""
    fmt = sniff(data)
    if len(data) > limits.max_bytes:
        raise TooLargeBytesError(f"{len(data):,} bytes exceeds the {limits.max_bytes:,} byte limit")
    if fmt is SourceFormat.PNG:
        check_png(data)
    frames = check_frames(fmt, data, limits)
    if fmt in _BMFF:
        for width, height in declared_sizes(data):
            check_limits(width, height, 1, limits)
    return fmt, frames


# Pillow's header parser for each format ``screen`` reads with it. The plugin's class is built
# directly, not through ``Image.open``: no other format is tried, and the size goes through
# ``check_limits`` rather than Pillow's process-wide decompression-bomb warning.
_PILLOW_PARSERS = {
    SourceFormat.JPEG: ("PIL.JpegImagePlugin", "JpegImageFile"),
    SourceFormat.PNG: ("PIL.PngImagePlugin", "PngImageFile"),
    SourceFormat.GIF: ("PIL.GifImagePlugin", "GifImageFile"),
    SourceFormat.WEBP: ("PIL.WebPImagePlugin", "WebPImageFile"),
    SourceFormat.TIFF: ("PIL.TiffImagePlugin", "TiffImageFile"),
}


def _pillow_size(fmt: SourceFormat, data: bytes) -> tuple[int, int]:
    module, name = _PILLOW_PARSERS[fmt]
    parser = getattr(importlib.import_module(module), name)  # on first use: not at API start
    try:
        with parser(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except Exception as exc:  # hostile headers make Pillow's parsers raise anything: all 422
        raise decode_refusal(fmt, data, str(exc) or type(exc).__name__) from exc


def _inspect_vips(data: bytes, fmt: SourceFormat) -> SourceInfo:
    from imgpipe.core.vips import VipsError, translate_error  # noqa: PLC0415 - the engine on use

    try:
        image = _open_vips(data, fmt)

        def field(name: str) -> Any:
            # get_typeof, not get_fields: PNG text keywords are Latin-1 and would not decode.
            return image.get(name) if image.get_typeof(name) else None

        orientation = field("orientation") or 1
        frames = field("n-pages") or 1
        # libvips reads TIFF/HEIF as a page stack; only GIF/WebP pages are animation frames.
        return SourceInfo(
            format=fmt,
            width=image.width,
            height=image.height,
            orientation=orientation if 1 <= orientation <= 8 else 1,
            frames=max(1, frames),
            byte_size=len(data),
            bands=image.bands,
            bit_depth=_BITS.get(image.format, 8),
            interpretation=str(image.interpretation),
            has_alpha=bool(image.hasalpha()),
            exif=field("exif-data"),
            icc=field("icc-profile-data"),
        )
    except VipsError as exc:
        raise translate_error(exc, fmt, data) from exc


def _open_vips(data: bytes, fmt: SourceFormat) -> pyvips.Image:
    """Open lazily (header only). AVIF goes straight to the HEIF loader: libvips' sniffing does
    not know the ``avis`` (animated AVIF) brand."""
    from imgpipe.core.vips import pyvips  # noqa: PLC0415

    if fmt is SourceFormat.AVIF:
        return pyvips.Image.heifload_buffer(data, access="sequential", fail_on="error")
    return pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on="error")


def _inspect_heif(data: bytes) -> SourceInfo:
    import pillow_heif  # noqa: PLC0415 - only HEIC needs it

    from imgpipe.core.vips import translate_error  # noqa: PLC0415

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        primary = heif[heif.primary_index]
        width, height = primary.size
        depth = primary.info.get("bit_depth", 8)
        bit_depth = depth if isinstance(depth, int) else 8
        return SourceInfo(
            format=SourceFormat.HEIF,
            width=width,
            height=height,
            orientation=1,  # libheif applies irot/imir itself: the size is already the display size
            frames=1,
            byte_size=len(data),
            bands=4 if primary.has_alpha else 3,
            bit_depth=bit_depth,
            interpretation="srgb" if bit_depth <= 8 else "rgb16",
            has_alpha=bool(primary.has_alpha),
            exif=_blob(primary.info.get("exif")),
            icc=_blob(primary.info.get("icc_profile")),
        )
    except (ValueError, RuntimeError, OSError, EOFError, KeyError, IndexError, SyntaxError) as exc:
        raise translate_error(exc, SourceFormat.HEIF, data) from exc


def _blob(value: object) -> bytes | None:
    return bytes(value) if isinstance(value, bytes | bytearray) and value else None
