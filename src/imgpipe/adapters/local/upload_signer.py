"""Presigned-style uploads for the local server: an HMAC-signed policy in S3's POST shape.

The fields mirror an S3 presigned POST (``key``, ``Content-Type``, ``policy`` and a signature);
the policy is base64 JSON with the expiry and the conditions, and the local upload endpoint
checks all of them with ``verify`` before it keeps a byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from imgpipe.errors import UploadPolicyError
from imgpipe.ports import PresignedPost

__all__ = ["HmacUploadSigner", "UploadGrant"]

SIGNATURE_FIELD = "x-imgpipe-signature"


class UploadGrant:
    """What a verified policy allows: the key, the content type and the size range."""

    def __init__(self, key: str, content_type: str, min_bytes: int, max_bytes: int) -> None:
        self.key, self.content_type = key, content_type
        self.min_bytes, self.max_bytes = min_bytes, max_bytes

    def check_size(self, size: int) -> None:
        if not self.min_bytes <= size <= self.max_bytes:
            raise UploadPolicyError(
                f"upload of {size:,} bytes is outside the policy's range "
                f"[{self.min_bytes:,}, {self.max_bytes:,}]"
            )


class HmacUploadSigner:
    """Signs and verifies upload policies with a server-side secret (HMAC-SHA256)."""

    def __init__(self, secret: bytes, url: str, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 32:
            raise ValueError("the upload secret must be at least 32 bytes")
        self._secret, self._url, self._clock = secret, url, clock

    def derive(self, purpose: str) -> bytes:
        """A key for another use of this server's secret (HMAC of ``purpose``): the upload
        policies' key itself never signs anything else."""
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int
    ) -> PresignedPost:
        expires = datetime.fromtimestamp(self._clock() + expires_s, UTC)
        expiration = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        policy = {
            "expiration": expiration,
            "conditions": [
                {"key": key},
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
        }
        encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
        fields = {"key": key, "Content-Type": content_type, "policy": encoded,
                  SIGNATURE_FIELD: self._sign(encoded)}  # fmt: skip
        return PresignedPost(url=self._url, fields=fields, expires_at=expiration)

    def _sign(self, encoded_policy: str) -> str:
        return hmac.new(self._secret, encoded_policy.encode(), hashlib.sha256).hexdigest()

    def verify(self, fields: Mapping[str, str]) -> UploadGrant:
        """Check signature, expiry, key and content type; return the grant (size checked later)."""
        encoded, signature = fields.get("policy", ""), fields.get(SIGNATURE_FIELD, "")
        if not encoded or not signature:
            raise UploadPolicyError("the upload form lacks its policy or signature")
        if not hmac.compare_digest(self._sign(encoded), signature):
            raise UploadPolicyError("the upload policy's signature does not match")
        policy = _decode(encoded)
        try:
            expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")
            conditions: dict[str, Any] = {}
            for condition in policy["conditions"]:
                if isinstance(condition, dict):
                    conditions.update(condition)
                else:
                    conditions[condition[0]] = condition[1:]
            low, high = (int(v) for v in conditions["content-length-range"])
            key, content_type = str(conditions["key"]), str(conditions["Content-Type"])
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise UploadPolicyError("the upload policy is malformed") from exc
        if expires.replace(tzinfo=UTC).timestamp() < self._clock():
            raise UploadPolicyError("the upload policy has expired")
        if fields.get("key") != key:
            raise UploadPolicyError("the form's key is not the one the policy allows")
        if fields.get("Content-Type") != content_type:
            raise UploadPolicyError(f"the policy allows only Content-Type {content_type}")
        return UploadGrant(key, content_type, low, high)


def _decode(encoded: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except ValueError as exc:
        raise UploadPolicyError("the upload policy is not valid base64 JSON") from exc
    if not isinstance(policy, dict):
        raise UploadPolicyError("the upload policy is not a JSON object")
    return policy
