"""A walk over a PNG's chunks before any decoder sees it.

libpng/libspng tolerate some things a careful pipeline should not: compressed metadata chunks
(zTXt, iTXt, iCCP) that inflate to many megabytes from a few kilobytes, and unknown compression
methods. The walk is bounded: it reads chunk headers only, and inflates a compressed chunk no
further than the cap.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from imgpipe.errors import CorruptError

__all__ = ["MAX_INFLATED_CHUNK", "check_png", "chunks"]

MAX_INFLATED_CHUNK = 1 << 20  # as Pillow's MAX_TEXT_CHUNK: 1 MiB per text or profile chunk
_MAX_INFLATED_TOTAL = 8 << 20
_VALID_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``(type, body)`` of each chunk in order, up to IEND or a truncated chunk (the last one
    yielded, short: the decoder reports truncation as such). Headers only; no CRC check."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        yield kind, body
        if kind == b"IEND" or len(body) < length:
            return
        pos += 12 + length


def check_png(data: bytes) -> None:
    """Raise ``CorruptError`` for a bad IHDR, a non-zlib compressed chunk or a metadata bomb."""
    inflated_total, seen_ihdr = 0, False
    for kind, body in chunks(data):
        if not seen_ihdr:
            _check_ihdr(kind, body)
            seen_ihdr = True
        elif kind in (b"zTXt", b"iCCP", b"iTXt"):
            inflated_total += _check_compressed(kind, body)
            if inflated_total > _MAX_INFLATED_TOTAL:
                raise CorruptError("PNG metadata inflates past 8 MiB (a decompression bomb)")


def _check_ihdr(kind: bytes, body: bytes) -> None:
    if kind != b"IHDR" or len(body) != 13:
        raise CorruptError("PNG does not start with a valid IHDR chunk")
    _w, _h, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if depth not in _VALID_DEPTHS.get(colour, set()):
        raise CorruptError(f"PNG IHDR has an invalid bit depth {depth} for colour type {colour}")
    if compression or filtering or interlace > 1:
        raise CorruptError("PNG IHDR names an unknown compression, filter or interlace method")


def _check_compressed(kind: bytes, body: bytes) -> int:
    """Inflate a compressed chunk up to the cap; return how many bytes it inflated to."""
    name_end = body.find(b"\x00")
    if name_end < 0:
        raise CorruptError(f"PNG {kind.decode()} chunk has no keyword terminator")
    if kind == b"iTXt":
        if name_end + 2 >= len(body) or body[name_end + 1] == 0:
            return 0  # uncompressed international text
        method, rest = body[name_end + 2], body[name_end + 3 :]
        # language tag and translated keyword, each NUL-terminated, precede the text
        for _ in range(2):
            rest = rest[rest.find(b"\x00") + 1 :]
    else:
        if name_end + 1 >= len(body):
            raise CorruptError(f"PNG {kind.decode()} chunk is too short")
        method, rest = body[name_end + 1], body[name_end + 2 :]
    if method != 0:
        raise CorruptError(f"PNG {kind.decode()} chunk uses unknown compression method {method}")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(rest, MAX_INFLATED_CHUNK + 1)
    except zlib.error:
        return 0  # decoders skip a damaged ancillary chunk; not our reason to refuse
    if len(out) > MAX_INFLATED_CHUNK:
        raise CorruptError(
            f"PNG {kind.decode()} chunk inflates past {MAX_INFLATED_CHUNK >> 20} MiB "
            "(a decompression bomb)"
        )
    return len(out)
