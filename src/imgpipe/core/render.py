"""Execute a rendition plan with libvips: decode once (shrink-on-load), cascade down, encode.

The largest planned size is decoded straight from the bytes with ``thumbnail_buffer`` - which
applies the EXIF orientation, shrinks JPEG/WebP/AVIF while decoding and converts any embedded
ICC profile (Adobe RGB, Display P3, CMYK...) to sRGB. Each smaller rendition is resized from the
previous one. Encoders are told to keep no metadata at all: no EXIF, GPS, XMP, IPTC, ICC or text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pillow_heif

from imgpipe.core.formats import SourceFormat
from imgpipe.core.geometry import PlannedRendition, crop_origin, plan
from imgpipe.core.validation import SourceInfo
from imgpipe.core.vips import VipsError, pyvips, translate_error
from imgpipe.model import Rendition
from imgpipe.settings import Encoding, ImageFormat, RenditionSpec

__all__ = ["Rendered", "render"]

# Sample edge for placeholders, hashes and colours: enough detail, microseconds to analyse.
_SAMPLE_EDGE = 64
# Edge of the copy the focal point is found on: ~1 % of the width is plenty to place a crop.
# smartcrop costs ~8 ms CPU whatever the size (measured on the corpus photos, VIPS_CONCURRENCY=1).
_ATTENTION_EDGE = 160
_WHITE = 255.0


@dataclass(frozen=True, slots=True)
class Rendered:
    """The encoded renditions plus a small sRGB sample for analysis: ``sample`` (``H x W x 3``
    uint8, alpha flattened on white) and ``rgba`` (``H x W x 4``, straight alpha; 255 where the
    image has none) - the same pixels, for what must see transparency (ThumbHash)."""

    renditions: tuple[Rendition, ...]
    sample: np.ndarray[Any, np.dtype[np.uint8]]
    rgba: np.ndarray[Any, np.dtype[np.uint8]]
    # The point every cover crop keeps, in display pixels: the caller's, else libvips'
    # attention (edges, skin tones, saturation) on a small copy.
    focal_point: tuple[int, int]


def render(
    data: bytes,
    info: SourceInfo,
    specs: tuple[RenditionSpec, ...],
    encoding: Encoding,
    focal_point: tuple[int, int] | None = None,
) -> Rendered:
    """Decode ``data`` once and produce every planned rendition; raise on undecodable pixels.
    Cover crops keep ``focal_point`` (display pixels; found by attention when ``None``)."""
    width, height = info.display_size
    planned = plan(width, height, specs)
    try:
        base = _decode(data, info, planned[0].scaled)
        outputs: list[Rendition] = []
        current = base
        for item in planned:
            image = _resize(current, item.scaled)
            if not item.cropped:
                current = image  # cascade: the next (smaller) rendition starts from this one
            else:
                # Found on the smallest image at hand: the cascade's level before this crop.
                focal_point = focal_point or _attention(current, (width, height))
                focus = ((focal_point[0] + 0.5) / width, (focal_point[1] + 0.5) / height)
                left, top = crop_origin(item.scaled, item.size, focus)
                image = image.crop(left, top, *item.size)
            outputs.extend(_encode(image, item, fmt, encoding) for fmt in item.spec.formats)
        focal_point = focal_point or _attention(current, (width, height))  # no crops: smallest
        sample, rgba = _sample(current)
    except VipsError as exc:
        raise translate_error(exc, info.format, data) from exc
    order = {s.name: i for i, s in enumerate(specs)}
    outputs.sort(key=lambda r: order[r.name])
    return Rendered(renditions=tuple(outputs), sample=sample, rgba=rgba, focal_point=focal_point)


def _attention(image: pyvips.Image, display: tuple[int, int]) -> tuple[int, int]:
    """The most salient point of ``image``, in ``display`` pixels: libvips' attention
    strategy (``smartcrop``'s ``attention_x/y``) on a copy at most ``_ATTENTION_EDGE`` wide."""
    small = image.thumbnail_image(_ATTENTION_EDGE, height=_ATTENTION_EDGE)
    if small.hasalpha():
        small = small.flatten(background=[_WHITE] * (small.bands - 1))
    window = (max(1, small.width // 4), max(1, small.height // 4))
    _, found = small.smartcrop(*window, interesting="attention", attention_x=True,
                               attention_y=True)  # fmt: skip
    x = int(found["attention_x"] * display[0] / small.width)
    y = int(found["attention_y"] * display[1] / small.height)
    return min(x, display[0] - 1), min(y, display[1] - 1)


def _decode(data: bytes, info: SourceInfo, size: tuple[int, int]) -> pyvips.Image:
    """Decode at (close to) ``size``, oriented, in 8-bit sRGB, held in memory."""
    width, height = size
    # Colour-manage only when there is something to convert. For a profile-less 8-bit sRGB
    # source the sRGB -> sRGB transform is an identity (pixel-identical output), yet libvips
    # still runs it per output pixel: 0.4-0.9 s CPU per 8 MP+ photo, most of the decode time.
    profile = {"export_profile": "srgb"} if _needs_colour_management(info) else {}
    if info.format in (SourceFormat.HEIF, SourceFormat.AVIF):
        # libheif applies irot/imir itself, and neither format shrinks on load, so decoding
        # first loses nothing. AVIF goes to its loader by name: libvips' sniffing misses the
        # ``avis`` (animated AVIF) brand.
        source = (
            _heif_to_vips(data)
            if info.format is SourceFormat.HEIF
            else pyvips.Image.heifload_buffer(data, fail_on="error")
        )
        image = source.thumbnail_image(
            width, height=height, size="force", no_rotate=True, **profile
        )
    elif (shrink := _jpeg_shrink(info, size)) > 1:
        # libvips' thumbnail keeps a factor of 2 for its own resize, so a 22 MP JPEG bound for
        # 2048 px would be decoded at full size. Shrinking in the decoder (DCT scaling, like
        # sharp's fastShrinkOnLoad) halves its peak memory and CPU; lanczos3 does the rest.
        loaded = pyvips.Image.new_from_buffer(
            data, "", access="sequential", fail_on="error", shrink=shrink
        )
        image = loaded.thumbnail_image(width, height=height, size="force", **profile)
    else:
        image = pyvips.Image.thumbnail_buffer(
            data,
            width,
            height=height,
            size="force",
            option_string="fail_on=error",
            **profile,
        )
    return _to_srgb8(image).copy_memory()


def _jpeg_shrink(info: SourceInfo, size: tuple[int, int]) -> int:
    """The largest JPEG shrink-on-load factor (8, 4, 2) that stays at or above ``size``."""
    if info.format is not SourceFormat.JPEG:
        return 1
    factor = min(info.display_size[0] / size[0], info.display_size[1] / size[1])
    return next((k for k in (8, 4, 2) if factor >= k), 1)


def _needs_colour_management(info: SourceInfo) -> bool:
    """An embedded ICC profile, or pixels that are not plain sRGB (CMYK, grey, 16-bit...)."""
    return info.icc is not None or info.interpretation != "srgb"


def _heif_to_vips(data: bytes) -> pyvips.Image:
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        primary = heif[heif.primary_index]
        array = np.asarray(primary)
    except (ValueError, RuntimeError, OSError, EOFError, SyntaxError) as exc:
        raise translate_error(exc, SourceFormat.HEIF, data) from exc
    image = pyvips.Image.new_from_array(array, interpretation="srgb")
    if icc := primary.info.get("icc_profile"):
        image = image.copy()
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return image


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """Bring any decoded image to 8-bit sRGB (or 8-bit grey), alpha kept."""
    interpretation = str(image.interpretation)
    if interpretation in ("grey16", "b-w"):
        if interpretation == "grey16" or image.format != "uchar":
            image = image.colourspace("b-w")
    elif interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _resize(image: pyvips.Image, size: tuple[int, int]) -> pyvips.Image:
    width, height = size
    if (image.width, image.height) == (width, height):
        return image
    hscale, vscale = width / image.width, height / image.height
    if image.hasalpha():
        # Resample premultiplied so transparent pixels do not bleed their colour into edges.
        resized = image.premultiply().resize(hscale, vscale=vscale).unpremultiply()
        resized = resized.cast("uchar")
    else:
        resized = image.resize(hscale, vscale=vscale)
    return resized.copy_memory()


def _encode(
    image: pyvips.Image, item: PlannedRendition, fmt: ImageFormat, encoding: Encoding
) -> Rendition:
    quality = item.spec.quality.get(fmt, encoding.quality(fmt))
    if fmt == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[_WHITE] * (image.bands - 1))
        data = image.jpegsave_buffer(Q=quality, keep="none")
    elif fmt == "webp":
        data = image.webpsave_buffer(Q=quality, effort=encoding.webp_effort, keep="none")
    elif fmt == "avif":
        data = image.heifsave_buffer(
            Q=quality, compression="av1", effort=encoding.avif_effort, keep="none"
        )
    else:
        data = image.pngsave_buffer(keep="none")
    return Rendition(item.spec.name, fmt, image.width, image.height, bytes(data))


def _sample(
    image: pyvips.Image,
) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], np.ndarray[Any, np.dtype[np.uint8]]]:
    """A small sRGB copy, alpha flattened on white, for hashes, placeholders and colours; and
    the same with its alpha kept (opaque images get a constant 255)."""
    small = image.thumbnail_image(_SAMPLE_EDGE, height=_SAMPLE_EDGE)
    if small.bands < 3:  # grey, grey + alpha
        small = small.colourspace("srgb")
    small = small.cast("uchar")
    if small.hasalpha():
        rgba, flat = small, small.flatten(background=[_WHITE] * 3).cast("uchar")
    else:
        rgba, flat = small.bandjoin(255), small
    shape = (small.height, small.width)
    return flat.numpy().reshape(*shape, 3), rgba.numpy().reshape(*shape, 4)
