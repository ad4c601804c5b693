"""Signed webhook deliveries: how imgpipe signs them, and how a receiver checks them.

Every delivery is ``POST <url>`` with the event as its JSON body and these headers:

- ``Imgpipe-Event-Id``: the event's ``id`` (deliveries are at least once: deduplicate on it);
- ``Imgpipe-Event-Type``: ``image.processed`` ...;
- ``Imgpipe-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` with the
  shared secret (``IMGPIPE_WEBHOOK_SECRET``).

A receiver verifies with ``verify_signature`` (pure standard library; copy it if you like)::

    from imgpipe.webhooks import verify_signature
    if not verify_signature(SECRET, request.body, request.headers["Imgpipe-Signature"]):
        return 400

The timestamp bounds replays: a signature older than ``tolerance_s`` (5 minutes) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["EVENT_ID_HEADER", "EVENT_TYPE_HEADER", "SIGNATURE_HEADER", "sign", "verify_signature"]

SIGNATURE_HEADER = "Imgpipe-Signature"
EVENT_ID_HEADER = "Imgpipe-Event-Id"
EVENT_TYPE_HEADER = "Imgpipe-Event-Type"
_TOLERANCE_S = 300


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Imgpipe-Signature`` value of ``body`` at ``timestamp`` (now by default)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_mac(secret, moment, body)}"


def verify_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    tolerance_s: float = _TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (the ``Imgpipe-Signature`` value) signs ``body`` with ``secret``
    within ``tolerance_s`` of ``now``; constant-time, ``False`` for anything malformed."""
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _mac(secret, timestamp, body))
