"""glibc malloc as ``imgpipe.core.vips`` sets it: freed image buffers stay for the next image.

Each check runs in a fresh interpreter (this one has allocated for other tests, and its
environment may carry an operator's malloc settings): four 12 MiB buffers - a batch of pixel
buffers - are made, written and freed five times over, and the page faults counted.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the malloc tuning is glibc's (mallopt); elsewhere it does nothing",
)

_ROUNDS = r"""
import resource
import imgpipe.core.vips

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def one_image():
    buffers = [b"\1" * (12 << 20) for _ in range(4)]  # written, so every page is touched
    del buffers

one_image()
before = faults()
for _ in range(5):
    one_image()
print(faults() - before)
"""

# 5 rounds of 48 MiB in 4 KiB pages: what glibc's defaults fault in again (mapped, unmapped).
_REFAULTED = 5 * 48 * 256


def _faults(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _ROUNDS], env={**clean, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_a_worker_reuses_freed_image_buffers_without_faulting_them_in_again() -> None:
    """With the tuning, the second image onwards reuses the first one's pages (glibc's
    defaults unmap or trim them, and every page is faulted in and zeroed again)."""
    assert _faults() < _REFAULTED // 20


@pytest.mark.parametrize(
    "setting",
    [{"MALLOC_TRIM_THRESHOLD_": "131072"},
     {"GLIBC_TUNABLES": "glibc.malloc.perturb=0:glibc.malloc.trim_threshold=131072"}],
    ids=["variable", "tunable"],
)  # fmt: skip
def test_an_operators_malloc_setting_is_left_alone(setting: dict[str, str]) -> None:
    """A trim threshold the operator set wins over ours: a heap trimmed at 128 KiB faults
    each image's buffers in again."""
    assert _faults(**setting) > _REFAULTED // 2
