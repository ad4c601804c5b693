"""Opaque pagination cursors for newest-first listings, shared by every metadata store."""

from __future__ import annotations

import base64
import json

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(created_at: str, image_id: str) -> str:
    """An opaque cursor pointing after (``created_at``, ``image_id``) in newest-first order."""
    raw = json.dumps([created_at, image_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of ``encode_cursor``; raise ``ValueError`` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, image_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(created_at, str) or not isinstance(image_id, str):
        raise ValueError("invalid cursor")  # noqa: TRY004 - a bad value sent by a client
    return created_at, image_id
