"""The roles the core needs from the outside world, as narrow ``Protocol``s.

Adapters live in ``imgpipe.adapters`` (local and AWS) and in ``imgpipe.testing`` (in-memory
fakes); ``imgpipe.bootstrap`` is the only place that chooses between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imgpipe.model import Tag

__all__ = ["TagSubject", "Tagger"]


@dataclass(frozen=True, slots=True)
class TagSubject:
    """What a tagger may look at: the metadata record and a JPEG preview (<= 5 MB, no metadata)."""

    metadata: Mapping[str, Any]
    preview_jpeg: bytes


class Tagger(Protocol):
    """Labels an image.

    Contract: returns zero or more tags (names lower-case, confidence in [0, 1]); a tagger that
    cannot judge an image returns no tags rather than raising. A service outage may raise - the
    caller decides whether that fails the image - but a bad image must never make it raise.
    """

    def tag(self, subject: TagSubject) -> Sequence[Tag]: ...
