"""Execute a rendition plan with libvips: decode once (shrink-on-load), cascade down, encode.

The largest planned size is decoded straight from the bytes with ``thumbnail_buffer`` - which
applies the EXIF orientation, shrinks JPEG/WebP/AVIF while decoding and converts any embedded
ICC profile (Adobe RGB, Display P3, CMYK...) to sRGB. Each smaller rendition is resized from the
previous one. Encoders are told to keep no metadata at all: no EXIF, GPS, XMP, IPTC, ICC or text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from imgpipe.core.fingerprint import Sample
from imgpipe.core.formats import SourceFormat
from imgpipe.core.geometry import PlannedRendition, crop_origin, face_focus, plan
from imgpipe.core.validation import SourceInfo
from imgpipe.core.vips import VipsError, pyvips, translate_error
from imgpipe.model import FaceBox, Rendition
from imgpipe.ports import PREVIEW_MAX_BYTES, FaceFinder
from imgpipe.settings import Encoding, ImageFormat, RenditionSpec

__all__ = ["FocalSource", "Rendered", "render"]

FocalSource = Literal["user", "faces", "attention"]
_PREVIEW_QUALITY = 85

# Sample edge for placeholders, hashes and colours: enough detail, microseconds to analyse.
_SAMPLE_EDGE = 64
# Edge of the copy the focal point is found on: ~1 % of the width is plenty to place a crop.
# smartcrop costs ~8 ms CPU whatever the size (measured on the corpus photos, VIPS_CONCURRENCY=1).
_ATTENTION_EDGE = 160
_WHITE = 255.0


@dataclass(frozen=True, slots=True)
class Rendered:
    """The encoded renditions plus a small sRGB sample for analysis (hashes, placeholders,
    colours), at most ``_SAMPLE_EDGE`` a side, with and without its alpha."""

    renditions: tuple[Rendition, ...]
    sample: Sample
    # The point every cover crop keeps, in display pixels, and where it came from: the
    # caller's ("user"), else the faces found ("faces"), else libvips' attention (edges, skin
    # tones, saturation) on a small copy ("attention").
    focal_point: tuple[int, int]
    focal_source: FocalSource
    # The faces the finder reported (none when there is no finder) and the JPEG it was shown -
    # the one taggers see too: the largest uncropped JPEG rendition of at most 5 MB, else one
    # encoded from the image at hand.
    faces: tuple[FaceBox, ...]
    preview: bytes


def render(
    data: bytes,
    info: SourceInfo,
    specs: tuple[RenditionSpec, ...],
    encoding: Encoding,
    focal_point: tuple[int, int] | None = None,
    faces: FaceFinder | None = None,
) -> Rendered:
    """Decode ``data`` once and produce every planned rendition; raise on undecodable pixels.
    Cover crops keep ``focal_point`` (display pixels); without one, the centre of the faces
    ``faces`` finds, else the point attention finds. The finder is asked once, before the
    first crop, so a face is inside every crop."""
    width, height = info.display_size
    planned = plan(width, height, specs)
    focus = _Focus(focal_point, faces, (width, height))
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
                point = focus.resolve(current)
                centre = ((point[0] + 0.5) / width, (point[1] + 0.5) / height)
                left, top = crop_origin(item.scaled, item.size, centre)
                image = image.crop(left, top, *item.size)
            encoded = [_encode(image, item, fmt, encoding) for fmt in item.spec.formats]
            if not item.cropped:
                focus.offer(encoded)
            outputs.extend(encoded)
        point = focus.resolve(current)  # no crops: found on the smallest rendition
        preview = focus.preview(current)
        sample = _sample(current)
    except VipsError as exc:
        raise translate_error(exc, info.format, data) from exc
    order = {s.name: i for i, s in enumerate(specs)}
    outputs.sort(key=lambda r: order[r.name])
    return Rendered(renditions=tuple(outputs), sample=sample, focal_point=point,
                    focal_source=focus.source, faces=focus.faces,
                    preview=preview)  # fmt: skip


class _Focus:
    """Where the crops centre, settled once: the caller's point, else the faces', else
    attention's - and the JPEG preview the faces are looked for on."""

    def __init__(
        self, point: tuple[int, int] | None, finder: FaceFinder | None, display: tuple[int, int]
    ) -> None:
        self._point, self._finder, self._display = point, finder, display
        self._asked = False
        self.source: FocalSource = "user"
        self.faces: tuple[FaceBox, ...] = ()
        self._preview: bytes | None = None

    def offer(self, renditions: list[Rendition]) -> None:
        """Uncropped renditions, largest first: the first JPEG that fits is the preview."""
        for rendition in renditions:
            if (self._preview is None and rendition.format == "jpeg"
                    and len(rendition.data) <= PREVIEW_MAX_BYTES):  # fmt: skip
                self._preview = rendition.data

    def preview(self, image: pyvips.Image) -> bytes:
        if self._preview is None:  # no uncropped JPEG (yet): one from the image at hand
            flat = image.flatten(background=[_WHITE] * (image.bands - 1)) \
                if image.hasalpha() else image  # fmt: skip
            self._preview = bytes(flat.jpegsave_buffer(Q=_PREVIEW_QUALITY, keep="none"))
        return self._preview

    def resolve(self, image: pyvips.Image) -> tuple[int, int]:
        if self._finder is not None and not self._asked:
            self._asked = True
            self.faces = tuple(self._finder.find_faces(self.preview(image)))
            if self._point is None and (found := face_focus(self.faces, self._display)):
                self._point, self.source = found, "faces"
        if self._point is None:
            self._point, self.source = _attention(image, self._display), "attention"
        return self._point


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
    import pillow_heif  # noqa: PLC0415 - HEIC only: 6 ms of every other worker's start

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        primary = heif[heif.primary_index]
        pixels, stride, bands = primary.data, primary.stride, len(primary.mode)
    except (ValueError, RuntimeError, OSError, EOFError, SyntaxError) as exc:
        raise translate_error(exc, SourceFormat.HEIF, data) from exc
    # 8-bit L, LA, RGB or RGBA rows of ``stride`` bytes (convert_hdr_to_8bit), maybe padded.
    width, height = primary.size
    image = pyvips.Image.new_from_memory(pixels, stride // bands, height, bands, "uchar")
    if image.width != width:
        image = image.crop(0, 0, width, height)
    image = image.copy(interpretation="srgb" if bands >= 3 else "b-w")
    if icc := primary.info.get("icc_profile"):  # on the copy just made, ours to annotate
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


def _sample(image: pyvips.Image) -> Sample:
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
    return Sample(small.width, small.height, flat.write_to_memory(), rgba.write_to_memory())
