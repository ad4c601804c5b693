"""Object keys and image ids. Keys are made here, from server-made ids - never from file names."""

from __future__ import annotations

import re
import secrets
import time

__all__ = [
    "PROCESSED_PREFIX",
    "RAW_PREFIX",
    "check_key",
    "id_from_key",
    "is_id",
    "is_key",
    "new_id",
    "raw_key",
    "rendition_key",
]

RAW_PREFIX = "raw/"
PROCESSED_PREFIX = "processed/"
_ID = r"[0-9a-f]{28}"
_KEY = re.compile(rf"^(raw/{_ID}|processed/{_ID}/[A-Za-z0-9_]{{1,64}}\.(jpg|webp|avif|png))$")
_ID_RE = re.compile(rf"^{_ID}$")


def new_id() -> str:
    """28 hex chars: a millisecond timestamp (so ids sort by creation) and 64 random bits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def is_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def raw_key(image_id: str) -> str:
    return check_key(f"{RAW_PREFIX}{image_id}")


def rendition_key(image_id: str, filename: str) -> str:
    return check_key(f"{PROCESSED_PREFIX}{image_id}/{filename}")


def check_key(key: str) -> str:
    """Return ``key`` if it is one imgpipe could have made, else raise ``ValueError``."""
    if not _KEY.match(key):
        raise ValueError(f"not an imgpipe object key: {key[:80]!r}")
    return key


def is_key(key: str) -> bool:
    """Whether ``key`` is one imgpipe could have made (stray temp files and foreign objects
    are not)."""
    return bool(_KEY.match(key))


def id_from_key(key: str) -> str:
    """The image id inside a raw or processed key."""
    return check_key(key).split("/")[1]
