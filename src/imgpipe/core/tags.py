"""The local tagger: labels computed from the metadata record alone - no network, no model.

Tags: orientation (``landscape``/``portrait``/``square``/``panorama``), dominant colour names
(``color:blue``), ``dark``/``bright``, ``monochrome``, ``has-alpha``, ``animated``,
``camera:<make>`` and ``has-gps``.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Mapping, Sequence
from typing import Any

from imgpipe.model import Tag
from imgpipe.ports import Tagger, TagSubject

__all__ = ["CompositeTagger", "LocalTagger", "NullTagger", "colour_name"]

_SOURCE = "local"
_PANORAMA_RATIO = 2.5
_SQUARE_TOLERANCE = 0.05
_DARK, _BRIGHT = 0.25, 0.75
_MONOCHROME_CHROMA = 0.04
_MIN_COLOUR_FRACTION = 0.15
# Hue wheel in degrees -> name; the first entry whose upper bound exceeds the hue wins.
_HUES = (
    (15, "red"),
    (45, "orange"),
    (70, "yellow"),
    (165, "green"),
    (195, "cyan"),
    (255, "blue"),
    (290, "purple"),
    (335, "pink"),
    (360, "red"),
)


def colour_name(hex_colour: str) -> str:
    """Name an ``#rrggbb`` colour with one of a dozen plain words."""
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, saturation = colorsys.rgb_to_hls(r, g, b)
    if lightness < 0.12:
        return "black"
    if lightness > 0.92:
        return "white"
    if saturation < 0.15:
        return "gray"
    degrees = hue * 360
    if 15 <= degrees < 45 and lightness < 0.45:
        return "brown"
    return next(name for bound, name in _HUES if degrees < bound)


def _orientation(width: int, height: int) -> Tag:
    ratio = width / height
    if max(ratio, 1 / ratio) >= _PANORAMA_RATIO:
        return Tag("panorama", 1.0, _SOURCE)
    if abs(ratio - 1) <= _SQUARE_TOLERANCE:
        return Tag("square", 1.0, _SOURCE)
    return Tag("landscape" if ratio > 1 else "portrait", 1.0, _SOURCE)


def _colours(metadata: Mapping[str, Any]) -> list[Tag]:
    weights: dict[str, float] = {}
    for colour in metadata.get("dominant_colors", []):
        name = colour_name(colour["hex"])
        weights[name] = weights.get(name, 0.0) + float(colour["fraction"])
    return [
        Tag(f"color:{name}", min(1.0, weight), _SOURCE)
        for name, weight in sorted(weights.items(), key=lambda kv: -kv[1])
        if weight >= _MIN_COLOUR_FRACTION
    ]


class LocalTagger:
    """Tags from metadata and pixel statistics; deterministic and instant."""

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        md = subject.metadata
        tags = [_orientation(int(md["width"]), int(md["height"]))]
        tags.extend(_colours(md))
        brightness = float(md.get("brightness", 0.5))
        if brightness < _DARK:
            tags.append(Tag("dark", round(1 - brightness / _DARK, 4), _SOURCE))
        elif brightness > _BRIGHT:
            tags.append(Tag("bright", round((brightness - _BRIGHT) / (1 - _BRIGHT), 4), _SOURCE))
        if float(md.get("colorfulness", 1.0)) < _MONOCHROME_CHROMA:
            tags.append(Tag("monochrome", 1.0, _SOURCE))
        for flag, name in (
            ("has_alpha", "has-alpha"),
            ("animated", "animated"),
            ("has_gps", "has-gps"),
        ):
            if md.get(flag):
                tags.append(Tag(name, 1.0, _SOURCE))
        make = str(md.get("exif", {}).get("make", "")).strip().lower()
        if slug := re.sub(r"[^a-z0-9]+", "-", make).strip("-")[:40]:
            tags.append(Tag(f"camera:{slug}", 1.0, _SOURCE))
        return tags


class NullTagger:
    """Tags nothing: for deployments that switch tagging off."""

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        return ()


class CompositeTagger:
    """The tags of every tagger in turn (e.g. local, then Rekognition); an error from any one
    propagates, exactly as if that tagger ran alone."""

    def __init__(self, *taggers: Tagger) -> None:
        self.taggers = taggers

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        return [tag for tagger in self.taggers for tag in tagger.tag(subject)]
