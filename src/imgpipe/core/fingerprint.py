"""Content fingerprints from a small sRGB sample: perceptual hash, BlurHash, ThumbHash,
dominant colours."""

from __future__ import annotations

import base64
from typing import Any

import blurhash
import numpy as np
import thash
from PIL import Image

__all__ = ["Fingerprint", "fingerprint", "phash", "thumbhash"]

Sample = np.ndarray[Any, np.dtype[np.uint8]]
Fingerprint = dict[str, Any]

_DOMINANT_COLOURS = 5
_PHASH_INPUT, _PHASH_BITS = 32, 8


def _dct_matrix(n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The (unnormalised) DCT-II basis: ``M @ x`` is scipy's ``dct(x, type=2)``."""
    k = np.arange(n)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n))


_DCT = _dct_matrix(_PHASH_INPUT)


def phash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash as 16 hex digits - the same algorithm and bit order as
    the ``imagehash`` library's ``phash``, computed with NumPy alone (SciPy is 130 MB of a
    Lambda package). Near-duplicates differ in a few bits (Hamming distance)."""
    grey = image.convert("L").resize((_PHASH_INPUT, _PHASH_INPUT), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:_PHASH_BITS, :_PHASH_BITS].flatten()
    # The median of the 64 coefficients (what imagehash takes), as the mean of the middle two
    # sorted: ``np.median`` imports ``numpy.ma`` on first use - 12 ms of every worker's start.
    middle = np.sort(low)[low.size // 2 - 1 : low.size // 2 + 1]
    bits = low > (middle[0] + middle[1]) / 2
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


_BLURHASH_COMPONENTS = (4, 3)


def fingerprint(sample: Sample, rgba: Sample | None = None) -> Fingerprint:
    """``phash`` (64-bit DCT hash, hex), ``blurhash``, ``thumbhash``, ``dominant_colors`` and
    ``brightness`` of ``sample`` (``H x W x 3``, at most 100 px a side for the ThumbHash).

    ``thumbhash`` is the standard base64 of a ThumbHash (Evan Wallace's format: aspect ratio
    and alpha kept, ~25 bytes), of ``rgba`` (the same pixels with their alpha) when given.
    ``dominant_colors`` is a list of ``{"hex": "#rrggbb", "fraction": f}``, largest first.
    ``brightness`` is the mean luma in [0, 1]; ``colorfulness`` the mean chroma in [0, 1].
    """
    pil = Image.fromarray(sample, mode="RGB")
    xc, yc = _BLURHASH_COMPONENTS
    if sample.shape[1] < sample.shape[0]:
        xc, yc = yc, xc
    rgb = sample.astype(np.float32)
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return {
        "phash": phash(pil),
        # A placeholder is a blur: every other pixel is plenty, and the encoder is pure Python
        # (13 % of all CPU per image at the full 64 px sample, a quarter of that here).
        "blurhash": blurhash.encode(sample[::2, ::2].tolist(), components_x=xc, components_y=yc),
        "thumbhash": thumbhash(sample if rgba is None else rgba),
        "dominant_colors": _dominant(pil),
        "brightness": round(float(luma.mean()) / 255, 4),
        "colorfulness": round(float(chroma.mean()) / 255, 4),
    }


def thumbhash(pixels: Sample) -> str:
    """The ThumbHash of an ``H x W x 3`` or ``H x W x 4`` (straight alpha) uint8 array, base64."""
    height, width = pixels.shape[:2]
    if pixels.shape[2] == 3:
        pixels = np.dstack([pixels, np.full((height, width), 255, np.uint8)])
    hashed = thash.rgba_to_thumb_hash(width, height, pixels.reshape(-1))
    return base64.b64encode(bytes(hashed)).decode("ascii")


def _dominant(pil: Image.Image) -> list[dict[str, Any]]:
    quantized = pil.quantize(colors=_DOMINANT_COLOURS, method=Image.Quantize.MEDIANCUT)
    palette: list[int] = list(quantized.getpalette() or [])
    counts = quantized.getcolors() or []
    total = sum(c for c, _ in counts) or 1
    colours = []
    for count, index in sorted(counts, key=lambda ci: ci[0], reverse=True):
        start = int(index) * 3  # type: ignore[call-overload]  # palette images give int indices
        r, g, b = palette[start : start + 3]
        colours.append({"hex": f"#{r:02x}{g:02x}{b:02x}", "fraction": round(count / total, 4)})
    return colours
