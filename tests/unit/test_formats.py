"""sniff(): an upload's type comes from its magic bytes, and only web raster formats pass."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import fixtures as F
from imgpipe.core.formats import SourceFormat, looks_truncated, sniff
from imgpipe.errors import EmptyError, RejectedError, UnsupportedTypeError

Make = Callable[[], bytes]


def _id(value: object) -> str:
    return getattr(value, "__name__", str(value))


ACCEPTED: list[tuple[Make, SourceFormat]] = [
    (F.jpeg, SourceFormat.JPEG),
    (F.grey_jpeg, SourceFormat.JPEG),
    (F.cmyk_jpeg, SourceFormat.JPEG),
    (F.p3_jpeg, SourceFormat.JPEG),
    (F.camera_jpeg, SourceFormat.JPEG),
    (F.png, SourceFormat.PNG),
    (F.palette_png, SourceFormat.PNG),
    (F.grey16_png, SourceFormat.PNG),
    (F.rgba_png, SourceFormat.PNG),
    (F.gif, SourceFormat.GIF),
    (F.animated_gif, SourceFormat.GIF),
    (F.webp, SourceFormat.WEBP),
    (F.webp_with_metadata, SourceFormat.WEBP),
    (F.animated_webp, SourceFormat.WEBP),
    (F.avif, SourceFormat.AVIF),
    (F.heic, SourceFormat.HEIF),
    (F.tiff, SourceFormat.TIFF),
]


@pytest.mark.parametrize(("make", "expected"), ACCEPTED, ids=_id)
def test_accepted_format_is_detected_from_its_bytes(make: Make, expected: SourceFormat) -> None:
    """Every accepted format is recognised from its magic bytes alone."""
    assert sniff(make()) is expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.isobmff(b"avif", b"mif1", b"miaf"), id="avif-major"),
        pytest.param(F.isobmff(b"mif1", b"avif"), id="avif-compatible"),
        pytest.param(F.isobmff(b"avis", b"msf1"), id="avif-sequence"),
    ],
)
def test_avif_is_recognised_by_any_of_its_brands(data: bytes) -> None:
    """An ftyp box naming avif/avis as major or compatible brand is AVIF."""
    assert sniff(data) is SourceFormat.AVIF


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"hevc", b"heim", b"heis"])
def test_heif_is_recognised_by_its_hevc_brands(brand: bytes) -> None:
    """An ftyp box naming an HEVC image brand is HEIF, whether major or compatible."""
    assert sniff(F.isobmff(brand, b"mif1")) is SourceFormat.HEIF
    assert sniff(F.isobmff(b"mif1", brand)) is SourceFormat.HEIF


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.tiff("raw"), id="pillow-none"),
        pytest.param(F.tiff("tiff_lzw"), id="pillow-lzw"),
        pytest.param(F.tiff("tiff_adobe_deflate"), id="pillow-adobe-deflate"),
        pytest.param(F.tiff("packbits"), id="pillow-packbits"),
        pytest.param(F.tiff_header(1), id="none"),
        pytest.param(F.tiff_header(2), id="ccitt-rle"),
        pytest.param(F.tiff_header(5), id="lzw"),
        pytest.param(F.tiff_header(8), id="adobe-deflate"),
        pytest.param(F.tiff_header(32773), id="packbits"),
        pytest.param(F.tiff_header(32946), id="deflate"),
        pytest.param(F.tiff_header(5, big_endian=True), id="big-endian"),
        pytest.param(F.tiff_header(5, as_long=True), id="compression-as-long"),
    ],
)
def test_baseline_tiff_is_accepted(data: bytes) -> None:
    """TIFF with a baseline or plain lossless compression passes, in either byte order."""
    assert sniff(data) is SourceFormat.TIFF


REFUSED: list[tuple[Make, str | None]] = [
    (F.svg, "SVG"),
    (F.svg_bare, "SVG"),
    (F.pdf, "PDF"),
    (F.postscript, "PostScript"),
    (F.eps, "EPS"),
    (F.eps_binary, "EPS"),
    (F.bmp, "BMP"),
    (F.ico, "ICO"),
    (F.psd, "PSD"),
    (F.html, "HTML"),
    (F.zip_archive, "ZIP"),
    (F.text, None),
]


@pytest.mark.parametrize(("make", "looks_like"), REFUSED, ids=_id)
def test_non_image_and_non_web_formats_are_refused(make: Make, looks_like: str | None) -> None:
    """SVG, PDF, PostScript/EPS, BMP, ICO, PSD, HTML, ZIP and text are ``unsupported_type`` (415),
    and the message names what the bytes look like."""
    with pytest.raises(UnsupportedTypeError) as caught:
        sniff(make())
    assert caught.value.code == "unsupported_type"
    assert caught.value.http_status == 415
    assert isinstance(caught.value, RejectedError)
    if looks_like is not None:
        assert looks_like in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.tiff_jpeg_compressed(), id="pillow-jpeg-in-tiff"),
        pytest.param(F.tiff_header(3), id="ccitt-group3"),
        pytest.param(F.tiff_header(4), id="ccitt-group4"),
        pytest.param(F.tiff_header(6), id="old-style-jpeg"),
        pytest.param(F.tiff_header(7), id="jpeg"),
        pytest.param(F.tiff_header(7, big_endian=True), id="jpeg-big-endian"),
        pytest.param(F.tiff_header(7, as_long=True), id="jpeg-as-long"),
        pytest.param(F.tiff_header(34661), id="jbig"),
        pytest.param(F.tiff_header(34712), id="jpeg2000"),
        pytest.param(F.tiff_header(50000), id="zstd"),
        pytest.param(F.bigtiff(), id="bigtiff"),
        pytest.param(F.tiff_many_tags(), id="5000-tag-directory"),
        pytest.param(F.tiff_bad_offset(), id="directory-past-the-end"),
    ],
)
def test_non_baseline_tiff_is_refused(data: bytes) -> None:
    """TIFF outside the baseline (JPEG-in-TIFF, JBIG, BigTIFF, unreadable IFD0) is refused."""
    with pytest.raises(UnsupportedTypeError) as caught:
        sniff(data)
    assert caught.value.code == "unsupported_type"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.isobmff(b"isom", b"iso2", b"mp41"), id="mp4"),
        pytest.param(F.isobmff(b"qt  "), id="quicktime"),
        pytest.param(F.isobmff(b"mif1", b"miaf"), id="heif-without-image-codec"),
        pytest.param(F.isobmff(b"crx "), id="canon-raw"),
    ],
)
def test_iso_media_that_is_not_avif_or_heic_is_refused(data: bytes) -> None:
    """Videos and other ISO-BMFF files share the ftyp box but are not accepted images."""
    with pytest.raises(UnsupportedTypeError):
        sniff(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xd8", id="jpeg-soi-only"),
        pytest.param(b"\x89PNG", id="png-signature-prefix"),
        pytest.param(b"GIF88a" + b"\x00" * 20, id="gif-bad-version"),
        pytest.param(b"RIFF\x10\x00\x00\x00WAVEfmt ", id="riff-wave"),
        pytest.param(b"\x00" * 100, id="zeros"),
        pytest.param(b"   \n", id="whitespace"),
    ],
)
def test_near_misses_of_accepted_signatures_are_refused(data: bytes) -> None:
    """A signature must match completely: prefixes and cousins of accepted formats are refused."""
    with pytest.raises(UnsupportedTypeError):
        sniff(data)


def test_empty_upload_is_its_own_error() -> None:
    """Zero bytes is ``empty`` (400), not an unsupported type."""
    with pytest.raises(EmptyError) as caught:
        sniff(b"")
    assert caught.value.code == "empty"
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        (SourceFormat.JPEG, "image/jpeg"),
        (SourceFormat.PNG, "image/png"),
        (SourceFormat.GIF, "image/gif"),
        (SourceFormat.WEBP, "image/webp"),
        (SourceFormat.AVIF, "image/avif"),
        (SourceFormat.HEIF, "image/heic"),
        (SourceFormat.TIFF, "image/tiff"),
    ],
)
def test_every_format_has_its_canonical_mime_type(fmt: SourceFormat, mime: str) -> None:
    """Each accepted format maps to its registered MIME type."""
    assert fmt.mime == mime


@pytest.mark.parametrize(
    ("fmt", "data", "expected"),
    [
        pytest.param(SourceFormat.JPEG, F.noisy_jpeg(), False, id="jpeg-complete"),
        pytest.param(SourceFormat.JPEG, F.truncated(F.noisy_jpeg()), True, id="jpeg-cut"),
        pytest.param(SourceFormat.PNG, F.noisy_png(), False, id="png-complete"),
        pytest.param(SourceFormat.PNG, F.truncated(F.noisy_png()), True, id="png-cut"),
        pytest.param(SourceFormat.GIF, F.animated_gif(), False, id="gif-complete"),
        pytest.param(SourceFormat.GIF, F.truncated(F.animated_gif()), True, id="gif-cut"),
        pytest.param(SourceFormat.WEBP, F.animated_webp(), False, id="webp-complete"),
        pytest.param(SourceFormat.WEBP, F.truncated(F.animated_webp()), True, id="webp-cut"),
        pytest.param(SourceFormat.TIFF, F.truncated(F.tiff()), False, id="tiff-has-no-end-marker"),
    ],
)
def test_looks_truncated_checks_the_end_marker(
    fmt: SourceFormat, data: bytes, expected: bool
) -> None:
    """A missing end marker (EOI, IEND, trailer, RIFF length) reads as truncation."""
    assert looks_truncated(fmt, data) is expected
