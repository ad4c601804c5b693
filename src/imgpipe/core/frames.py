"""Every frame an animation declares, checked against its canvas and the pixel cap before decoding.

libvips (and the decoders under it) size their buffers from each frame's own descriptor: a GIF
image descriptor, an APNG ``fcTL`` chunk or a WebP ``ANMF`` chunk can claim far more than the
canvas the header announces, and the canvas check alone never sees it. The walks here read
descriptor fields only, each step bounded by the data, so a hostile file costs microseconds.
A frame that leaves its canvas, or declares more than ``max_pixels``, is ``too_many_pixels``
(Pillow refuses both too). Truncated or odd containers are left to the decoder to judge.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from imgpipe.core.formats import SourceFormat
from imgpipe.core.png import chunks
from imgpipe.errors import TooManyFramesError, TooManyPixelsError
from imgpipe.settings import Limits

__all__ = ["check_frames"]

# (left, top, width, height) of one frame, in canvas pixels
Rect = tuple[int, int, int, int]


def check_frames(fmt: SourceFormat, data: bytes, limits: Limits) -> int:
    """The number of frames declared (1 for a still image or a format not walked); raise
    ``TooManyPixelsError`` for a frame outside its canvas or over the pixel cap, and
    ``TooManyFramesError`` for more frames than ``max_frames``."""
    walk = _WALKS.get(fmt)
    if walk is None:
        return 1
    canvas, frames = walk(data)
    if canvas is None:
        return 1
    canvas_w, canvas_h = canvas
    count = 0
    for count, (left, top, width, height) in enumerate(frames, start=1):
        if count > limits.max_frames:
            raise TooManyFramesError(f"more than {limits.max_frames} frames declared")
        if width * height > limits.max_pixels:
            raise TooManyPixelsError(
                f"frame {count} declares {width}x{height} = {width * height / 1e6:.1f} MP, over "
                f"the {limits.max_pixels / 1e6:g} MP limit"
            )
        if left + width > canvas_w or top + height > canvas_h:
            raise TooManyPixelsError(
                f"frame {count} ({width}x{height} at {left},{top}) leaves the "
                f"{canvas_w}x{canvas_h} canvas"
            )
    return max(1, count)


def _gif(data: bytes) -> tuple[tuple[int, int] | None, Iterator[Rect]]:
    if len(data) < 13:
        return None, iter(())
    canvas_w, canvas_h, flags = struct.unpack("<HHB", data[6:11])
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return (canvas_w, canvas_h), _gif_frames(data, start)


def _gif_frames(data: bytes, pos: int) -> Iterator[Rect]:
    end = len(data)
    while pos < end:
        introducer = data[pos]
        if introducer == 0x21:  # extension: label, then data sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif introducer == 0x2C:  # image descriptor
            if pos + 10 > end:
                return
            left, top, width, height, flags = struct.unpack("<HHHHB", data[pos + 1 : pos + 10])
            yield left, top, width, height
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)  # past the LZW minimum code size
        else:  # the trailer (0x3B) or bytes the decoder will judge
            return


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    end = len(data)
    while pos < end and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _png(data: bytes) -> tuple[tuple[int, int] | None, Iterator[Rect]]:
    found = chunks(data)
    first = next(found, None)
    if first is None or first[0] != b"IHDR" or len(first[1]) < 8:
        return None, iter(())
    canvas = struct.unpack(">II", first[1][:8])
    return canvas, _apng_frames(found)


def _apng_frames(found: Iterator[tuple[bytes, bytes]]) -> Iterator[Rect]:
    for kind, body in found:
        if kind == b"fcTL" and len(body) >= 20:
            width, height, left, top = struct.unpack(">IIII", body[4:20])
            yield left, top, width, height


def _webp(data: bytes) -> tuple[tuple[int, int] | None, Iterator[Rect]]:
    # RIFF header (12 bytes), then VP8X first in an extended file: flags(4) w-1(3) h-1(3).
    if data[12:16] != b"VP8X" or len(data) < 30:
        return None, iter(())
    canvas = (_u24(data, 24) + 1, _u24(data, 27) + 1)
    return canvas, _webp_frames(data)


def _webp_frames(data: bytes) -> Iterator[Rect]:
    pos, end = 12, len(data)
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if kind == b"ANMF" and pos + 24 <= end:
            body = pos + 8  # x/2, y/2, w-1, h-1: 24-bit little-endian each
            yield (2 * _u24(data, body), 2 * _u24(data, body + 3),
                   _u24(data, body + 6) + 1, _u24(data, body + 9) + 1)  # fmt: skip
        pos += 8 + size + (size & 1)


def _u24(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 3], "little")


_WALKS = {SourceFormat.GIF: _gif, SourceFormat.PNG: _png, SourceFormat.WEBP: _webp}
