"""The generated fixtures are what they claim to be, judged by Pillow, an independent reader."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

import fixtures as F


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("container", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_fixture_shows_the_display_picture(orientation: int, container: str) -> None:
    """Pillow's own exif_transpose turns each oriented fixture back into the display picture."""
    image = _open(F.oriented(orientation, container))
    assert image.getexif()[ExifTags.Base.Orientation] == orientation
    shown = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.int16)
    expected = np.asarray(F.oriented_display(), dtype=np.int16)
    assert shown.shape == expected.shape
    assert np.abs(shown - expected).mean() < 3


def test_camera_fixture_carries_gps_and_exposure() -> None:
    """The camera JPEG holds the GPS refs and exposure fields the metadata tests rely on."""
    exif = _open(F.camera_jpeg()).getexif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert (gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLongitudeRef]) == ("S", "W")
    assert gps[ExifTags.GPS.GPSAltitudeRef] == b"\x01"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ISOSpeedRatings] == 400
    assert not _open(F.camera_jpeg(gps=False)).getexif().get_ifd(ExifTags.IFD.GPSInfo)


def test_pixel_format_fixtures_have_their_modes() -> None:
    """CMYK, 16-bit grey, greyscale, palette and RGBA fixtures open in the expected modes."""
    assert _open(F.cmyk_jpeg()).mode == "CMYK"
    assert _open(F.grey16_png()).mode in {"I;16", "I"}
    assert _open(F.grey_jpeg()).mode == "L"
    assert _open(F.palette_png()).mode == "P"
    assert "transparency" in _open(F.palette_png()).info
    assert _open(F.rgba_png()).mode == "RGBA"
    assert "icc_profile" in _open(F.p3_jpeg()).info


@pytest.mark.parametrize(
    "make", [F.animated_gif, F.animated_webp, F.animated_avif], ids=["gif", "webp", "avif"]
)
def test_animated_fixtures_have_their_frames(make: Callable[..., bytes]) -> None:
    """Animated fixtures hold the requested number of frames."""
    assert getattr(_open(make(5)), "n_frames", 1) == 5


@pytest.mark.parametrize(
    ("data", "size"),
    [
        pytest.param(F.png_bomb(), (100_000, 100_000), id="png"),
        pytest.param(F.gif_bomb(), (65535, 65535), id="gif"),
        pytest.param(F.jpeg_bomb(), (60000, 60000), id="jpeg"),
    ],
)
def test_bombs_are_tiny_files_declaring_huge_canvases(data: bytes, size: tuple[int, int]) -> None:
    """Each bomb is under 1 KB yet its header declares billions of pixels."""
    assert len(data) < 1024
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    assert size[0] * size[1] > 3_000_000_000


def test_png_bomb_header_has_a_valid_crc() -> None:
    """The PNG bomb's IHDR carries a correct CRC, so readers do not discard it as damaged."""
    data = F.png_bomb()
    (length,) = struct.unpack(">I", data[8:12])
    body = data[12 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert crc == zlib.crc32(body)


@pytest.mark.parametrize("make", [F.noisy_jpeg, F.noisy_png, F.noisy_webp])
def test_truncated_keeps_the_header_and_loses_the_end(make: Callable[..., bytes]) -> None:
    """A truncated file starts like the original and is half as long."""
    whole = make()
    cut = F.truncated(whole)
    assert whole.startswith(cut)
    assert len(cut) == len(whole) // 2
