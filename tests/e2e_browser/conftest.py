"""Fixtures for the dashboard's browser tests: a real ``imgpipe serve`` on 127.0.0.1, Debian's
chromium driven by Playwright's sync API, and a page that records console errors.

The browser is ``/usr/bin/chromium`` (see ``chromium.py``); without it the tests are skipped.
Screenshots go to ``test-artifacts/`` (git-ignored); with ``IMGPIPE_UPDATE_SCREENSHOT=1`` the
gallery shot also refreshes ``docs/dashboard.png`` for the README.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .chromium import DESKTOP, Console, launch
from .images import UploadSet, write_upload_set
from .server import ServeProcess

_REPO = Path(__file__).resolve().parents[2]

# Assertions wait as long as actions do (Playwright's expect defaults to 5 s): under the whole
# suite on a busy 2-core machine a page load and its API calls took longer than that.
_WAIT_MS = 20_000
expect.set_options(timeout=_WAIT_MS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[ServeProcess]:
    """One ``imgpipe serve`` for the module, over its own temporary data dir; its log is kept
    as ``test-artifacts/dashboard-serve.log``."""
    root = tmp_path_factory.mktemp("dashboard")
    process = ServeProcess(root / "data", root / "serve.log").start()
    try:
        yield process
    finally:
        process.stop()
        shutil.copyfile(process.log_path, artifacts / "dashboard-serve.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch(playwright)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh desktop-sized page (own context: no shared cache or storage)."""
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1)
    context.set_default_timeout(_WAIT_MS)
    opened = context.new_page()
    opened.on("console", console.on_message)
    opened.on("pageerror", console.on_page_error)
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> UploadSet:
    return write_upload_set(tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/`` at the top of the repository (git-ignored): screenshots."""
    folder = _REPO / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def readme_screenshot() -> Path:
    """The README's picture of the dashboard, refreshed by the gallery test."""
    return _REPO / "docs" / "dashboard.png"
