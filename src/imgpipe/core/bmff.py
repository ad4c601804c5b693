"""The image sizes an AVIF or HEIF file declares, read from its boxes before any decoder runs.

libvips' heifload cannot represent a side over 2^30 px: it logs a GLib warning and reports the
image as 1 px wide, so its lazy open would pass the pixel caps. The ``ispe`` (image spatial
extent) properties in ``meta/iprp/ipco`` are what libheif sizes its buffers from; ``inspect``
checks every one of them. The walk reads box headers only, each step bounded by the data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["declared_sizes"]

_PATH = (b"meta", b"iprp", b"ipco")  # the boxes that lead to the item properties
_FULL_BOXES = {b"meta"}  # version(1) + flags(3) before their children


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return  # malformed: the decoder will say so
        yield kind, pos + header, pos + size
        pos += size


def declared_sizes(data: bytes) -> list[tuple[int, int]]:
    """(width, height) of every ``ispe`` property; empty when there are none to be found."""
    level = [(0, len(data))]
    for wanted in _PATH:
        level = [(payload + (4 if kind in _FULL_BOXES else 0), end)
                 for start, stop in level
                 for kind, payload, end in _boxes(data, start, stop) if kind == wanted]  # fmt: skip
    sizes = []
    for start, stop in level:
        for kind, payload, end in _boxes(data, start, stop):
            if kind == b"ispe" and end - payload >= 12:
                sizes.append(struct.unpack(">II", data[payload + 4 : payload + 12]))
    return sizes
