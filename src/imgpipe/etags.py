"""HTTP validators, one rule each: how an ETag is made from content, and how ``If-None-Match``
is matched (renditions, dashboard files)."""

from __future__ import annotations

import hashlib

__all__ = ["content_etag", "etag_matches"]


def content_etag(data: bytes) -> str:
    """The strong ETag of some bytes, quoted: the first 128 bits of their sha256."""
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``etag`` against an If-None-Match list (or ``*``)."""
    if not if_none_match:
        return False
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
