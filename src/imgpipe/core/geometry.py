"""Pure rendition geometry: from a source's display size and the specs, the exact output sizes.

This is the plan the engine executes; it has no image code so it can be tested as arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imgpipe.model import FaceBox
from imgpipe.settings import RenditionSpec

__all__ = ["PlannedRendition", "crop_origin", "display_size", "face_focus", "plan",
           "round_half_up"]  # fmt: skip

# A face smaller than this share of the largest one's area is a bystander: it does not move the
# focal point (a crowd behind the subject, a face on a poster).
_BYSTANDER_SHARE = 0.25

# EXIF orientations 5..8 swap width and height (transpose, rotate 90, transverse, rotate 270).
_SWAPPING = frozenset({5, 6, 7, 8})


def round_half_up(value: float) -> int:
    """Round like people do (2.5 -> 3), not like bankers (2.5 -> 2)."""
    return math.floor(value + 0.5)


def display_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size a viewer shows after applying an EXIF orientation (1..8; anything else is 1)."""
    return (height, width) if orientation in _SWAPPING else (width, height)


@dataclass(frozen=True, slots=True)
class PlannedRendition:
    """A spec resolved against one source: resize to ``scaled``, then crop to ``size`` (around
    the focal point, ``crop_origin``)."""

    spec: RenditionSpec
    scaled: tuple[int, int]
    size: tuple[int, int]

    @property
    def cropped(self) -> bool:
        return self.scaled != self.size


def _plan_one(width: int, height: int, spec: RenditionSpec) -> PlannedRendition:
    box_w = spec.width
    box_h = spec.height if spec.height is not None else math.inf
    if spec.fit == "cover":
        scale = min(1.0, max(box_w / width, box_h / height))
    else:
        scale = min(1.0, box_w / width, box_h / height)
    scaled = (max(1, round_half_up(width * scale)), max(1, round_half_up(height * scale)))
    cover = spec.fit == "cover"
    size = (min(scaled[0], box_w), min(scaled[1], int(box_h))) if cover else scaled
    return PlannedRendition(spec=spec, scaled=scaled, size=size)


def plan(width: int, height: int, specs: Iterable[RenditionSpec]) -> tuple[PlannedRendition, ...]:
    """Plan every rendition of a ``width`` x ``height`` (display) source, largest first.

    Largest first is the cascade order: each rendition can be made from the one before it.
    Never upscales: a source smaller than a box is kept at its own size.
    """
    if width < 1 or height < 1:
        raise ValueError(f"source size must be positive, got {width}x{height}")
    planned = [_plan_one(width, height, s) for s in specs]
    return tuple(sorted(planned, key=lambda p: p.scaled[0] * p.scaled[1], reverse=True))


def crop_origin(
    scaled: tuple[int, int], size: tuple[int, int], focus: tuple[float, float] | None = None
) -> tuple[int, int]:
    """The top-left corner of a ``size`` crop of a ``scaled`` image: centred on ``focus`` (the
    focal point as fractions of the image, 0..1 across and down) as far as the image allows,
    so the point is inside every crop; the centre crop when ``focus`` is ``None``."""
    (width, height), (crop_w, crop_h) = scaled, size
    if focus is None:
        return (width - crop_w) // 2, (height - crop_h) // 2
    fx, fy = (min(1.0, max(0.0, f)) for f in focus)
    left = min(max(0, round_half_up(fx * width - crop_w / 2)), width - crop_w)
    top = min(max(0, round_half_up(fy * height - crop_h / 2)), height - crop_h)
    return left, top


def face_focus(faces: Sequence[FaceBox], display: tuple[int, int]) -> tuple[int, int] | None:
    """The focal point faces give a ``display``-sized image: the centre of the box around every
    face at least a quarter the area of the largest (in display pixels); ``None`` without
    faces."""
    if not faces:
        return None
    biggest = max(f.width * f.height for f in faces)
    kept = [f for f in faces if f.width * f.height >= biggest * _BYSTANDER_SHARE]
    left = min(max(0.0, f.left) for f in kept)
    top = min(max(0.0, f.top) for f in kept)
    right = max(min(1.0, f.left + f.width) for f in kept)
    bottom = max(min(1.0, f.top + f.height) for f in kept)
    width, height = display
    x = min(max(0, round_half_up((left + right) / 2 * width)), width - 1)
    y = min(max(0, round_half_up((top + bottom) / 2 * height)), height - 1)
    return x, y
