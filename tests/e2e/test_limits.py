"""The limits of the local HTTP face, against a real ``imgpipe serve``: a request deadline, a
concurrency cap that answers instead of dropping, bursts absorbed by the backlog, and the access
token a non-loopback bind requires."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from .conftest import StartServer
from .harness import HOST, Server, error_of, jpeg_bytes, upload

pytestmark = pytest.mark.e2e


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _start_slow_upload(server: Server, declared: int = 100_000) -> socket.socket:
    """A POST /images whose headers arrived and whose body dribbles (nothing more is sent)."""
    sock = socket.create_connection((HOST, _port(server)), timeout=30)
    sock.sendall(b"POST /images HTTP/1.1\r\nHost: e2e\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: %d\r\n\r\n\xff\xd8" % declared)  # fmt: skip
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_body_that_dribbles_is_cut_at_the_request_deadline(serve: StartServer) -> None:
    """Two bytes then silence: a JSON 408 request_timeout once request_deadline_s has passed,
    and nothing is stored."""
    server = serve(workers=1, request_deadline_s=2)
    started = time.monotonic()
    with _start_slow_upload(server) as sock:
        status, _, body = _response(sock)
    elapsed = time.monotonic() - started
    assert status == 408
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert 1.5 < elapsed < 10
    assert server.records() == {}


def test_past_the_concurrency_cap_requests_get_a_json_503_not_a_dropped_connection(
    serve: StartServer,
) -> None:
    """With max_requests=2 held by two slow uploads, a third request is answered 503 busy with
    Retry-After at once; once they end, requests are served again."""
    server = serve(workers=1, max_requests=2, request_deadline_s=3)
    with ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(_start_slow_upload(server))
        time.sleep(0.5)
        busy = server.client.get("/images")
        assert busy.status_code == 503
        assert error_of(busy)["code"] == "busy"
        assert busy.headers["retry-after"] == "1"
    time.sleep(3.5)  # the slow uploads hit their deadline and free their slots
    assert server.client.get("/images").status_code == 200


def test_a_burst_of_300_connections_is_served_whole(serve: StartServer) -> None:
    """300 connections opened at once, each sending one GET: every one gets a 200."""
    server = serve(workers=1)

    def one(_: int) -> int:
        with socket.create_connection((HOST, _port(server)), timeout=60) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
            return _response(sock)[0]

    with ThreadPoolExecutor(max_workers=300) as pool:
        statuses = list(pool.map(one, range(300)))
    assert statuses.count(200) == 300, {s: statuses.count(s) for s in set(statuses)}


def test_with_a_token_every_private_route_needs_the_bearer(serve: StartServer) -> None:
    """With IMGPIPE_API_TOKEN set: no or a wrong token is a 401; the right one works; the
    dashboard, API description and health stay public."""
    server = serve(workers=1, api_token="s3cret-token-for-tests")
    for method, path in (("GET", "/images"), ("POST", "/images"), ("DELETE", "/images/x")):
        refused = server.client.request(method, path)
        assert refused.status_code == 401, (method, path)
        assert error_of(refused)["code"] == "unauthorized"
    wrong = server.client.get("/images", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = {"Authorization": "Bearer s3cret-token-for-tests"}
    uploaded = server.client.post("/images", content=jpeg_bytes((64, 64)),
                                  headers={**good, "Content-Type": "image/jpeg"})  # fmt: skip
    assert uploaded.status_code == 202, uploaded.text
    assert server.client.get("/images", headers=good).status_code == 200
    for path in ("/health", "/openapi.json", "/docs", "/dashboard"):
        assert server.client.get(path).status_code == 200, path


def test_with_a_token_rendition_urls_are_signed_and_load_without_the_bearer(
    serve: StartServer,
) -> None:
    """An ``<img>`` sends no Authorization header: the records' rendition URLs carry their own
    signature, valid for exactly that path; the bare path, another image's signature or an
    altered one is a 401. The dashboard learns from its config that it must ask for a token."""
    server = serve(workers=1, api_token="s3cret-token-for-tests")
    server.client.headers["Authorization"] = "Bearer s3cret-token-for-tests"
    ids = [upload(server.client, jpeg_bytes((320, 240), seed=s)).json()["id"] for s in (1, 2)]
    records = server.wait_terminal(ids, timeout_s=60)
    first, second = (records[i]["renditions"][0]["url"] for i in ids)
    path, _, query = first.partition("?")
    assert query.startswith("expires="), first
    anonymous = httpx.Client(base_url=server.url, timeout=30, trust_env=False)
    with anonymous:
        loaded = anonymous.get(first)
        assert loaded.status_code == 200, loaded.text
        assert loaded.headers["content-type"].startswith("image/")
        assert anonymous.get(path).status_code == 401
        other_image = f"{path}?{second.partition('?')[2]}"
        assert anonymous.get(other_image).status_code == 401
        altered = first[:-1] + ("0" if first[-1] != "0" else "1")
        assert anonymous.get(altered).status_code == 401
        assert (
            anonymous.get(f"/images/{ids[0]}", params={"expires": "1", "sig": "x"}).status_code
            == 401
        )
        assert anonymous.get("/dashboard/config.json").json() == {"auth": "token"}


def test_serve_refuses_a_lan_bind_without_a_token() -> None:
    """``imgpipe serve --host 0.0.0.0`` with no token exits with a usage error at once."""
    done = subprocess.run(
        [sys.executable, "-m", "imgpipe", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "without sign-in" in done.stderr
