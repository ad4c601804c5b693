"""The shared real-world corpus: found at $IMGPIPE_CORPUS or ../shared/corpus, else skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_REPO = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path | None:
    """The corpus folder, or None where this clone has none beside it."""
    candidate = Path(os.environ.get("IMGPIPE_CORPUS", _REPO.parent / "shared" / "corpus"))
    return candidate if (candidate / "manifest.json").is_file() else None


def manifest_entries() -> list[dict[str, Any]]:
    root = corpus_dir()
    if root is None:
        return []
    entries: list[dict[str, Any]] = json.loads((root / "manifest.json").read_text())["files"]
    return entries


SKIP_REASON = (
    "shared corpus not found: set IMGPIPE_CORPUS or place it at ../shared/corpus "
    "(a fresh clone of the project does not include it)"
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = corpus_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root
