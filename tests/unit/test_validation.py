"""inspect(): type, byte, pixel and frame limits are enforced from headers, before decoding."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import fixtures as F
from imgpipe.core.formats import SourceFormat
from imgpipe.core.pipeline import process
from imgpipe.core.validation import Screened, SourceInfo, check_limits, inspect, screen
from imgpipe.errors import (
    CorruptError,
    RejectedError,
    TooLargeBytesError,
    TooManyFramesError,
    TooManyPixelsError,
    TruncatedError,
    UnsupportedTypeError,
)
from imgpipe.settings import Limits, RenditionSpec, Settings

# Header-only checks take microseconds; a decode of any of the bombs would take minutes or
# gigabytes. A generous bound still tells the two apart on a loaded CI machine.
HEADER_ONLY_SECONDS = 1.0
SMALL = Settings(renditions=(RenditionSpec("small", 32, formats=("jpeg",)),))
# The limits hold in both header checks: ``screen`` (the API's, no imaging engine) and
# ``inspect`` (the processor's, with libvips / pillow-heif).
Check = Callable[[bytes, Limits], Screened | SourceInfo]


@pytest.fixture(params=[screen, inspect], ids=["screen", "inspect"])
def check(request: pytest.FixtureRequest) -> Check:
    found: Check = request.param
    return found


# --- what the header says ------------------------------------------------------------------------


def test_inspect_reports_the_stored_geometry_and_orientation() -> None:
    """A rotated JPEG reports its stored size, its orientation and its display size."""
    info = inspect(F.oriented(6), Limits())
    assert (info.format, info.width, info.height, info.orientation) == (
        SourceFormat.JPEG,
        40,
        60,
        6,
    )
    assert info.display_size == (60, 40)
    assert info.exif is not None


@pytest.mark.parametrize(
    ("data", "bands", "bit_depth", "has_alpha", "frames"),
    [
        pytest.param(F.jpeg(), 3, 8, False, 1, id="jpeg"),
        pytest.param(F.grey_jpeg(), 1, 8, False, 1, id="grey"),
        pytest.param(F.cmyk_jpeg(), 4, 8, False, 1, id="cmyk"),
        pytest.param(F.grey16_png(), 1, 16, False, 1, id="grey16"),
        pytest.param(F.rgb16_png(), 3, 16, False, 1, id="rgb16"),
        pytest.param(F.rgba_png(), 4, 8, True, 1, id="rgba"),
        pytest.param(F.palette_png(), 4, 8, True, 1, id="palette-with-transparency"),
        pytest.param(F.animated_gif(5), 4, 8, True, 5, id="animated-gif"),
        pytest.param(F.animated_webp(3), 3, 8, False, 3, id="animated-webp"),
        pytest.param(F.heic(), 3, 8, False, 1, id="heic"),
    ],
)
def test_inspect_reports_pixel_format_and_frames(
    data: bytes, bands: int, bit_depth: int, has_alpha: bool, frames: int
) -> None:
    """Bands, bit depth, alpha and frame count come from the header."""
    info = inspect(data, Limits())
    assert (info.bands, info.bit_depth, info.has_alpha, info.frames) == (
        bands,
        bit_depth,
        has_alpha,
        frames,
    )
    assert info.byte_size == len(data)


def test_inspect_keeps_the_icc_profile_for_colour_conversion() -> None:
    """An embedded ICC profile is read from the header so rendering can convert from it."""
    assert inspect(F.p3_jpeg(), Limits()).icc
    assert inspect(F.jpeg(), Limits()).icc is None


# --- byte cap ------------------------------------------------------------------------------------


def test_too_many_bytes_is_refused(check: Check) -> None:
    """An upload over ``max_bytes`` is ``too_large_bytes`` (413)."""
    data = F.jpeg()
    with pytest.raises(TooLargeBytesError) as caught:
        check(data, Limits(max_bytes=len(data) - 1))
    assert caught.value.code == "too_large_bytes"
    assert caught.value.http_status == 413


def test_exactly_max_bytes_is_accepted(check: Check) -> None:
    """The byte limit is inclusive."""
    data = F.jpeg()
    assert check(data, Limits(max_bytes=len(data))).width == 60


def test_type_is_checked_before_size(check: Check) -> None:
    """A huge non-image is refused for its type, so the client learns the real problem."""
    with pytest.raises(UnsupportedTypeError):
        check(F.pdf(), Limits(max_bytes=10))


# --- pixel caps, through header-only bombs -------------------------------------------------------


def _timed_refusal(check: Check, data: bytes, limits: Limits) -> TooManyPixelsError:
    started = time.perf_counter()
    with pytest.raises(TooManyPixelsError) as caught:
        check(data, limits)
    assert time.perf_counter() - started < HEADER_ONLY_SECONDS
    return caught.value


@pytest.mark.parametrize(
    ("data", "side"),
    [
        pytest.param(F.png_bomb(), "100000", id="png-100000x100000"),
        pytest.param(F.gif_bomb(), "65535", id="gif-65535x65535"),
        pytest.param(F.jpeg_bomb(), "60000", id="jpeg-60000x60000"),
        pytest.param(F.heif_bomb(F.avif((96, 72))), "1073741920", id="avif-1073741920x72"),
        pytest.param(F.heif_bomb(F.heic((96, 72))), "1073741920", id="heic-1073741920x72"),
    ],
)
def test_bomb_is_refused_from_its_header_by_side(data: bytes, side: str, check: Check) -> None:
    """A tiny file declaring a huge canvas is ``too_many_pixels`` at once, without decoding."""
    error = _timed_refusal(check, data, Limits())
    assert error.code == "too_many_pixels"
    assert error.http_status == 422
    assert side in error.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.png_bomb(), id="png-100000x100000"),
        pytest.param(F.png_bomb(16000, 16000), id="png-16000x16000"),
        pytest.param(F.gif_bomb(), id="gif-65535x65535"),
        pytest.param(F.jpeg_bomb(), id="jpeg-60000x60000"),
    ],
)
def test_bomb_is_refused_from_its_header_by_area(data: bytes, check: Check) -> None:
    """With the side limit out of the way, the megapixel limit still refuses the bombs, fast."""
    error = _timed_refusal(check, data, Limits(max_side=1_000_000))
    assert "MP" in error.message


def test_process_refuses_the_png_bomb_before_rendering() -> None:
    """The whole pipeline refuses the 100000x100000 PNG as fast as the header check does."""
    started = time.perf_counter()
    with pytest.raises(TooManyPixelsError):
        process(F.png_bomb(), Settings())
    assert time.perf_counter() - started < HEADER_ONLY_SECONDS


def test_inspect_reads_only_headers() -> None:
    """A PNG whose pixel data is far too short passes inspect: only the header was read."""
    info = inspect(F.png_bomb(1000, 1000), Limits())
    assert (info.width, info.height) == (1000, 1000)


def test_pixel_data_shortfall_is_caught_when_rendering() -> None:
    """The same PNG is refused by process(), as a permanent rejection, once pixels are needed."""
    with pytest.raises(RejectedError) as caught:
        process(F.png_bomb(1000, 1000), SMALL)
    assert caught.value.code in {"truncated", "corrupt"}


def test_gif_lying_only_in_its_screen_descriptor_is_never_decoded_at_that_size() -> None:
    """A 4x4 GIF claiming a 65535x65535 screen is refused or handled at its real frame size."""
    try:
        processed = process(F.gif_screen_bomb(), SMALL)
    except TooManyPixelsError:
        return
    assert processed.metadata["width"] * processed.metadata["height"] <= 16


def test_max_side_is_enforced(check: Check) -> None:
    """A side longer than ``max_side`` is ``too_many_pixels`` even when the area is small."""
    with pytest.raises(TooManyPixelsError, match="per side"):
        check(F.jpeg(), Limits(max_side=59))
    assert check(F.jpeg(), Limits(max_side=60)).width == 60


def test_max_side_applies_to_the_stored_height_too(check: Check) -> None:
    """The side limit covers both dimensions (a 40x60 stored portrait with max_side 50)."""
    with pytest.raises(TooManyPixelsError):
        check(F.oriented(6), Limits(max_side=50))


def test_max_pixels_is_inclusive(check: Check) -> None:
    """60x40 = 2400 px passes a 2400 px limit and fails a 2399 px one."""
    assert check(F.jpeg(), Limits(max_pixels=2400)).width == 60
    with pytest.raises(TooManyPixelsError, match="MP"):
        check(F.jpeg(), Limits(max_pixels=2399))


# --- frame caps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [F.animated_gif, F.animated_webp], ids=["gif", "webp"])
def test_too_many_frames_is_refused(make: Callable[[int], bytes], check: Check) -> None:
    """An animation with more frames than ``max_frames`` is ``too_many_frames`` (422)."""
    data = make(5)
    assert check(data, Limits(max_frames=5)).frames == 5
    with pytest.raises(TooManyFramesError) as caught:
        check(data, Limits(max_frames=4))
    assert caught.value.code == "too_many_frames"
    assert caught.value.http_status == 422


def test_total_animation_pixels_are_capped(check: Check) -> None:
    """Frames x width x height over ``max_total_pixels`` is refused even with few frames."""
    data = F.animated_gif(5)  # 5 x 60 x 40 = 12000 px
    assert check(data, Limits(max_total_pixels=12_000)).frames == 5
    with pytest.raises(TooManyFramesError, match="total"):
        check(data, Limits(max_total_pixels=11_999))


def test_limits_on_a_settings_object_reach_inspect_through_process() -> None:
    """process() applies the limits of the settings it is given."""
    settings = replace(SMALL, limits=Limits(max_frames=2))
    with pytest.raises(TooManyFramesError):
        process(F.animated_gif(3), settings)


# --- check_limits directly -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "frames", "error"),
    [
        (0, 10, 1, CorruptError),
        (10, 0, 1, CorruptError),
        (101, 10, 1, TooManyPixelsError),
        (10, 101, 1, TooManyPixelsError),
        (100, 100, 1, None),
        (100, 100, 2, None),
        (50, 50, 3, None),
        (50, 50, 4, TooManyFramesError),  # more frames than max_frames
        (100, 100, 3, TooManyFramesError),  # 30000 px over all frames > max_total_pixels
        (100, 99, 3, None),  # 29700 px
        (100, 101, 1, TooManyPixelsError),
    ],
)
def test_check_limits_table(
    width: int, height: int, frames: int, error: type[Exception] | None
) -> None:
    """Declared geometry is checked against every limit, with inclusive bounds."""
    limits = Limits(max_side=100, max_pixels=10_000, max_frames=3, max_total_pixels=29_700)
    if error is None:
        check_limits(width, height, frames, limits)
    else:
        with pytest.raises(error):
            check_limits(width, height, frames, limits)


# --- damaged data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.truncated(F.noisy_jpeg()), id="jpeg"),
        pytest.param(F.truncated(F.noisy_png()), id="png"),
        pytest.param(F.truncated(F.noisy_webp()), id="webp"),
    ],
)
def test_truncated_file_is_refused_as_truncated(data: bytes) -> None:
    """A file cut in half is ``truncated`` (422), a permanent rejection."""
    with pytest.raises(TruncatedError) as caught:
        process(data, SMALL)
    assert caught.value.code == "truncated"
    assert caught.value.http_status == 422
    assert caught.value.permanent


def test_garbage_after_a_valid_jpeg_header_is_rejected() -> None:
    """Random bytes after a valid JPEG frame header are a 422 rejection (corrupt or truncated)."""
    with pytest.raises(RejectedError) as caught:
        process(F.jpeg_garbage_after_header(), SMALL)
    assert caught.value.code in {"corrupt", "truncated"}
    assert caught.value.http_status == 422


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, id="png-signature-then-zeros"),
        pytest.param(b"GIF89a" + b"\xff" * 40, id="gif-signature-then-garbage"),
        pytest.param(b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 24, id="webp-empty-vp8"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 40, id="jpeg-soi-then-zeros"),
        pytest.param(F.isobmff(b"avif", b"mif1"), id="avif-ftyp-only"),
        pytest.param(F.isobmff(b"heic", b"mif1"), id="heic-ftyp-only"),
    ],
)
def test_signature_without_an_image_is_a_rejection_not_a_crash(data: bytes, check: Check) -> None:
    """Valid magic bytes followed by nonsense are refused with a typed 4xx error."""
    with pytest.raises(RejectedError) as caught:
        check(data, Limits())
    assert 400 <= caught.value.http_status < 500


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(F.avif, id="avif"),
        pytest.param(F.heic, id="heic"),
    ],
)
def test_heif_container_with_an_unknown_box_version_is_a_rejection(
    make: Callable[[], bytes],
) -> None:
    """An AVIF/HEIC whose hdlr box has an unknown version is refused with a typed 422."""
    with pytest.raises(RejectedError) as caught:
        process(F.with_box_version(make(), b"hdlr", 107), SMALL)
    assert caught.value.http_status == 422


def test_png_with_a_latin1_text_keyword_is_inspected() -> None:
    """PNG keywords are Latin-1 by the spec; such a PNG is inspected like any other."""
    assert inspect(F.png_latin1_keyword(), Limits()).width == 60


# --- screen: the API's check, without the imaging engine -----------------------------------------

_SCREEN_ONLY = """
import json, sys
from pathlib import Path
from imgpipe.core.validation import screen
from imgpipe.settings import Limits
found = {}
for path in sorted(Path(sys.argv[1]).iterdir()):
    s = screen(path.read_bytes(), Limits())
    found[path.name] = [s.format.value, s.width, s.height, s.frames]
engine = sorted({"pyvips", "pillow_heif"} & set(sys.modules))
print(json.dumps({"found": found, "engine": engine}))
"""


def test_screen_reads_every_format_without_loading_the_imaging_engine(tmp_path: Path) -> None:
    """Each accepted format screens to the format and stored size ``inspect`` reads, in a
    process that never imports libvips or pillow-heif (the API function has none)."""
    samples = {"jpeg": F.oriented(6), "png": F.png(), "gif": F.animated_gif(3),
               "webp": F.animated_webp(2), "tiff": F.tiff(), "avif": F.avif((96, 72)),
               "heif": F.heic((96, 72))}  # fmt: skip
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    done = subprocess.run([sys.executable, "-c", _SCREEN_ONLY, str(tmp_path)], check=True,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    result = json.loads(done.stdout)
    assert result["engine"] == []
    expected = {}
    for name, data in samples.items():
        info = inspect(data, Limits())
        expected[name] = [info.format.value, info.width, info.height, info.frames]
    assert result["found"] == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b"\xff\xd8\xff\xc0\x00\x11" + b"\xff" * 64 + b"\xff\xd9", id="jpeg-sof-255-bit"
        ),
        pytest.param(F.isobmff(b"avif", b"mif1"), id="avif-without-item-sizes"),
        pytest.param(b"II*\x00\x08\x00\x00\x00\x01\x00" + b"\x00" * 12, id="tiff-no-dimensions"),
    ],
)
def test_screen_refuses_a_header_its_parser_cannot_read(data: bytes) -> None:
    """What the header parser cannot read is a typed 422 at upload, never a crash or a pass."""
    with pytest.raises(RejectedError) as caught:
        screen(data, Limits())
    assert caught.value.http_status == 422
