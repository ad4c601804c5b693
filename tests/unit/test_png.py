"""check_png(): a bounded walk over PNG chunks refuses bad headers and metadata bombs."""

from __future__ import annotations

import time
import zlib

import pytest

import fixtures as F
from imgpipe.core.png import MAX_INFLATED_CHUNK, check_png
from imgpipe.core.validation import inspect
from imgpipe.errors import CorruptError
from imgpipe.settings import Limits

# Highly compressible: ~1 KiB of zlib per MiB inflated.
_HUGE = b"\x00" * (MAX_INFLATED_CHUNK + 1)


def _ztxt(text: bytes, method: int = 0) -> bytes:
    return F.png_chunk(b"zTXt", b"Comment\x00" + bytes([method]) + zlib.compress(text))


def _iccp(profile: bytes) -> bytes:
    return F.png_chunk(b"iCCP", b"ICC\x00\x00" + zlib.compress(profile))


def _itxt(text: bytes, compressed: bool = True) -> bytes:
    body = zlib.compress(text) if compressed else text
    flag = b"\x01\x00" if compressed else b"\x00\x00"
    return F.png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00" + flag + b"en\x00xmp\x00" + body)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.png(), id="plain"),
        pytest.param(F.palette_png(), id="palette"),
        pytest.param(F.grey16_png(), id="grey16"),
        pytest.param(F.png_with_metadata(), id="text-xmp-icc"),
        pytest.param(F.png_with_chunks(_ztxt(b"x" * 1000)), id="small-ztxt"),
        pytest.param(F.png_with_chunks(_itxt(b"x" * MAX_INFLATED_CHUNK)), id="itxt-at-cap"),
        pytest.param(F.png_with_chunks(_itxt(_HUGE, compressed=False)), id="plain-itxt"),
        pytest.param(F.png_bomb(), id="pixel-bomb-is-not-its-business"),
    ],
)
def test_ordinary_pngs_pass(data: bytes) -> None:
    """Ordinary PNGs, modest compressed text and uncompressed text pass the walk."""
    check_png(data)


@pytest.mark.parametrize(
    "chunk",
    [
        pytest.param(_ztxt(_HUGE), id="ztxt"),
        pytest.param(_iccp(_HUGE), id="iccp"),
        pytest.param(_itxt(_HUGE), id="itxt"),
    ],
)
def test_compressed_metadata_bomb_is_refused(chunk: bytes) -> None:
    """A compressed chunk inflating past 1 MiB is ``corrupt``, found without inflating it all."""
    assert len(chunk) < 4096
    started = time.perf_counter()
    with pytest.raises(CorruptError, match="bomb"):
        check_png(F.png_with_chunks(chunk))
    assert time.perf_counter() - started < 1.0


def test_many_modest_chunks_are_capped_in_total() -> None:
    """Nine chunks of 1 MiB each pass one by one but exceed the 8 MiB total."""
    chunk = _ztxt(b"\x00" * MAX_INFLATED_CHUNK)
    check_png(F.png_with_chunks(*[chunk] * 8))
    with pytest.raises(CorruptError, match="8 MiB"):
        check_png(F.png_with_chunks(*[chunk] * 9))


def test_metadata_bomb_is_refused_by_inspect() -> None:
    """inspect() runs the walk on every PNG, so the bomb never reaches libpng."""
    with pytest.raises(CorruptError) as caught:
        inspect(F.png_with_chunks(_ztxt(_HUGE)), Limits())
    assert caught.value.code == "corrupt"
    assert caught.value.http_status == 422


@pytest.mark.parametrize(
    "ihdr",
    [
        pytest.param(F.png_ihdr(60, 40, depth=7), id="depth-7"),
        pytest.param(F.png_ihdr(60, 40, depth=16, colour=3), id="palette-16-bit"),
        pytest.param(F.png_ihdr(60, 40, depth=1, colour=2), id="rgb-1-bit"),
        pytest.param(F.png_ihdr(60, 40, colour=5), id="colour-type-5"),
        pytest.param(F.png_ihdr(60, 40, compression=1), id="compression-1"),
        pytest.param(F.png_ihdr(60, 40, filtering=1), id="filter-1"),
        pytest.param(F.png_ihdr(60, 40, interlace=2), id="interlace-2"),
        pytest.param(F.png_ihdr(60, 40)[:12], id="short-ihdr"),
    ],
)
def test_invalid_ihdr_is_refused(ihdr: bytes) -> None:
    """An IHDR with an impossible depth, colour type or method is ``corrupt``."""
    with pytest.raises(CorruptError, match="IHDR"):
        check_png(F.png_with_chunks(ihdr=ihdr))


def test_png_not_starting_with_ihdr_is_refused() -> None:
    """The first chunk must be IHDR."""
    data = F.png()
    with pytest.raises(CorruptError, match="IHDR"):
        check_png(data[:8] + F.png_chunk(b"tEXt", b"a\x00b") + data[8:])


def test_unknown_compression_method_in_text_is_refused() -> None:
    """zTXt compression methods other than 0 (zlib) do not exist; such a chunk is refused."""
    with pytest.raises(CorruptError, match="method 1"):
        check_png(F.png_with_chunks(_ztxt(b"x", method=1)))


def test_compressed_chunk_without_keyword_terminator_is_refused() -> None:
    """A zTXt chunk whose keyword never ends cannot be parsed and is refused."""
    with pytest.raises(CorruptError, match="keyword"):
        check_png(F.png_with_chunks(F.png_chunk(b"zTXt", b"no terminator")))


def test_damaged_zlib_stream_in_ancillary_chunk_is_tolerated() -> None:
    """A damaged compressed text chunk is skipped by decoders, so the walk lets it pass."""
    check_png(F.png_with_chunks(F.png_chunk(b"zTXt", b"Comment\x00\x00not zlib at all")))


def test_truncated_png_is_left_to_the_decoder() -> None:
    """A chunk cut short ends the walk quietly; the decoder reports the truncation later."""
    check_png(F.truncated(F.noisy_png()))
