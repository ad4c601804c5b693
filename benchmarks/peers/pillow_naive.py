"""Naive Pillow, the way the usual tutorial writes it: decode once, resize from the full image
for every width (LANCZOS), save JPEG q85 and WebP q80 (Pillow's default method 4).

Usage: python pillow_naive.py OUT PHOTO... (the spec of benchmarks/peers.py)"""

import sys
from pathlib import Path

from PIL import Image, ImageOps

WIDTHS = (2048, 1024, 320)

out = Path(sys.argv[1])
for number, path in enumerate(sys.argv[2:]):
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    for width in WIDTHS:
        if width >= image.width:
            resized = image
        else:
            resized = image.resize(
                (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS
            )
        resized.save(out / f"{number}-{width}.jpg", "JPEG", quality=85)
        resized.save(out / f"{number}-{width}.webp", "WEBP", quality=80)
