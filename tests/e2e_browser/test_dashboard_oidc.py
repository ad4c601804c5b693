"""The dashboard signs in at a real OpenID provider: ``imgpipe serve --oidc-issuer`` against
panva's oidc-provider (OpenID Certified) on 127.0.0.1, in Chromium.

The authorization-code flow with PKCE, the provider's own login and consent pages, JWT access
tokens checked by the server as API Gateway's JWT authorizer checks them, renewal with the
refresh token, thumbnails through signed URLs with no Authorization header, ``uploaded_by``
in the detail view, and sign-out through the provider's end-session page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from .chromium import Console, needs_chromium
from .images import small_jpeg
from .server import ServeProcess, free_port

OIDC_DIR = Path(__file__).with_name("oidc")
_NODE = shutil.which("node")
pytestmark = [
    pytest.mark.e2e_browser,
    needs_chromium,
    pytest.mark.skipif(
        _NODE is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir(),
        reason="needs node and oidc-provider (make test runs npm ci in tests/e2e_browser/oidc)",
    ),
]

USER = "ada"
PROCESSING_TIMEOUT_MS = 90_000
ACCESS_TOKEN_TTL_S = 30  # under the page's renewal margin (60 s): every call renews first
# The first API call of a fresh page has no token yet; its 401 is what sends it to sign in.
EXPECTED_ERRORS = re.compile(r"Failed to load resource: .*status of 401")


@pytest.fixture(scope="module")
def signed_server(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[tuple[ServeProcess, str]]:
    """The provider (redirecting back to the server's dashboard) and the server trusting it."""
    root = tmp_path_factory.mktemp("dashboard-oidc")
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/dashboard"
    provider = subprocess.Popen(
        [str(_NODE), str(OIDC_DIR / "provider.mjs"), redirect, str(ACCESS_TOKEN_TTL_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert provider.stdout is not None
    started = json.loads(provider.stdout.readline())
    env = {"IMGPIPE_OIDC_ISSUER": started["issuer"], "IMGPIPE_OIDC_CLIENT_ID": started["client_id"]}
    server = ServeProcess(root / "data", root / "serve.log", workers=1, env=env, port=port)
    try:
        yield server.start(), started["issuer"]
    finally:
        server.stop()
        assert provider.stdin is not None
        provider.stdin.close()  # the provider exits when its stdin closes
        provider.wait(timeout=10)
        provider.stdout.close()
        shutil.copyfile(server.log_path, artifacts / "dashboard-oidc-serve.log")


def _sign_in_at_the_provider(page: Page, issuer: str) -> None:
    """The provider's development login page, then its consent page."""
    expect(page).to_have_url(re.compile(re.escape(issuer) + r"/interaction/"))
    page.locator("input[name=login]").fill(USER)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def test_the_dashboard_signs_in_with_pkce_and_loads_images_without_a_header(
    page: Page, console: Console, signed_server: tuple[ServeProcess, str], tmp_path: Path
) -> None:
    server, issuer = signed_server
    api_calls: list[Request] = []
    token_requests: list[Request] = []
    renditions: list[Request] = []

    def seen(request: Request) -> None:
        if request.url.startswith(f"{issuer}/token"):
            token_requests.append(request)
        elif "/renditions/" in request.url:
            renditions.append(request)
        elif request.url.startswith(f"{server.url}/images"):
            api_calls.append(request)

    page.on("request", seen)
    page.goto(f"{server.url}/dashboard")
    _sign_in_at_the_provider(page, issuer)

    expect(page).to_have_url(f"{server.url}/dashboard")  # code and state gone from the URL
    expect(page.locator("#count")).to_have_text("0 images")
    expect(page.locator("#sign-out")).to_be_visible()
    grants = [dict(re.findall(r"([a-z_]+)=([^&]*)", r.post_data or "")) for r in token_requests]
    assert grants[0]["grant_type"] == "authorization_code"
    assert grants[0].get("code_verifier")  # PKCE: the verifier, never a client secret
    assert "client_secret" not in grants[0]
    assert any(g["grant_type"] == "refresh_token" for g in grants[1:])  # renewed before expiry
    signed = [r for r in api_calls if (r.headers.get("authorization") or "").startswith("Bearer ")]
    assert signed
    assert signed[-1].headers["authorization"].count(".") == 2  # a JWT access token

    photo = tmp_path / "signed-in.jpg"
    photo.write_bytes(small_jpeg(2))
    page.locator("#file-input").set_input_files([photo])
    media = page.locator(".card .card-media")
    expect(media).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT_MS)
    assert renditions
    assert all(r.headers.get("authorization") is None for r in renditions)

    page.locator(".card").first.click()
    expect(page.locator("#detail")).to_contain_text("Uploaded by")
    expect(page.locator("#detail")).to_contain_text(USER)
    page.keyboard.press("Escape")
    # Escape goes back through the history a task later: reloading before the URL is back
    # would reload the detail view (it then covers the sign-out button).
    expect(page).to_have_url(f"{server.url}/dashboard")

    # Tokens live in memory: a reload signs in again, silently (the provider's session).
    page.reload()
    expect(page.locator("#count")).to_have_text("1 image")

    page.locator("#sign-out").click()
    expect(page).to_have_url(re.compile(re.escape(issuer) + r"/session/end"))
    page.get_by_role("button", name="Yes, sign me out").click()
    expect(page).to_have_url(re.compile(re.escape(issuer) + r"/interaction/"))  # signed out
    # Only the dashboard's own errors count (the provider's pages load web fonts we block).
    ours = [e for e in console.errors if f"({server.url}" in e or e.startswith("pageerror")]
    assert [e for e in ours if not EXPECTED_ERRORS.search(e)] == []
