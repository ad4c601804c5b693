"""The dashboard served by the API resolver from API Gateway HTTP API v2 events - what the AWS
handler gets - with no server, no sockets and no browser: the page, its assets, their headers,
and the file names a request cannot reach."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

import httpx
import pytest
from mangum import Mangum

from imgpipe.adapters.local.upload_signer import HmacUploadSigner
from imgpipe.api.routes import build_api
from imgpipe.service import ImageService
from imgpipe.settings import Settings
from imgpipe.testing import (
    FixedTagger,
    InMemoryBlobStore,
    InMemoryMetadataStore,
    InMemoryQueue,
    ManualClock,
    to_v2_event,
)

CONTENT_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
                 "svg": "image/svg+xml"}  # fmt: skip
_IMPORT = re.compile(r"""(?:from|import)\s+"\./([\w.-]+\.js)";""")


@dataclass
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


Get = Callable[..., Reply]


class _Page(HTMLParser):
    """What an HTML page references, and whatever inline code or style it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.references += [v for k, v in attrs if k in ("src", "href") and v]
        self.inline += [f"{tag} {k}" for k, _ in attrs if k.startswith("on") or k == "style"]
        if tag == "style":
            self.inline.append("<style>")
        self._in_script = tag == "script"
        if tag == "script" and not named.get("src"):
            self.inline.append("<script> without src")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script text {data.strip()[:40]!r}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


@pytest.fixture(scope="module")
def get() -> Get:
    """``get(path, headers)``: one GET through ``build_api(service).resolve`` as a v2 event."""
    clock = ManualClock()
    service = ImageService(
        InMemoryBlobStore(), InMemoryMetadataStore(), InMemoryQueue(clock=clock), FixedTagger(),
        HmacUploadSigner(b"k" * 32, "http://test/_uploads", clock=clock), Settings(),
    )  # fmt: skip
    resolver = Mangum(build_api(service), lifespan="off")

    def call(path: str, headers: dict[str, str] | None = None) -> Reply:
        event = to_v2_event("GET", path, {"host": "test", **(headers or {})}, b"", "127.0.0.1")
        no_context: Any = None  # Mangum reads nothing from the context
        result = resolver(event, no_context)
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return Reply(int(result["statusCode"]), httpx.Headers(result.get("headers") or {}), data)

    return call


def _assert_locked_down(reply: Reply) -> None:
    policy = reply.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data: blob: https:"  # https: for S3 redirects
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "no-referrer"


def test_dashboard_page_renders_from_an_api_gateway_event(get: Get) -> None:
    """GET /dashboard is a 200 HTML page under a strict CSP, with no inline script or style."""
    reply = get("/dashboard")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    _assert_locked_down(reply)
    assert reply.headers["Cache-Control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', reply.headers["ETag"])
    page = _Page()
    page.feed(reply.text)
    assert page.inline == []
    assert '<script type="module" src="dashboard/app.js"></script>' in reply.text
    assert "dashboard/dashboard.css" in page.references


def test_every_file_the_page_needs_is_served_with_its_type(get: Get) -> None:
    """The page's assets and every module app.js imports (transitively) answer 200 with the
    right content type and the same security headers."""
    page = _Page()
    page.feed(get("/dashboard").text)
    wanted = [r.removeprefix("dashboard/") for r in page.references if r.startswith("dashboard/")]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = get(f"/dashboard/{name}")
        assert reply.status == 200, name
        assert reply.headers["Content-Type"] == CONTENT_TYPES[name.rsplit(".", 1)[1]], name
        _assert_locked_down(reply)
        if name.endswith(".js"):
            wanted += _IMPORT.findall(reply.text)
    assert {"app.js", "api.js", "blurhash.js", "thumbhash.js", "dashboard.css", "icon.svg"} <= seen


def test_root_redirects_to_the_dashboard(get: Get) -> None:
    """/ and /dashboard/ redirect with relative locations (they hold behind a stage prefix)."""
    assert (get("/").status, get("/").headers["Location"]) == (302, "dashboard")
    slash = get("/dashboard/")
    assert (slash.status, slash.headers["Location"]) == (302, "../dashboard")


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fdashboard.py",
        "..%2F..%2Fservice.py",
        "%2e%2e%2fservice.py",
        "..",
        "index.html",  # the page has one address: /dashboard
        "app.js%00.css",
        "APP.JS",
        ".hidden.js",
        "__init__.py",
        "nope.js",
    ],
)
def test_only_the_packaged_assets_can_be_named(get: Get, name: str) -> None:
    """A request names a file from the list read at start-up, or gets the 404 error body."""
    reply = get(f"/dashboard/{name}")
    assert reply.status == 404
    assert json.loads(reply.body)["error"]["code"] == "not_found"


def test_a_matching_etag_is_answered_with_304(get: Get) -> None:
    """Revalidating an unchanged asset costs a 304 with no body."""
    etag = get("/dashboard/app.js").headers["ETag"]
    reply = get("/dashboard/app.js", {"if-none-match": f'W/{etag}, "other"'})
    assert (reply.status, reply.body) == (304, b"")
    assert get("/dashboard/app.js", {"if-none-match": '"stale"'}).status == 200


def test_dashboard_routes_stay_out_of_the_api_definition(get: Get) -> None:
    """/openapi.json describes the API only."""
    paths = json.loads(get("/openapi.json").body)["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/dashboard")]


def test_the_scripts_never_turn_text_into_markup() -> None:
    """No innerHTML, outerHTML, insertAdjacentHTML, document.write, eval or Function in the
    dashboard's JavaScript: metadata can only ever become text nodes and attribute values."""
    folder = files("imgpipe") / "dashboard"
    sources = {f.name: f.read_text("utf-8") for f in folder.iterdir() if f.name.endswith(".js")}
    assert "app.js" in sources
    sink = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|"
                      r"new Function|setTimeout\(\s*[\"'`]")  # fmt: skip
    assert {name: sink.findall(text) for name, text in sources.items() if sink.search(text)} == {}
