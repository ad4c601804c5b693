"""``python -m imgpipe.demo DIR``: write a small demo folder of generated images.

Good images in several formats, plus two that imgpipe must refuse (a truncated JPEG and an SVG
with a script), so a first run shows both outcomes. Everything is drawn here; nothing is fetched.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["write_demo"]


def _scene(width: int, height: int, sky: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (width, height), sky)
    draw = ImageDraw.Draw(image)
    for y in range(height // 2, height):
        shade = int(60 + 120 * (y - height / 2) / (height / 2))
        draw.line([(0, y), (width, y)], fill=(30, shade, 40))
    draw.ellipse(
        [width * 0.7, height * 0.1, width * 0.85, height * 0.1 + width * 0.15], fill=(255, 220, 80)
    )
    draw.polygon(
        [(width * 0.1, height / 2), (width * 0.35, height * 0.2), (width * 0.6, height / 2)],
        fill=(90, 90, 110),
    )
    return image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write_demo(folder: Path) -> list[Path]:
    """Write the demo images into ``folder`` (created if needed); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[271], exif[272], exif[274] = "imgpipe", "Demo Camera", 6  # make, model, orientation
    photo = _encode(_scene(3000, 2000, (120, 170, 230)), "JPEG", quality=90, exif=exif.tobytes())
    logo = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse([100, 100, 700, 700], fill=(220, 40, 90, 255))
    frames = [_scene(480, 320, (40 * i, 90, 200)) for i in range(4)]
    animation = io.BytesIO()
    frames[0].save(animation, "GIF", save_all=True, append_images=frames[1:], duration=200)
    files = {
        "rotated-photo.jpg": photo,
        "sunset.webp": _encode(_scene(2400, 1600, (240, 140, 90)), "WEBP", quality=90),
        "logo-with-alpha.png": _encode(logo, "PNG"),
        "animation.gif": animation.getvalue(),
        "refused-truncated.jpg": photo[: len(photo) // 3],
        "refused-script.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
        b"</script></svg>",
    }
    paths = []
    for name, data in files.items():
        (path := folder / name).write_bytes(data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo")
    written = write_demo(target)
    print(f"wrote {len(written)} demo images to {target}/")
