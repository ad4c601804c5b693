"""Webhooks from a real ``imgpipe serve`` to a receiver on 127.0.0.1: signed, retried with
backoff through the durable queue, never redirected, dead-lettered and counted in /health."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from imgpipe.webhooks import verify_signature

from .conftest import StartServer
from .harness import jpeg_bytes, upload, wait_for

SECRET = "webhook-secret-for-the-tests-0123"
SCHEMA = json.loads((files("imgpipe") / "schemas" / "image-event.v1.json").read_text("utf-8"))
pytestmark = pytest.mark.timeout(180)


@dataclass
class Receiver:
    """A webhook receiver: ``/hook`` fails its first delivery with 500, then answers 204;
    ``/redirect`` always answers 302 to ``/elsewhere``."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with got.lock:
                got.requests.append((self.path, dict(self.headers), body))
                first = sum(1 for p, _, _ in got.requests if p == self.path) == 1
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{got.url}/elsewhere")
            else:
                self.send_response(500 if self.path == "/hook" and first else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def test_events_are_signed_retried_never_redirected_and_dead_lettered(
    serve: StartServer, receiver: Receiver
) -> None:
    server = serve(workers=1, webhook_urls=f"{receiver.url}/hook {receiver.url}/redirect",
                   webhook_secret=SECRET, webhook_max_attempts=3,
                   webhook_backoff_s=0.2)  # fmt: skip
    image_id = upload(server.client, jpeg_bytes()).json()["id"]
    wait_for(lambda: len(receiver.paths("/hook")) >= 2, 60, lambda: f"received {receiver.requests}")

    (first_headers, first_body), (headers, body) = receiver.paths("/hook")[:2]
    assert body == first_body  # the same delivery, retried
    assert headers["Imgpipe-Event-Id"] == first_headers["Imgpipe-Event-Id"]
    assert headers["Imgpipe-Event-Type"] == "image.processed"
    assert headers["Content-Type"] == "application/json"
    assert verify_signature(SECRET, body, headers["Imgpipe-Signature"])
    assert not verify_signature("another-secret-0123456789", body, headers["Imgpipe-Signature"])
    assert not verify_signature(SECRET, body + b" ", headers["Imgpipe-Signature"])
    event = json.loads(body)
    jsonschema.Draft202012Validator(SCHEMA).validate(event)
    assert (event["type"], event["subject"], event["data"]["status"]) == (
        "image.processed", image_id, "processed")  # fmt: skip

    # The redirecting receiver: each attempt fails, none follows the Location, and after 3 the
    # delivery is dead - counted by /health.
    def dead() -> bool:
        hooks = server.client.get("/health").json()["webhooks"]
        return bool(hooks and hooks["dead"] >= 1)

    wait_for(dead, 60, lambda: server.client.get("/health").text)
    assert len(receiver.paths("/redirect")) == 3
    assert receiver.paths("/elsewhere") == []

    assert server.client.delete(f"/images/{image_id}").status_code == 204
    wait_for(lambda: any(h["Imgpipe-Event-Type"] == "image.deleted"
                         for h, _ in receiver.paths("/hook")), 30)  # fmt: skip
    time.sleep(0.5)
    types = [h["Imgpipe-Event-Type"] for h, _ in receiver.paths("/hook")]
    assert types.count("image.deleted") == 1


def test_webhook_urls_without_a_secret_are_refused_at_start(serve: StartServer) -> None:
    with pytest.raises(RuntimeError, match="did not come up"):
        serve(workers=1, webhook_urls="http://127.0.0.1:9/hook")
