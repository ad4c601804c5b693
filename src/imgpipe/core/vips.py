"""libvips set up for untrusted input, and its errors translated into ours.

Importing this module configures the process once: every libvips loader is blocked except the
allow-listed web formats, libvips' own "untrusted" operations are blocked, the operation cache
is off (a long-lived worker must not hoard decoded images), glibc malloc keeps at most two
arenas and reuses freed pixel buffers (``_tune_malloc``), libvips' error buffer is read and
cleared safely whatever its bytes, and Pillow's decompression-bomb warning becomes an error. No
external program is ever started by either library.

``engine_ok`` is the self-check a long-lived worker runs after an unexpected failure: a worker
whose engine cannot decode a known-good image any more must stop taking work.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import warnings
from typing import Any

import pyvips
from PIL import Image

from imgpipe.core.formats import SourceFormat, decode_refusal
from imgpipe.errors import ImgpipeError, InternalError

__all__ = ["LOADERS", "VipsError", "engine_ok", "pyvips", "translate_error", "vips_version"]

VipsError = pyvips.Error

# The libvips loader class allowed for each sniffed format (HEIF/HEVC is decoded by pillow-heif:
# the libvips wheel ships without an HEVC decoder).
LOADERS: dict[SourceFormat, str] = {
    SourceFormat.JPEG: "VipsForeignLoadJpeg",
    SourceFormat.PNG: "VipsForeignLoadPng",
    SourceFormat.GIF: "VipsForeignLoadNsgif",
    SourceFormat.WEBP: "VipsForeignLoadWebp",
    SourceFormat.AVIF: "VipsForeignLoadHeif",
    SourceFormat.TIFF: "VipsForeignLoadTiff",
}

_SEEK_NOISE = re.compile(r"source: bad seek to \d+$")


def _read_error_buffer() -> str:
    """libvips' error text, decoded with replacement, and the buffer cleared in every case.

    pyvips decodes the buffer as strict UTF-8 *before* clearing it: one decoder message with a
    non-UTF-8 byte (libheif quotes box names from the file) made every later libvips error in
    the process raise ``UnicodeDecodeError`` - one hostile file poisoned the worker for good.
    """
    try:
        raw = pyvips.ffi.string(pyvips.vips_lib.vips_error_buffer())
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    finally:
        pyvips.vips_lib.vips_error_clear()


def _error_init(self: Any, message: str, detail: str | None = None) -> None:
    self.message = message
    self.detail = detail or _read_error_buffer()


# glibc's mallopt parameter numbers (malloc.h) and the values set, each with the environment
# variable and the tunable that set it too (then the operator's value is left alone).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum on 64-bit
MALLOC_TRIM_THRESHOLD = 128 * 2**20
_MALLOPTS = (
    (_M_ARENA_MAX, MALLOC_ARENAS, "MALLOC_ARENA_MAX", "arena_max"),
    (_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "mmap_threshold"),
    (_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "trim_threshold"),
)


def _tune_malloc() -> None:
    """glibc malloc set for a process that decodes one large image after another.

    - **At most two arenas.** glibc gives threads that allocate at once arenas of their own,
      up to 8 per core; libvips' worker threads (and the API's request threads) each end up
      with one, and the freed pixel buffers stay cached in all of them, so a long-lived
      process grows image after image. Two arenas keep it flat: measured with ``make soak``,
      worker RSS ~330 -> ~215 MiB; over 100 images in one worker, 204 -> 133 MiB.
    - **Pixel buffers from the heap, kept for the next image.** By default a buffer over
      glibc's sliding mmap threshold is a mapping of its own, unmapped when freed, and the
      heap is trimmed back to the kernel above a few MiB of free space, so each image faulted
      thousands of pages in again, each one zeroed by the kernel. Buffers under 32 MiB (a
      2048 px rendition is 9 MiB) now come from the heap, and up to 128 MiB of freed heap
      stays for the next image. Over 100 photos in one worker: page faults ~440,000 ->
      ~27,000 and system time 2.4 -> 1.4 s; total CPU 39.9 -> 38.7 s on a quiet machine
      (within the noise on a busy one); the peak RSS is unchanged (~150 MiB), and the
      worker stays near it between images instead of going down and up
      (``benchmarks/worker_memory.py``). Larger buffers are still mapped.

    Only glibc: elsewhere, or where libc cannot be loaded, nothing changes. A parameter the
    operator set (``MALLOC_ARENA_MAX``, ``GLIBC_TUNABLES=glibc.malloc.arena_max=...``) keeps
    the operator's value."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl, say)
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    for parameter, value, variable, tunable in _MALLOPTS:
        if variable not in os.environ and f"glibc.malloc.{tunable}=" not in tunables:
            mallopt(parameter, value)


def _configure() -> None:
    _tune_malloc()
    # The one replacement of pyvips internals: every ``pyvips.Error`` (raised deep inside
    # pyvips as well as by us) reads the buffer through ``_read_error_buffer``.
    pyvips.Error.__init__ = _error_init
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for loader in LOADERS.values():
        pyvips.operation_block_set(loader, False)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def vips_version() -> str:
    return f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


# A 2x2 PNG (one red, one green, one blue, one white pixel): decoded by ``engine_ok``.
_KNOWN_GOOD = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000164944415478da63f8"
    "cfc0c0f09f819181e1ffffff0c001ef604fd0b317c090000000049454e44ae426082"
)
_KNOWN_PIXELS = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])


def engine_ok() -> bool:
    """True when libvips still decodes a known-good image exactly and reports a bad one as a
    plain ``VipsError`` - the self-check after an unexpected failure."""
    try:
        image = pyvips.Image.new_from_buffer(_KNOWN_GOOD, "", fail_on="error")
        if image.write_to_memory() != _KNOWN_PIXELS:
            return False
        try:
            pyvips.Image.new_from_buffer(_KNOWN_GOOD[:40], "", fail_on="error").avg()
        except VipsError:
            return True  # a bad image must still fail as a plain, readable error
        else:
            return False
    except Exception:  # noqa: BLE001 - any other failure is exactly what this check detects
        return False


def translate_error(exc: Exception, fmt: SourceFormat, data: bytes) -> ImgpipeError:
    """Turn a decoder failure into ``truncated`` or ``corrupt`` (both permanent rejections) -
    unless the engine itself fails its self-check: then the input is not to blame, and the
    failure is ``internal`` (retried in a fresh worker), never a rejection of a good image."""
    lines = (line.strip() for line in str(exc).splitlines())
    # libvips logs every seek its buffer source refuses while probing: noise, not the reason.
    detail = " ".join(ln for ln in lines if ln and not _SEEK_NOISE.match(ln))[:300]
    detail = detail or type(exc).__name__
    if not engine_ok():
        return InternalError(f"the imaging engine is broken (it failed on: {detail})")
    return decode_refusal(fmt, data, detail)


_configure()
