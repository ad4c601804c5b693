"""The files the browser tests upload, drawn with numpy and Pillow (no fixtures on disk).

Pleasant enough to stand in the README's screenshot: a sunset (portrait, with a hostile EXIF
make), a large alpine scene over 4 MiB (takes the signed-form path), a lagoon and a meadow; and
two files that must be refused: an SVG with a script and a JPEG cut in half.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin

__all__ = ["HOSTILE_MAKE", "MODEL", "UploadSet", "small_jpeg", "write_upload_set"]

HOSTILE_MAKE = "<script>window.__pwned=1</script>"
MODEL = "PWN-1 Mark II"
_HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b"<script>window.__pwned=1</script><rect width='64' height='64' fill='red'/></svg>"
)


def _gradient(width: int, height: int, top: tuple[int, ...], bottom: tuple[int, ...]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    colours = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.broadcast_to(colours, (height, width, 3)).copy()


def _disc(pixels: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, ...]) -> None:
    height, width = pixels.shape[:2]
    y, x = np.ogrid[:height, :width]
    pixels[(x - cx) ** 2 + (y - cy) ** 2 <= r * r] = colour


def _ridge(pixels: np.ndarray, base: float, amplitude: float, waves: float, seed: int,
           colour: tuple[int, ...]) -> None:  # fmt: skip
    """Fill everything below a wavy horizon (``base`` is a fraction of the height)."""
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(seed)
    x = np.linspace(0, waves * np.pi, width)
    phases = rng.uniform(0, 2 * np.pi, 3)
    line = sum(np.sin(x * k + p) / k for k, p in zip((1, 2.3, 5.1), phases, strict=True))
    horizon = (base + amplitude * line / 1.8) * height
    rows = np.arange(height)[:, None]
    pixels[rows >= horizon[None, :]] = colour


def _jpeg(pixels: np.ndarray, **params: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", **params)
    return out.getvalue()


def sunset_jpeg() -> bytes:
    """900 x 1200 portrait, EXIF: the hostile make, a model, capture time and exposure."""
    pixels = _gradient(900, 1200, (255, 183, 94), (120, 48, 128))
    _disc(pixels, 450, 700, 170, (255, 236, 179))
    _ridge(pixels, 0.74, 0.05, 3, 1, (58, 32, 84))
    _ridge(pixels, 0.86, 0.03, 5, 2, (33, 20, 52))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = HOSTILE_MAKE
    exif[ExifTags.Base.Model] = MODEL
    exif.get_ifd(ExifTags.IFD.Exif).update({
        ExifTags.Base.DateTimeOriginal: "2024:06:21 21:04:30",
        ExifTags.Base.ExposureTime: TiffImagePlugin.IFDRational(1, 250),
        ExifTags.Base.FNumber: TiffImagePlugin.IFDRational(28, 10),
        ExifTags.Base.ISOSpeedRatings: 200,
        ExifTags.Base.FocalLength: TiffImagePlugin.IFDRational(35, 1),
    })  # fmt: skip
    return _jpeg(pixels, quality=90, exif=exif)


def alpine_jpeg() -> bytes:
    """5000 x 4000 mountains under film grain at quality 95: well over the 4 MiB direct cap."""
    pixels = _gradient(5000, 4000, (92, 156, 230), (214, 232, 247))
    _ridge(pixels, 0.55, 0.12, 4, 3, (122, 138, 170))
    _ridge(pixels, 0.68, 0.08, 7, 4, (70, 96, 120))
    _ridge(pixels, 0.82, 0.04, 11, 5, (52, 110, 70))
    grain = np.random.default_rng(7).normal(0, 9, pixels.shape[:2]).astype(np.float32)
    pixels += grain[:, :, None]
    return _jpeg(pixels, quality=95)


def lagoon_png() -> bytes:
    """A 1000 x 1000 square PNG: sea, sand and a sun."""
    pixels = _gradient(1000, 1000, (20, 184, 196), (8, 76, 124))
    _ridge(pixels, 0.8, 0.02, 2, 6, (238, 214, 160))
    _disc(pixels, 760, 220, 90, (255, 249, 214))
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def meadow_webp() -> bytes:
    """A 1600 x 1000 WebP: green hills under a pale sky."""
    pixels = _gradient(1600, 1000, (186, 220, 255), (250, 250, 235))
    _ridge(pixels, 0.6, 0.06, 3, 8, (120, 180, 80))
    _ridge(pixels, 0.75, 0.05, 5, 9, (70, 140, 60))
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "WEBP", quality=85)
    return out.getvalue()


def small_jpeg(seed: int) -> bytes:
    """A 640 x 480 landscape: one of a few skies over hills, chosen by ``seed``."""
    skies = [((255, 200, 150), (250, 120, 90)), ((150, 200, 255), (230, 240, 255)),
             ((40, 50, 110), (140, 90, 160)), ((255, 240, 200), (255, 200, 120))]  # fmt: skip
    top, bottom = skies[seed % len(skies)]
    pixels = _gradient(640, 480, top, bottom)
    _ridge(pixels, 0.7, 0.06, 3, 20 + seed, (60 + 20 * seed, 90, 80))
    return _jpeg(pixels, quality=88)


class UploadSet:
    """Paths of the files one test uploads, by role."""

    def __init__(self, folder: Path) -> None:
        self.sunset = folder / "sunset-portrait.jpg"
        self.alpine = folder / "alpine-large.jpg"
        self.lagoon = folder / "lagoon.png"
        self.meadow = folder / "meadow.webp"
        self.svg = folder / "hostile.svg"
        self.truncated = folder / "truncated.jpg"

    @property
    def good(self) -> list[Path]:
        return [self.sunset, self.alpine, self.lagoon, self.meadow]

    @property
    def all(self) -> list[Path]:
        return [self.lagoon, self.meadow, self.svg, self.truncated, self.alpine, self.sunset]


def write_upload_set(folder: Path) -> UploadSet:
    """Draw every file into ``folder``."""
    files = UploadSet(folder)
    files.sunset.write_bytes(sunset_jpeg())
    files.alpine.write_bytes(alpine_jpeg())
    files.lagoon.write_bytes(lagoon_png())
    files.meadow.write_bytes(meadow_webp())
    files.svg.write_bytes(_HOSTILE_SVG)
    whole = _jpeg(_gradient(800, 600, (200, 60, 60), (60, 60, 200)), quality=90)
    files.truncated.write_bytes(whole[: len(whole) // 2])  # a valid header, then nothing
    return files
