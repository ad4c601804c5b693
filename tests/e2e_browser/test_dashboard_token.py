"""The dashboard against ``imgpipe serve --token``: it asks for the token once, keeps it for the
tab, sends it as a bearer, loads thumbnails through signed URLs, and signs out."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .chromium import Console, needs_chromium
from .images import small_jpeg
from .server import ServeProcess

pytestmark = [pytest.mark.e2e_browser, needs_chromium]

TOKEN = "correct-horse-battery-staple"
PROCESSING_TIMEOUT_MS = 90_000
# The 401s that make the page ask (the first call, and the wrong token) are expected.
EXPECTED_ERRORS = re.compile(r"Failed to load resource: .*status of 401")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("dashboard-token")
    process = ServeProcess(root / "data", root / "serve.log", workers=1, token=TOKEN).start()
    try:
        yield process
    finally:
        process.stop()
        shutil.copyfile(process.log_path, artifacts / "dashboard-token-serve.log")


def test_the_dashboard_asks_once_for_the_token_and_images_load_signed(
    page: Page, console: Console, server: ServeProcess, tmp_path: Path
) -> None:
    authorizations: list[str | None] = []
    page.on("request", lambda r: authorizations.append(r.headers.get("authorization"))
            if "/images" in r.url and "/renditions/" not in r.url else None)  # fmt: skip
    page.goto(f"{server.url}/dashboard")
    dialog = page.locator("#sign-in")
    expect(dialog).to_be_visible()
    page.locator("#sign-in-token").fill("not-the-token")
    page.locator("#sign-in-token").press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("That token was not accepted")
    page.locator("#sign-in-token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#count")).to_have_text("0 images")
    expect(page.locator("#sign-out")).to_be_visible()

    photo = tmp_path / "signed.jpg"
    photo.write_bytes(small_jpeg(1))
    page.locator("#file-input").set_input_files([photo])
    media = page.locator(".card .card-media")
    expect(media).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT_MS)
    image = page.locator(".card img")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert re.search(r"/renditions/thumb\.\w+\?expires=\d+&sig=[0-9a-f]{64}$",
                     image.evaluate("img => img.currentSrc"))  # fmt: skip
    assert f"Bearer {TOKEN}" in authorizations

    page.reload()  # the token is kept for the tab: no second prompt
    expect(page.locator(".card .card-media")).to_have_class(re.compile(r"\bloaded\b"))
    expect(dialog).to_be_hidden()

    page.locator("#sign-out").click()
    expect(dialog).to_be_visible()  # the reloaded page has no token and asks again
    assert page.evaluate("sessionStorage.length") == 0
    unexpected = [e for e in console.errors if not EXPECTED_ERRORS.search(e)]
    assert unexpected == []
