"""Configuration shared by every test layer: keep it generic and small.

Image fixtures are plain generator functions in ``tests/fixtures.py`` (``import fixtures``):
``tests/`` is not a package, so pytest puts this directory on ``sys.path``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# No per-example deadline: a loaded 2-core CI box must not turn slowness into failures.
settings.register_profile("imgpipe", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "imgpipe"))


class Engine:
    """This process's libvips, to break as an engine bug would and to repair."""

    def break_(self) -> None:
        """Block every loader: known-good images stop decoding and the self-check fails."""
        from imgpipe.core.vips import pyvips  # noqa: PLC0415 - libvips only where asked

        pyvips.operation_block_set("VipsForeignLoad", True)

    def repair(self) -> None:
        """Back to imgpipe's allow-list (what a fresh worker process starts with)."""
        from imgpipe.core.vips import LOADERS, pyvips  # noqa: PLC0415

        for loader in LOADERS.values():
            pyvips.operation_block_set(loader, False)


@pytest.fixture
def engine() -> Iterator[Engine]:
    """The engine, repaired after the test whatever it did."""
    engine = Engine()
    yield engine
    engine.repair()
