"""``EventPublisher`` for the local face: signed webhook deliveries through a durable queue.

``WebhookPublisher.publish`` queues one delivery per configured URL in the ``webhooks`` queue
(the same SQLite file and SQS semantics as the jobs), so an event survives a crash and a
receiver that is down. ``WebhookDeliverer`` (a thread of ``imgpipe serve``) POSTs each one,
signed as ``imgpipe.webhooks`` documents: a 2xx answer deletes it; anything else - an error
status, a redirect (never followed), a timeout, a refused connection - hides it for a backoff
that doubles with every attempt (``backoff_s``, 2x ..., at most an hour), and the queue
dead-letters it after ``max_attempts`` receives (``/health`` counts them). Only the configured
URLs are ever called: a queued delivery to a URL no longer configured is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from imgpipe import __version__
from imgpipe.model import Message
from imgpipe.ports import Queue
from imgpipe.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign

__all__ = ["WebhookDeliverer", "WebhookPublisher"]

log = logging.getLogger("imgpipe.webhooks")

_MAX_BACKOFF_S = 3600.0


class WebhookPublisher:
    """Queues each event once per URL in ``urls`` (on ``queue``, the webhooks queue)."""

    def __init__(self, queue: Queue, urls: Sequence[str]) -> None:
        self.queue, self.urls = queue, tuple(urls)

    def publish(self, event: Mapping[str, Any]) -> None:
        for url in self.urls:
            self.queue.send({"url": url, "event": dict(event)})

    def stats(self) -> Mapping[str, float] | None:
        return self.queue.stats()


class WebhookDeliverer:
    """Delivers what ``WebhookPublisher`` queued, one receive at a time (``deliver``)."""

    def __init__(
        self,
        queue: Queue,
        urls: Sequence[str],
        secret: str,
        timeout_s: float = 10.0,
        backoff_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.queue, self.urls, self.secret = queue, frozenset(urls), secret
        self.backoff_s = backoff_s
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False,
                                  transport=transport,
                                  headers={"User-Agent": f"imgpipe/{__version__}"})  # fmt: skip

    def deliver(self, wait_s: float = 1.0, max_messages: int = 1) -> int:
        """Receive up to ``max_messages`` deliveries (waiting up to ``wait_s``) and send them;
        the number received. One at a time by default: a delivery stays hidden for three
        timeouts, so a batch of slow receivers must not outlast it (and be sent twice)."""
        messages = self.queue.receive(max_messages=max_messages, wait_s=wait_s)
        for message in messages:
            self._send(message)
        return len(messages)

    def close(self) -> None:
        self._http.close()

    def _send(self, message: Message) -> None:
        url, event = message.body.get("url"), message.body.get("event")
        if url not in self.urls or not isinstance(event, dict):
            log.warning("dropping a delivery to a URL that is not configured", extra={"url": url})
            self.queue.delete(message.receipt)
            return
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   EVENT_ID_HEADER: str(event.get("id", "")),
                   EVENT_TYPE_HEADER: str(event.get("type", ""))}  # fmt: skip
        try:
            status = self._http.post(url, content=body, headers=headers).status_code
            problem = None if 200 <= status < 300 else f"answered {status}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            self.queue.delete(message.receipt)
            return
        delay = min(self.backoff_s * 2 ** (message.receive_count - 1), _MAX_BACKOFF_S)
        log.warning("webhook delivery failed; retrying later",
                    extra={"url": url, "event": event.get("id"), "problem": problem,
                           "attempt": message.receive_count, "retry_in_s": delay})  # fmt: skip
        self.queue.change_visibility(message.receipt, delay)
