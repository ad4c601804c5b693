"""deploy/smoke.py, the post-deploy smoke test, against a real ``imgpipe serve``: what the
deploy workflow runs against a stack passes here, and a broken deployment fails it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import StartServer

pytestmark = pytest.mark.e2e

SMOKE = Path(__file__).resolve().parents[2] / "deploy" / "smoke.py"


def _smoke(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SMOKE), *arguments], capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip


def test_the_smoke_test_passes_on_a_working_server_and_leaves_nothing(serve: StartServer) -> None:
    server = serve(workers=1)
    done = _smoke("--base-url", server.url)
    assert done.returncode == 0, done.stderr
    assert "smoke test passed" in done.stdout
    assert server.records() == {}  # its image was deleted again


def test_the_smoke_test_fails_on_a_server_that_is_down(serve: StartServer) -> None:
    """A deployment that does not answer fails the job: exit 1 with the reason."""
    server = serve(workers=1)
    server.stop()
    done = _smoke("--base-url", server.url)
    assert done.returncode == 1
    assert "smoke test FAILED" in done.stderr
