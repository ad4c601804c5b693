"""In-memory fakes of every port, shipped with the package for tests and experiments - and of
what Lambda hands a handler (``LambdaContext``, ``to_v2_event``).

They implement the port contracts exactly (the contract suites in ``tests/contract`` run
against them too), keep everything in dicts, and take a ``clock`` so time can be moved by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from imgpipe.cursors import decode_cursor, encode_cursor
from imgpipe.errors import ConflictError, NotFoundError
from imgpipe.keys import check_key
from imgpipe.model import FaceBox, ImageRecord, Message, Page, Status, Tag, refusal
from imgpipe.ports import TagSubject
from imgpipe.similarity import Matches, Similar, check_distance, distance, indexed_phash, ranked

__all__ = ["FixedFaces", "FixedTagger", "InMemoryBlobStore", "InMemoryEventPublisher",
           "InMemoryMetadataStore", "InMemoryQueue", "LambdaContext", "ManualClock",
           "decode_cursor", "encode_cursor",
           "to_v2_event"]  # fmt: skip


class ManualClock:
    """A clock that only moves when told to (``advance``)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InMemoryBlobStore:
    """Objects in a dict."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, dict[str, str]]] = {}

    def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        check_key(key)
        info = {**(metadata or {}), "content_type": content_type, "size": str(len(data)),
                "etag": hashlib.md5(data, usedforsecurity=False).hexdigest()}  # fmt: skip
        self._objects[key] = (bytes(data), info)

    def get(self, key: str) -> bytes:
        check_key(key)
        if key not in self._objects:
            raise NotFoundError(f"no object {key}")
        return self._objects[key][0]

    def head(self, key: str) -> Mapping[str, str] | None:
        check_key(key)
        found = self._objects.get(key)
        return dict(found[1]) if found else None

    def delete(self, key: str) -> None:
        check_key(key)
        self._objects.pop(key, None)

    def list(self, prefix: str) -> Iterator[str]:
        return iter(sorted(k for k in self._objects if k.startswith(prefix)))

    def download_url(self, key: str, filename: str, expires_s: int) -> str | None:
        return None


class InMemoryEventPublisher:
    """Keeps every published event in ``events``; ``fail`` makes ``publish`` raise."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail: Exception | None = None

    def publish(self, event: Mapping[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.events.append(dict(event))

    def stats(self) -> Mapping[str, float] | None:
        return None

    def types(self) -> list[tuple[str, str]]:
        """``(type, image id)`` of every event, in order."""
        return [(e["type"], e["subject"]) for e in self.events]


class InMemoryMetadataStore:
    """Records in a dict, with the same conditional-update semantics as the real stores."""

    def __init__(self) -> None:
        self._records: dict[str, ImageRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: ImageRecord) -> None:
        with self._lock:
            if record.id in self._records:
                raise ConflictError(f"image {record.id} already exists")
            self._records[record.id] = record

    def get(self, image_id: str) -> ImageRecord | None:
        return self._records.get(image_id)

    def update(
        self,
        image_id: str,
        expected: frozenset[Status],
        changes: Mapping[str, Any],
        if_generation: int | None = None,
    ) -> ImageRecord:
        with self._lock:
            current = self._records.get(image_id)
            if current is None:
                raise NotFoundError(f"no image {image_id}")
            if reason := refusal(current, expected, if_generation):
                raise ConflictError(reason)
            updated = replace(current, **changes)
            self._records[image_id] = updated
            return updated

    def list(
        self,
        status: Status | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        items = sorted(self._records.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            items = [r for r in items if (r.created_at, r.id) < after]
        if status is not None:
            items = [r for r in items if r.status == status]
        if tag is not None:
            items = [r for r in items if any(t["name"] == tag for t in r.tags)]
        page = items[:limit]
        more = len(items) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
        return Page(items=page, next_cursor=next_cursor)

    def find_processed_by_sha256(self, sha256: str) -> ImageRecord | None:
        matches = [r for r in self._records.values()
                   if r.sha256 == sha256 and r.status == "processed"]  # fmt: skip
        return min(matches, key=lambda r: (r.created_at, r.id), default=None)

    def similar(self, phash: str, max_distance: int, limit: int) -> Matches:
        check_distance(max_distance)
        found = [Similar(r, d) for r in list(self._records.values())
                 if (h := indexed_phash(r)) is not None
                 and (d := distance(h, phash)) <= max_distance]  # fmt: skip
        return ranked(found, limit)

    def delete(self, image_id: str) -> None:
        with self._lock:
            self._records.pop(image_id, None)


class InMemoryQueue:
    """SQS semantics in a list: visibility timeout, receive count, dead letters after
    ``max_receives``. ``receive(wait_s=...)`` waits on a condition, it does not spin."""

    def __init__(
        self,
        visibility_s: float = 30.0,
        max_receives: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.visibility_s = visibility_s
        self.max_receives = max_receives
        self._clock = clock
        self._messages: dict[str, dict[str, Any]] = {}
        self._dead: dict[str, Message] = {}
        self._cond = threading.Condition()
        self._sequence = 0
        self._sent_at: dict[str, float] = {}

    def send(self, body: Mapping[str, Any]) -> str:
        message_id = uuid.uuid4().hex
        with self._cond:
            self._sequence += 1
            self._sent_at[message_id] = self._clock()
            self._messages[message_id] = {
                # JSON round trip: SQS carries strings, so a body that is not JSON fails here too.
                "body": json.loads(json.dumps(body)),
                "visible_at": self._clock(),
                "count": 0,
                "receipt": None,
                "sent": self._sequence,
            }
            self._cond.notify_all()
        return message_id

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        deadline = time.monotonic() + wait_s
        with self._cond:
            while True:
                found = self._take(
                    max_messages, self.visibility_s if visibility_s is None else visibility_s
                )
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(timeout=min(remaining, 0.05))

    def _take(self, max_messages: int, visibility_s: float) -> list[Message]:
        now = self._clock()
        out: list[Message] = []
        ready = sorted((m["sent"], mid) for mid, m in self._messages.items()
                       if m["visible_at"] <= now)  # fmt: skip
        for _, message_id in ready:
            if len(out) >= max_messages:
                break
            message = self._messages[message_id]
            if message["count"] >= self.max_receives:
                del self._messages[message_id]
                self._dead[message_id] = Message(message_id, "", message["body"],
                                                 message["count"])  # fmt: skip
                continue
            message["count"] += 1
            message["receipt"] = f"{message_id}:{uuid.uuid4().hex}"
            message["visible_at"] = now + visibility_s
            out.append(Message(message_id, message["receipt"], dict(message["body"]),
                               message["count"]))  # fmt: skip
        return out

    def _by_receipt(self, receipt: str) -> dict[str, Any] | None:
        message = self._messages.get(receipt.split(":", 1)[0])
        return message if message and message["receipt"] == receipt else None

    def delete(self, receipt: str) -> None:
        with self._cond:
            if self._by_receipt(receipt) is not None:
                del self._messages[receipt.split(":", 1)[0]]

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        with self._cond:
            if (message := self._by_receipt(receipt)) is not None:
                message["visible_at"] = self._clock() + visibility_s
                self._cond.notify_all()

    def dead_letters(self) -> list[Message]:
        return list(self._dead.values())

    def stats(self) -> Mapping[str, float]:
        now = self._clock()
        visible = [m for m in self._messages.values() if m["visible_at"] <= now]
        oldest = min((self._sent_at.get(k, now) for k in self._messages), default=now)
        return {"visible": len(visible), "in_flight": len(self._messages) - len(visible),
                "dead": len(self._dead), "oldest_age_s": now - oldest}  # fmt: skip


class FixedTagger:
    """Returns the same tags for every image."""

    def __init__(self, tags: Sequence[Tag] = (Tag("fixed", 1.0, "test"),)) -> None:
        self.tags = tuple(tags)

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        return self.tags


class FixedFaces:
    """Finds the same faces on every image, and keeps each preview it was shown."""

    def __init__(self, faces: Sequence[FaceBox] = ()) -> None:
        self.faces = tuple(faces)
        self.previews: list[bytes] = []

    def find_faces(self, preview_jpeg: bytes) -> Sequence[FaceBox]:
        self.previews.append(preview_jpeg)
        return self.faces


@dataclass(frozen=True)
class LambdaContext:
    """What Lambda passes a handler as ``context`` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    region: str = "eu-west-1"
    account: str = "123456789012"
    # What each call of get_remaining_time_in_millis answers, in turn (then the last, forever).
    remaining_ms: tuple[int, ...] = (60_000,)
    _calls: list[int] = field(default_factory=list, init=False, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        self._calls.append(1)
        return self.remaining_ms[min(len(self._calls), len(self.remaining_ms)) - 1]


def to_v2_event(method: str, target: str, headers: dict[str, str], body: bytes,
                source_ip: str = "198.51.100.7",
                claims: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The API Gateway HTTP API payload v2 event for one request (body base64), as the Lambda
    API function receives it; ``claims``: what a JWT authorizer verified."""
    path, _, query = target.partition("?")
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": params or None,
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": headers.get("host", "local"),
            "domainPrefix": "local", "requestId": uuid.uuid4().hex, "routeKey": "$default",
            "stage": "$default", "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            **({"authorizer": {"jwt": {"claims": claims, "scopes": None}}} if claims else {}),
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }  # fmt: skip
