"""Content fingerprints from a small sRGB sample: perceptual hash, BlurHash, ThumbHash,
dominant colours, brightness and colourfulness.

Pure Python and Pillow, without NumPy: importing NumPy cost every worker and every Lambda start
40-60 ms and ~15 MB of memory, to transform matrices of 32 x 32 at most. Each transform
here is separable - a pass over the rows, then one over the columns, each a C-speed
``sum(map(mul, ...))`` - so the three hashes together cost about 2 ms per image (the ``blurhash``
package alone took 3.7 ms). Each is checked against an outside reference in the tests:
ThumbHash byte for byte against Evan Wallace's encoder (the dashboard's own file), BlurHash
against the ``blurhash`` package, the perceptual hash against the matrix form of ``imagehash``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any

from PIL import Image, ImageChops

__all__ = ["Fingerprint", "Sample", "blurhash", "fingerprint", "phash", "thumbhash"]

Fingerprint = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sample:
    """A small sRGB copy of an image, row by row, 8 bits per channel: ``rgb`` with any alpha
    flattened on white, ``rgba`` the same pixels with their alpha (255 where there is none)."""

    width: int
    height: int
    rgb: bytes
    rgba: bytes


_DOMINANT_COLOURS = 5
# The placeholders' and the palette's copy: both placeholders keep a few cosine terms (ThumbHash
# at most 7 a side, BlurHash 4), which 32 pixels a side resolve as well as 100 do, and five
# colours are the same five, at a quarter of the 64 px sample's work.
_SMALL_EDGE = 32
_BLURHASH_COMPONENTS = (4, 3)


def fingerprint(sample: Sample) -> Fingerprint:
    """``phash`` (64-bit DCT hash, hex), ``blurhash``, ``thumbhash``, ``dominant_colors``,
    ``brightness`` and ``colorfulness`` of ``sample`` (the placeholders and the palette of a
    copy at most 32 px a side, a box-filtered reduction).

    ``thumbhash`` is the standard base64 of a ThumbHash (Evan Wallace's format: aspect ratio
    and alpha kept, ~25 bytes) of the pixels with their alpha; ``blurhash`` is of the flattened
    ones. ``dominant_colors`` is a list of ``{"hex": "#rrggbb", "fraction": f}``, largest
    first. ``brightness`` is the mean luma in [0, 1]; ``colorfulness`` the mean chroma
    (max - min channel) in [0, 1].
    """
    size = (sample.width, sample.height)
    rgb = Image.frombytes("RGB", size, sample.rgb)
    factor = math.ceil(max(size) / _SMALL_EDGE)
    small_rgb = rgb.reduce(factor) if factor > 1 else rgb
    rgba = Image.frombytes("RGBA", size, sample.rgba)
    small_rgba = rgba.reduce(factor) if factor > 1 else rgba
    xc, yc = _BLURHASH_COMPONENTS
    if sample.height > sample.width:
        xc, yc = yc, xc
    return {
        "phash": phash(rgb),
        "blurhash": blurhash(small_rgb, xc, yc),
        "thumbhash": thumbhash(small_rgba),
        "dominant_colors": _dominant(small_rgb),
        **_tone(rgb),
    }


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(map(mul, a, b)))


def _row_pass(plane: Sequence[float], width: int, height: int,
              basis: list[list[float]]) -> list[tuple[float, ...]]:  # fmt: skip
    """The first half of a separable transform: every row of a ``width`` x ``height`` plane
    against every horizontal basis vector - one column of ``height`` sums per vector."""
    rows = (plane[y * width : (y + 1) * width] for y in range(height))
    return list(zip(*[[_dot(row, vector) for vector in basis] for row in rows], strict=True))


# --- perceptual hash -------------------------------------------------------------------------

_PHASH_INPUT, _PHASH_BITS = 32, 8
# The first 8 rows of the (unnormalised) DCT-II basis: ``D @ x`` is scipy's ``dct(x, type=2)``.
_DCT = [[2.0 * math.cos(math.pi * k * (2 * n + 1) / (2 * _PHASH_INPUT))
         for n in range(_PHASH_INPUT)] for k in range(_PHASH_BITS)]  # fmt: skip
# Below this fraction of the DC term a coefficient is rounding noise (a flat picture's exact
# zeros, say): it counts as 0, so such hashes are the same on every platform.
_NOISE = 1e-9


def phash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash as 16 hex digits - the same algorithm and bit order as
    the ``imagehash`` library's ``phash`` (SciPy, 130 MB of a Lambda package, is not needed
    for 64 coefficients). Near-duplicates differ in a few bits (Hamming distance)."""
    n = _PHASH_INPUT
    grey = image.convert("L").resize((n, n), Image.Resampling.LANCZOS).tobytes()
    # (D @ P @ D.T)[:8, :8]: each row against the 8 basis vectors, then each column.
    columns = _row_pass(grey, n, n, _DCT)
    low = [_dot(basis, columns[u]) for basis in _DCT for u in range(_PHASH_BITS)]
    floor = abs(low[0]) * _NOISE
    low = [c if abs(c) > floor else 0.0 for c in low]
    ordered = sorted(low)
    median = (ordered[31] + ordered[32]) / 2  # what imagehash takes: the median of the 64
    return f"{sum(1 << (63 - i) for i, c in enumerate(low) if c > median):016x}"


# --- BlurHash (https://blurha.sh) ------------------------------------------------------------

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB_TO_LINEAR = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
                   for v in (i / 255 for i in range(256))]  # fmt: skip


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - i) % 83] for i in range(1, length + 1))


def _linear_to_srgb(value: float) -> int:
    value = max(0.0, min(1.0, value))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _quantise_ac(value: float) -> int:
    root = math.copysign(abs(value) ** 0.5, value)
    return int(max(0.0, min(18.0, math.floor(root * 9.0 + 9.5))))


def blurhash(image: Image.Image, components_x: int, components_y: int) -> str:
    """The BlurHash of an RGB image with ``components_x`` x ``components_y`` cosine terms -
    the reference algorithm (Wolt's), computed one axis at a time."""
    width, height = image.size
    pixels = image.tobytes()
    linear = [_SRGB_TO_LINEAR[v] for v in pixels]
    basis_x = [[math.cos(math.pi * i * x / width) for x in range(width)]
               for i in range(components_x)]  # fmt: skip
    basis_y = [[math.cos(math.pi * j * y / height) for y in range(height)]
               for j in range(components_y)]  # fmt: skip
    # rows[c][i][y]: row y of channel c against horizontal term i.
    rows = [_row_pass(linear[c::3], width, height, basis_x) for c in range(3)]
    factors = []
    for j in range(components_y):
        for i in range(components_x):
            norm = (1.0 if i == j == 0 else 2.0) / (width * height)
            factors.append([norm * _dot(basis_y[j], rows[c][i]) for c in range(3)])
    dc, ac = factors[0], factors[1:]
    largest = max((abs(v) for f in ac for v in f), default=0.0)
    quant_max = int(max(0, min(82, math.floor(largest * 166 - 0.5))))
    scale = (quant_max + 1) / 166
    dc_value = _linear_to_srgb(dc[0]) << 16 | _linear_to_srgb(dc[1]) << 8 | _linear_to_srgb(dc[2])
    out = _base83(components_x - 1 + (components_y - 1) * 9, 1) + _base83(quant_max, 1)
    out += _base83(dc_value, 4)
    for r, g, b in ac:
        out += _base83(_quantise_ac(r / scale) * 361 + _quantise_ac(g / scale) * 19
                       + _quantise_ac(b / scale), 2)  # fmt: skip
    return out


# --- ThumbHash (https://evanw.github.io/thumbhash/) ------------------------------------------


def _js_round(value: float) -> int:
    return math.floor(value + 0.5)  # JavaScript's Math.round, which the format is defined with


def thumbhash(image: Image.Image) -> str:
    """The ThumbHash of an RGBA image (straight alpha, at most 100 px a side), base64 - Evan
    Wallace's ``rgbaToThumbHash``, with its double sum done one axis at a time."""
    w, h = image.size
    n = w * h
    data = image.tobytes()
    red, green, blue, alpha = data[0::4], data[1::4], data[2::4], data[3::4]
    a = [v / 255 for v in alpha]
    avg_a = sum(a)
    if alpha.count(255) == n:
        r, g, b = ([v / 255 for v in channel] for channel in (red, green, blue))
    else:  # composite atop the average colour
        avg = [_dot(channel, a) / 255 / avg_a if avg_a else 0.0 for channel in (red, green, blue)]
        r, g, b = ([m * (1 - t) + t / 255 * v for v, t in zip(channel, a, strict=True)]
                   for m, channel in zip(avg, (red, green, blue), strict=True))  # fmt: skip
    has_alpha = avg_a < n
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _js_round(l_limit * w / max(w, h)))
    ly = max(1, _js_round(l_limit * h / max(w, h)))
    rgb = list(zip(r, g, b, strict=True))
    l_dc, l_ac, l_scale = _thumb_channel([(x + y + z) / 3 for x, y, z in rgb], w, h,
                                         max(3, lx), max(3, ly))  # fmt: skip
    p_dc, p_ac, p_scale = _thumb_channel([(x + y) / 2 - z for x, y, z in rgb], w, h, 3, 3)
    q_dc, q_ac, q_scale = _thumb_channel([x - y for x, y, _ in rgb], w, h, 3, 3)
    landscape = w > h
    header24 = (_js_round(63 * l_dc) | _js_round(31.5 + 31.5 * p_dc) << 6
                | _js_round(31.5 + 31.5 * q_dc) << 12 | _js_round(31 * l_scale) << 18
                | has_alpha << 23)  # fmt: skip
    header16 = ((ly if landscape else lx) | _js_round(63 * p_scale) << 3
                | _js_round(63 * q_scale) << 9 | landscape << 15)  # fmt: skip
    out = [header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8]
    factors = l_ac + p_ac + q_ac
    if has_alpha:
        a_dc, a_ac, a_scale = _thumb_channel(a, w, h, 5, 5)
        out.append(_js_round(15 * a_dc) | _js_round(15 * a_scale) << 4)
        factors += a_ac
    start = len(out)
    out += [0] * ((len(factors) + 1) // 2)
    for i, f in enumerate(factors):
        out[start + (i >> 1)] |= _js_round(15 * f) << ((i & 1) << 2)
    return base64.b64encode(bytes(out)).decode("ascii")


def _thumb_channel(
    channel: list[float], w: int, h: int, nx: int, ny: int
) -> tuple[float, list[float], float]:
    """One channel's DC term, its AC terms normalised to [0, 1], and their scale."""
    basis_x = [[math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)] for cx in range(nx)]
    columns = _row_pass(channel, w, h, basis_x)
    dc, ac, scale = 0.0, [], 0.0
    for cy in range(ny):
        basis_y = [math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)]
        cx = 0
        while cx * ny < nx * (ny - cy):
            f = _dot(basis_y, columns[cx]) / (w * h)
            if cx or cy:
                ac.append(f)
                scale = max(scale, abs(f))
            else:
                dc = f
            cx += 1
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


# --- colours ---------------------------------------------------------------------------------

_LUMA = (0.2126, 0.7152, 0.0722)


def _tone(image: Image.Image) -> dict[str, float]:
    bands = image.split()
    n = image.width * image.height
    luma = sum(k * sum(band.tobytes()) for k, band in zip(_LUMA, bands, strict=True))
    high = ImageChops.lighter(ImageChops.lighter(bands[0], bands[1]), bands[2])
    low = ImageChops.darker(ImageChops.darker(bands[0], bands[1]), bands[2])
    chroma = sum(high.tobytes()) - sum(low.tobytes())
    return {"brightness": round(luma / n / 255, 4), "colorfulness": round(chroma / n / 255, 4)}


def _dominant(image: Image.Image) -> list[dict[str, Any]]:
    quantized = image.quantize(colors=_DOMINANT_COLOURS, method=Image.Quantize.MEDIANCUT)
    palette: list[int] = list(quantized.getpalette() or [])
    counts = quantized.getcolors() or []
    total = sum(c for c, _ in counts) or 1
    colours = []
    for count, index in sorted(counts, key=lambda ci: ci[0], reverse=True):
        start = int(index) * 3  # type: ignore[call-overload]  # palette images give int indices
        r, g, b = palette[start : start + 3]
        colours.append({"hex": f"#{r:02x}{g:02x}{b:02x}", "fraction": round(count / total, 4)})
    return colours
