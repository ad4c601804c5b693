"""Debian's chromium for Playwright: where it is, how it is launched, and the skip without it.

Playwright's own browser download does not work here, so the tests drive the distribution's
package (``apt-get install chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Playwright, ViewportSize

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "Console", "launch", "needs_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_MISSING = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=_MISSING)


def launch(playwright: Playwright) -> Browser:
    """Headless chromium from the distribution (skips the test when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip(_MISSING)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=_ARGS)


@dataclass
class Console:
    """What a page said: console errors and uncaught exceptions, as text."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"pageerror: {error}")
