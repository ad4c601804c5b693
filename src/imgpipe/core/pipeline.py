"""The core use case: image bytes in, renditions + metadata + tags out (or a typed rejection)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from imgpipe.core.fingerprint import fingerprint
from imgpipe.core.metadata import build_metadata
from imgpipe.core.render import render
from imgpipe.core.tags import LocalTagger
from imgpipe.core.validation import inspect
from imgpipe.model import Rendition, Tag
from imgpipe.ports import FaceFinder, Tagger, TagSubject
from imgpipe.settings import Settings

__all__ = ["Processed", "content_id", "process"]

MAX_FACES = 20  # kept in the record, largest first (a crowd would crowd out the rest)


@dataclass(frozen=True, slots=True)
class Processed:
    """A processed image: its metadata record, its renditions and its tags."""

    metadata: dict[str, Any]
    renditions: tuple[Rendition, ...]
    tags: tuple[Tag, ...]


def content_id(sha256: str) -> str:
    """A short, stable id derived from the content hash (same bytes, same id)."""
    return sha256[:20]


def process(
    data: bytes,
    settings: Settings,
    tagger: Tagger | None = None,
    sha256: str | None = None,
    focal_point: tuple[int, int] | None = None,
    faces: FaceFinder | None = None,
) -> Processed:
    """Validate, render, describe and tag ``data``; raise a ``RejectedError`` when refused.
    ``sha256``: the caller's digest of ``data``, when it has one (else it is computed here).
    ``focal_point``: a user's (display pixels), which cover crops keep instead of the one
    found; ``faces``: the finder whose faces, when it finds any, place the point before
    attention does. ``metadata["focal_point"]`` says which it was; ``metadata["faces"]`` lists
    the faces (display pixels, largest first) when there is a finder."""
    info = inspect(data, settings.limits)
    width, height = info.display_size
    if focal_point is not None:
        focal_point = (min(max(0, focal_point[0]), width - 1),
                       min(max(0, focal_point[1]), height - 1))  # fmt: skip
    rendered = render(data, info, settings.renditions, settings.encoding, focal_point, faces)
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    metadata = build_metadata(info, sha256, fingerprint(rendered.sample), settings.keep_gps)
    x, y = rendered.focal_point
    metadata["focal_point"] = {"x": x, "y": y, "source": rendered.focal_source}
    if faces is not None:
        boxes = sorted(rendered.faces, key=lambda f: f.width * f.height, reverse=True)
        metadata["faces"] = [f.in_pixels(width, height) for f in boxes[:MAX_FACES]]
    subject = TagSubject(metadata=metadata, preview_jpeg=rendered.preview)
    tags = tuple((tagger or LocalTagger()).tag(subject))
    return Processed(metadata=metadata, renditions=rendered.renditions, tags=tags)
