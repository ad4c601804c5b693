"""render(): oriented, sRGB, 8-bit, metadata-free renditions, checked by reopening the outputs."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import pyvips
from PIL import Image

import fixtures as F
from imgpipe.core.formats import SourceFormat, sniff
from imgpipe.core.render import Rendered, render
from imgpipe.core.validation import inspect
from imgpipe.model import Rendition
from imgpipe.settings import Encoding, ImageFormat, Limits, RenditionSpec

ALL_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "webp", "png", "avif")
LARGE = RenditionSpec("large", 2048, formats=ALL_FORMATS)
SQUARE = RenditionSpec("square", 16, 16, fit="cover", formats=ALL_FORMATS)
# Colour tolerance per channel: lossy encoders and chroma subsampling move flat colours a little.
LOSSY = 40


def _render(
    data: bytes,
    *specs: RenditionSpec,
    encoding: Encoding | None = None,
    focal_point: tuple[int, int] | None = None,
) -> Rendered:
    return render(data, inspect(data, Limits()), specs, encoding or Encoding(), focal_point)


def _open(rendition: Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def _rgb(rendition: Rendition, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = _open(rendition).convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def _near(actual: Sequence[int], expected: Sequence[int], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def _vips(rendition: Rendition) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(rendition.data, "")


# --- orientation ---------------------------------------------------------------------------------


def _assert_upright(rendition: Rendition, scale: float = 1.0) -> None:
    """The red mark is top-left, the blue mark top-right, the bottom corners grey."""
    width, height = rendition.width, rendition.height
    inset = round(F.MARK * scale / 2)
    assert _open(rendition).size == (width, height)
    assert _near(_rgb(rendition, (inset, inset)), F.RED, LOSSY), "red mark not top-left"
    assert _near(_rgb(rendition, (width - 1 - inset, inset)), F.BLUE, LOSSY), "blue not top-right"
    for corner in ((inset, height - 1 - inset), (width - 1 - inset, height - 1 - inset)):
        assert _near(_rgb(rendition, corner), F.GREY, LOSSY), "bottom corner not grey"


@pytest.mark.parametrize("container", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_applied_to_the_pixels(orientation: int, container: str) -> None:
    """Each EXIF orientation gives the 60x40 display size, marks where a viewer sees them."""
    rendered = _render(F.oriented(orientation, container), LARGE)
    assert len(rendered.renditions) == len(ALL_FORMATS)
    for rendition in rendered.renditions:
        assert (rendition.width, rendition.height) == F.DISPLAY_SIZE
        _assert_upright(rendition)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_survives_shrink_on_load_and_cover_crop(orientation: int) -> None:
    """A 600x400 rotated JPEG shrunk to 150x100 and cover-cropped to 60x60 (around the
    centre, given as the focal point) stays upright."""
    specs = (
        RenditionSpec("half", 150, formats=("png",)),
        RenditionSpec("square", 60, 60, fit="cover", formats=("png",)),
    )
    data = F.oriented(orientation, "JPEG", scale=10)
    half, square = _render(data, *specs, focal_point=(300, 200)).renditions
    assert (half.width, half.height) == (150, 100)
    _assert_upright(half, scale=150 / 60)
    assert (square.width, square.height) == (60, 60)
    # 600x400 -> 90x60, cropped 15 px each side: the marks (60 px there) keep 45 px visible.
    assert _near(_rgb(square, (5, 5)), F.RED, LOSSY)
    assert _near(_rgb(square, (54, 5)), F.BLUE, LOSSY)
    assert _near(_rgb(square, (30, 55)), F.GREY, LOSSY)


# --- colour --------------------------------------------------------------------------------------


def _assert_plain_srgb8(rendition: Rendition) -> None:
    """Three (or four, with alpha) 8-bit sRGB bands and no ICC profile attached."""
    image = _vips(rendition)
    assert image.format == "uchar"
    assert image.interpretation == "srgb"
    assert image.bands in (3, 4)
    assert "icc-profile-data" not in image.get_fields()
    assert "icc_profile" not in _open(rendition).info


def test_display_p3_is_converted_to_srgb() -> None:
    """A P3 JPEG comes out as the same visible colour in plain sRGB, with no profile."""
    stored = Image.open(io.BytesIO(F.p3_jpeg())).convert("RGB").getpixel((5, 5))
    assert isinstance(stored, tuple)
    assert not _near(stored, F.P3_SOURCE_SRGB, 10), "fixture must differ from its sRGB colour"
    for rendition in _render(F.p3_jpeg(), LARGE, SQUARE).renditions:
        _assert_plain_srgb8(rendition)
        assert _vips(rendition).bands == 3
        assert _near(_rgb(rendition, (5, 5)), F.P3_SOURCE_SRGB, 8)


def test_cmyk_is_converted_to_srgb_through_a_profile() -> None:
    """Pure process cyan in a CMYK JPEG becomes a 3-band sRGB cyan, not inverted or black."""
    for rendition in _render(F.cmyk_jpeg(), LARGE, SQUARE).renditions:
        _assert_plain_srgb8(rendition)
        assert _vips(rendition).bands == 3
        red, green, blue = _rgb(rendition, (5, 5))
        assert red < 40
        assert 120 < green < 200
        assert blue > 190


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(F.grey16_png(), (128, 128, 128), id="grey16-half"),
        pytest.param(F.rgb16_png(), (255, 128, 0), id="rgb16-orange"),
    ],
)
def test_sixteen_bit_input_is_scaled_to_eight_bits(data: bytes, expected: tuple[int, ...]) -> None:
    """16-bit samples are scaled (32768 -> 128), not clipped to 255, in every output format."""
    for rendition in _render(data, LARGE).renditions:
        _assert_plain_srgb8(rendition)
        assert _near(_rgb(rendition, (30, 20)), expected, 4)


def test_greyscale_input_renders_in_every_format() -> None:
    """An 8-bit greyscale JPEG renders to 8-bit outputs of the same grey."""
    for rendition in _render(F.grey_jpeg(), LARGE).renditions:
        assert _vips(rendition).format == "uchar"
        assert "icc_profile" not in _open(rendition).info
        assert _near(_rgb(rendition, (30, 20)), F.GREY, 4)


# --- alpha ---------------------------------------------------------------------------------------

LEFT, RIGHT = (10, 20), (50, 20)  # transparent red half, opaque blue half


@pytest.mark.parametrize("make", [F.rgba_png, F.palette_png], ids=["rgba", "palette"])
def test_jpeg_flattens_alpha_on_white(make: Callable[..., bytes]) -> None:
    """JPEG has no alpha: transparent pixels become white, never the colour hidden under them."""
    (jpeg,) = _render(make(), RenditionSpec("j", 2048, formats=("jpeg",))).renditions
    assert _open(jpeg).mode == "RGB"
    assert _near(_rgb(jpeg, LEFT), (255, 255, 255), 3)
    assert _near(_rgb(jpeg, RIGHT), F.BLUE, LOSSY)


@pytest.mark.parametrize("make", [F.rgba_png, F.palette_png], ids=["rgba", "palette"])
@pytest.mark.parametrize("fmt", ["webp", "png", "avif"])
def test_alpha_is_kept_where_the_format_has_it(
    make: Callable[..., bytes], fmt: ImageFormat
) -> None:
    """WebP, PNG and AVIF renditions keep transparency: RGBA, clear left half, opaque right."""
    (rendition,) = _render(make(), RenditionSpec("a", 2048, formats=(fmt,))).renditions
    image = _open(rendition)
    assert image.mode == "RGBA"
    left, right = image.getpixel(LEFT), image.getpixel(RIGHT)
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert (left[3], right[3]) == (0, 255)


def test_alpha_edges_do_not_bleed_the_hidden_colour() -> None:
    """Downscaling transparent red next to opaque blue leaves no red fringe in the JPEG."""
    (small,) = _render(F.rgba_png(), RenditionSpec("s", 15, formats=("jpeg",))).renditions
    pixels = np.asarray(_open(small).convert("RGB"), dtype=np.int16)
    redness = pixels[:, :, 0] - np.maximum(pixels[:, :, 1], pixels[:, :, 2])
    assert redness.max() < 30


def test_analysis_sample_is_flattened_on_white() -> None:
    """The analysis sample is small 8-bit RGB, alpha composited on white."""
    sample = _render(F.rgba_png(), LARGE).sample
    assert max(sample.width, sample.height) <= 64
    assert len(sample.rgb) == sample.width * sample.height * 3
    rgb = np.frombuffer(sample.rgb, np.uint8).reshape(sample.height, sample.width, 3)
    assert rgb[:, 0].min() >= 250  # the transparent left edge is white
    rgba = np.frombuffer(sample.rgba, np.uint8).reshape(sample.height, sample.width, 4)
    assert (rgba[:, 0, 3].max(), rgba[:, -1, 3].min()) == (0, 255)  # the same pixels, alpha kept


# --- animation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [F.animated_gif, F.animated_webp], ids=["gif", "webp"])
def test_animation_renders_its_first_frame_as_a_still(make: Callable[..., bytes]) -> None:
    """An animated source gives still renditions of its first (red) frame."""
    for rendition in _render(make(4), LARGE).renditions:
        image = _open(rendition)
        assert getattr(image, "n_frames", 1) == 1
        assert (rendition.width, rendition.height) == F.DISPLAY_SIZE
        assert _near(_rgb(rendition, (30, 20)), F.RED, LOSSY)


# --- formats and sizes ---------------------------------------------------------------------------


def test_avif_rendition_on_request() -> None:
    """A spec asking only for AVIF yields exactly one AVIF rendition of the right size."""
    (avif,) = _render(F.jpeg(), RenditionSpec("a", 2048, formats=("avif",))).renditions
    assert avif.format == "avif"
    assert avif.filename == "a.avif"
    assert sniff(avif.data) is SourceFormat.AVIF
    image = _open(avif)
    assert image.format == "AVIF"
    assert image.size == F.DISPLAY_SIZE


@pytest.mark.parametrize(
    ("fmt", "pillow", "filename"),
    [("jpeg", "JPEG", "r.jpg"), ("webp", "WEBP", "r.webp"), ("png", "PNG", "r.png")],
)
def test_each_format_is_encoded_as_itself(fmt: ImageFormat, pillow: str, filename: str) -> None:
    """The bytes of a rendition are in the format it claims, with the matching extension."""
    (rendition,) = _render(F.jpeg(), RenditionSpec("r", 2048, formats=(fmt,))).renditions
    assert rendition.format == fmt
    assert rendition.filename == filename
    assert _open(rendition).format == pillow


@pytest.mark.parametrize(
    "make",
    [F.jpeg, F.png, F.gif, F.webp, F.avif, F.heic, F.tiff],
    ids=lambda make: getattr(make, "__name__", "?"),
)
def test_every_accepted_format_renders(make: Callable[..., bytes]) -> None:
    """Each accepted source format decodes and renders to the source size."""
    (rendition,) = _render(make(), RenditionSpec("r", 2048, formats=("png",))).renditions
    assert _open(rendition).size == F.DISPLAY_SIZE
    assert _near(_rgb(rendition, (30, 20)), F.GREY, 6)


def test_cascade_produces_every_planned_size() -> None:
    """Renditions come back in spec order, each decoding to exactly its planned size."""
    specs = (
        RenditionSpec("thumb", 100, formats=("jpeg", "webp")),
        RenditionSpec("large", 1000, formats=("jpeg", "webp")),
        RenditionSpec("square", 64, 64, fit="cover", formats=("png",)),
        RenditionSpec("medium", 500, formats=("jpeg",)),
    )
    rendered = _render(F.noisy_jpeg((1200, 800)), *specs)
    got = [(r.name, r.format, r.width, r.height) for r in rendered.renditions]
    assert got == [
        ("thumb", "jpeg", 100, 67),
        ("thumb", "webp", 100, 67),
        ("large", "jpeg", 1000, 667),
        ("large", "webp", 1000, 667),
        ("square", "png", 64, 64),
        ("medium", "jpeg", 500, 333),
    ]
    for rendition in rendered.renditions:
        assert _open(rendition).size == (rendition.width, rendition.height)


def test_spec_quality_overrides_the_global_quality() -> None:
    """A per-rendition quality beats the global one: quality 10 gives a much smaller JPEG."""
    data = F.noisy_jpeg()
    encoding = Encoding(jpeg=95)
    (high,) = _render(
        data, RenditionSpec("r", 256, formats=("jpeg",)), encoding=encoding
    ).renditions
    low_spec = RenditionSpec("r", 256, formats=("jpeg",), quality={"jpeg": 10})
    (low,) = _render(data, low_spec, encoding=encoding).renditions
    assert len(low.data) < len(high.data) / 2


# --- no metadata leaves the pipeline -------------------------------------------------------------

_SECRETS = (
    b"xmp-secret",
    b"com-secret",
    b"ztxt-secret",
    b"Canon",
    F.HOSTILE_MAKE.encode(),
    b"Exif\x00\x00",
    b"http://ns.adobe.com/xap",
    b"adobe:ns:meta",
)
_PILLOW_METADATA = {"exif", "xmp", "comment", "icc_profile", "XML:com.adobe.xmp", "Comment"}
_VIPS_METADATA = {"exif-data", "xmp-data", "iptc-data", "icc-profile-data", "jpeg-comment"}


def _jpeg_markers(data: bytes) -> list[int]:
    markers, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return markers


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append(kind)
        pos += 12 + length
    return chunks


def _webp_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append(kind)
        pos += 8 + length + (length & 1)
    return chunks


def _assert_no_metadata(rendition: Rendition) -> None:
    image = _open(rendition)
    assert not dict(image.getexif()), f"{rendition.filename} has EXIF"
    assert not _PILLOW_METADATA & set(image.info), f"{rendition.filename}: {sorted(image.info)}"
    assert not _VIPS_METADATA & set(_vips(rendition).get_fields())
    for secret in _SECRETS:
        assert secret not in rendition.data, f"{secret!r} leaked into {rendition.filename}"
    if rendition.format == "jpeg":
        markers = _jpeg_markers(rendition.data)
        assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE], [hex(m) for m in markers]
    elif rendition.format == "png":
        assert getattr(image, "text", {}) == {}
        chunks = set(_png_chunks(rendition.data))
        assert not chunks & {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME"}, chunks
    elif rendition.format == "webp":
        chunks = set(_webp_chunks(rendition.data))
        assert not chunks & {b"EXIF", b"XMP ", b"ICCP"}, chunks


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.camera_jpeg(), id="camera-jpeg-with-gps"),
        pytest.param(F.hostile_jpeg(), id="hostile-jpeg-xmp-comment"),
        pytest.param(F.p3_jpeg(), id="p3-icc"),
        pytest.param(F.png_with_metadata(), id="png-text-xmp-exif-icc"),
        pytest.param(F.webp_with_metadata(), id="webp-exif-xmp-icc"),
        pytest.param(F.oriented(6, "PNG"), id="png-exif-orientation"),
        pytest.param(F.oriented(6, "WEBP"), id="webp-exif-orientation"),
        pytest.param(F.oriented(8, "JPEG"), id="jpeg-exif-orientation"),
    ],
)
def test_no_rendition_carries_any_metadata(data: bytes) -> None:
    """Every rendition, in every format, has no EXIF, GPS, XMP, comment, text or ICC at all."""
    rendered = _render(data, LARGE, SQUARE)
    assert len(rendered.renditions) == 2 * len(ALL_FORMATS)
    for rendition in rendered.renditions:
        _assert_no_metadata(rendition)


def test_fixture_metadata_is_really_there() -> None:
    """The metadata-heavy fixtures do carry what the stripping test says is removed."""
    assert b"xmp-secret" in F.hostile_jpeg()
    assert b"com-secret" in F.hostile_jpeg()
    assert 0xFE in _jpeg_markers(F.hostile_jpeg())
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"} <= set(_png_chunks(F.png_with_metadata()))
    assert {b"EXIF", b"XMP ", b"ICCP"} <= set(_webp_chunks(F.webp_with_metadata()))


# --- focal point and cover crops -----------------------------------------------------------------

COVERS = (
    RenditionSpec("avatar", 256, 256, fit="cover", formats=("png",)),
    RenditionSpec("social", 1200, 630, fit="cover", formats=("png",)),
    RenditionSpec("tall", 300, 900, fit="cover", formats=("png",)),
)


OFF_CENTRE = [((1600, 900), (1300, 220)), ((900, 1600), (150, 1400)), ((1200, 1200), (1050, 1050))]


@pytest.mark.parametrize(("size", "centre"), OFF_CENTRE)
def test_attention_finds_an_off_centre_object_and_every_cover_crop_keeps_it(
    size: tuple[int, int], centre: tuple[int, int]
) -> None:
    """A bright disc on noise, far from the centre: the focal point lands on it, and every cover
    crop - square, wide, tall - shows the whole disc (a centre crop would miss it)."""
    rendered = _render(F.salient(size, centre), *COVERS)
    x, y = rendered.focal_point
    assert (x - centre[0]) ** 2 + (y - centre[1]) ** 2 < 70**2
    for rendition in rendered.renditions:
        scale = max(rendition.width / size[0], rendition.height / size[1])
        disc = np.pi * (70 * scale) ** 2 / (rendition.width * rendition.height)
        assert F.yellow_fraction(rendition.data) == pytest.approx(disc, rel=0.25), rendition.name


def test_a_supplied_focal_point_is_honoured() -> None:
    """Told the point of interest is the bottom-left corner, the crops go there - away from the
    disc attention would choose."""
    rendered = _render(F.salient(), *COVERS, focal_point=(0, 899))
    assert rendered.focal_point == (0, 899)
    avatar = next(r for r in rendered.renditions if r.name == "avatar")
    assert F.yellow_fraction(avatar.data) == 0.0


def test_cover_crops_never_upscale() -> None:
    """A source smaller than the box is only cropped (to the box where it is larger), never
    enlarged to fill it."""
    rendered = _render(F.salient((400, 200), (300, 60), 30), *COVERS)
    sizes = {r.name: (r.width, r.height) for r in rendered.renditions}
    assert sizes == {"avatar": (256, 200), "social": (400, 200), "tall": (300, 200)}
