"""Text from untrusted sources (file names, metadata fields) made safe to store and show."""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_FIELD_BYTES", "sanitize"]

MAX_FIELD_BYTES = 1024


def sanitize(value: str, limit: int = MAX_FIELD_BYTES) -> str:
    """Strip control/format characters and cap at ``limit`` UTF-8 bytes (cut on a char boundary)."""
    # Control, format, private-use and unassigned code points (category C*) become spaces.
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    cleaned = " ".join(cleaned.split())
    encoded = cleaned.encode("utf-8")
    if len(encoded) <= limit:
        return cleaned
    return encoded[:limit].decode("utf-8", "ignore").rstrip()
