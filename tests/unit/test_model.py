"""Value types: a rendition's file name and JSON description."""

from __future__ import annotations

import pytest

from imgpipe.model import Rendition


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [("jpeg", "large.jpg"), ("webp", "large.webp"), ("avif", "large.avif"), ("png", "large.png")],
)
def test_rendition_filename_uses_the_usual_extension(fmt: str, filename: str) -> None:
    """JPEG renditions are ``.jpg``; other formats use their own name as extension."""
    assert Rendition("large", fmt, 10, 10, b"x").filename == filename


def test_rendition_description_has_no_bytes() -> None:
    """describe() gives name, format, size and byte count, never the data itself."""
    assert Rendition("thumb", "webp", 320, 213, b"12345").describe() == {
        "name": "thumb",
        "format": "webp",
        "width": 320,
        "height": 213,
        "bytes": 5,
    }
