"""The engine's floor: a bare pyvips script with none of imgpipe's work around it - decode once
at the needed scale (shrink-on-load), cascade 2048 -> 1024 -> 320, six encodes (JPEG q85, WebP
q80 effort 2), no validation, metadata, fingerprints or tags. Its own start-up included.

Usage: python floor.py OUT PHOTO... (the spec of benchmarks/peers.py)"""

import sys
from pathlib import Path

import pyvips

WIDTHS = (2048, 1024, 320)

out = Path(sys.argv[1])
for number, path in enumerate(sys.argv[2:]):
    data = Path(path).read_bytes()
    # Each size is encoded twice, so it is made once in memory (a decode is sequential).
    image = pyvips.Image.thumbnail_buffer(data, WIDTHS[0], height=10_000_000, size="down")
    image = image.copy_memory()
    for width in WIDTHS:
        if width < image.width:
            image = image.resize(width / image.width, kernel="lanczos3").copy_memory()
        (out / f"{number}-{width}.jpg").write_bytes(image.jpegsave_buffer(Q=85, keep="none"))
        (out / f"{number}-{width}.webp").write_bytes(
            image.webpsave_buffer(Q=80, effort=2, keep="none")
        )
