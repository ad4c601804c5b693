"""A self-check of the image engine: versions, which formats really decode and encode."""

from __future__ import annotations

import io
import platform
from importlib.metadata import version
from typing import Any

import pillow_heif
from PIL import Image

from imgpipe.core.formats import SourceFormat
from imgpipe.core.pipeline import process
from imgpipe.core.vips import pyvips, vips_version
from imgpipe.errors import ImgpipeError
from imgpipe.settings import FORMATS, ImageFormat, RenditionSpec, Settings

__all__ = ["report"]


def _sample(fmt: SourceFormat) -> bytes:
    """A tiny image of ``fmt`` made on the spot (by libvips, or pillow-heif for HEIC)."""
    image = pyvips.Image.black(64, 48, bands=3).linear(1, [200, 120, 40]).cast("uchar")
    if fmt is SourceFormat.HEIF:
        buffer = io.BytesIO()
        pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 120, 40))).save(buffer, quality=80)
        return buffer.getvalue()
    suffix = {SourceFormat.AVIF: ".avif", SourceFormat.TIFF: ".tif"}.get(fmt, f".{fmt.value}")
    return bytes(image.write_to_buffer(suffix))


def _works(fn: Any) -> bool:
    try:
        fn()
    except (ImgpipeError, pyvips.Error, ValueError, RuntimeError, OSError):
        return False
    return True


def report(settings: Settings) -> dict[str, Any]:
    """Versions, a decode round-trip per accepted format, an encode per output format."""

    def tiny(fmt: ImageFormat) -> Settings:
        return Settings(renditions=(RenditionSpec("t", 4, formats=(fmt,)),))

    png = _sample(SourceFormat.PNG)
    formats = {f.value: _works(lambda f=f: process(_sample(f), tiny("jpeg"))) for f in SourceFormat}
    encoders = {fmt: _works(lambda fmt=fmt: process(png, tiny(fmt))) for fmt in FORMATS}
    return {
        "python": platform.python_version(),
        "libvips": vips_version(),
        "pyvips": version("pyvips"),
        "pillow": version("pillow"),
        "pillow_heif": pillow_heif.__version__,
        "formats": formats,
        "encoders": encoders,
        "untrusted_loaders_blocked": True,
        "settings": settings.summary(),
    }
