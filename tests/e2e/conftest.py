"""Fixtures that run real ``imgpipe serve`` process trees on 127.0.0.1 for end-to-end tests.

``serve(**settings)`` starts one server (own temporary data dir unless ``data_dir=`` is given,
2 workers unless ``workers=``); keyword settings become ``IMGPIPE_<NAME>`` environment
variables. Every server a test starts is stopped when the test ends (SIGTERM, then SIGKILL of
its process group after a grace period), whatever happened in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import Server

StartServer = Callable[..., Server]


def _launcher(factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    started: list[Server] = []

    def start(data_dir: Path | None = None, workers: int = 2, **settings: object) -> Server:
        root = factory.mktemp("serve")
        server = Server(data_dir or root / "data", root / "serve.log", settings, workers)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in reversed(started):
            server.close()


@pytest.fixture
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Start ``imgpipe serve`` processes for one test; all are stopped afterwards."""
    yield from _launcher(tmp_path_factory)


@pytest.fixture(scope="module")
def serve_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Like ``serve``, for servers shared by the tests of one module."""
    yield from _launcher(tmp_path_factory)
