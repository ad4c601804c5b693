"""Signed read URLs, so that an ``<img>`` can load a rendition without an ``Authorization`` header.

A browser never sends a bearer token with an image request, so when the API needs a token the
rendition URLs it hands out carry their own credential: ``?expires=<unix seconds>&sig=<hex>``,
an HMAC-SHA256 over the path and the expiry. The expiry is rounded up to the end of the next UTC
day, so a URL stays the same (and cacheable) for a whole day and is valid for 24 to 48 hours.
The key is derived from the access token: changing the token revokes every URL signed with it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs

__all__ = ["UrlSigner"]

_DAY = 86_400


class UrlSigner:
    """Signs and checks read-only URLs for one deployment."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the URL signing secret must be at least 16 bytes")
        self._key, self._clock = secret, clock

    @classmethod
    def from_token(cls, token: str) -> UrlSigner:
        """A signer whose key is derived from the API's access token (never the token itself)."""
        key = hmac.new(token.encode(), b"imgpipe read urls v1", hashlib.sha256).digest()
        return cls(key)

    def sign(self, path: str) -> str:
        """``path`` with its expiry and signature appended as a query string."""
        expires = (int(self._clock()) // _DAY + 2) * _DAY
        return f"{path}?expires={expires}&sig={self._mac(path, expires)}"

    def verify(self, path: str, query_string: bytes) -> bool:
        """True if the query carries an unexpired signature made for exactly ``path``."""
        try:
            query = parse_qs(query_string.decode("ascii"), strict_parsing=True)
            (expires_text,), (signature,) = query["expires"], query["sig"]
            expires = int(expires_text)
        except (UnicodeDecodeError, ValueError, KeyError):
            return False
        if expires < self._clock():
            return False
        return hmac.compare_digest(self._mac(path, expires), signature)

    def _mac(self, path: str, expires: int) -> str:
        message = f"{expires}\n{path}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
