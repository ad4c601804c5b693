"""What the benchmarks share: a real ``imgpipe serve`` on 127.0.0.1, a free port, and the way a
section is appended to BENCHMARKS.md."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["HOST", "REPO", "Serve", "append_report", "free_port"]

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def append_report(lines: list[str]) -> None:
    """Print a Markdown section and append it to BENCHMARKS.md (``make bench`` starts the file
    afresh with benchmarks/peers.py)."""
    report = "\n".join(lines) + "\n"
    print(report)
    with (REPO / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
        out.write(report)


class Serve:
    """``imgpipe serve`` with ``workers`` workers over a throw-away data dir (its log kept in
    that folder until ``stop``), with no IMGPIPE_* settings from the caller's environment."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.folder = Path(tempfile.mkdtemp(prefix="imgpipe-bench-"))
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def start(self) -> Serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
        with (self.folder / "serve.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imgpipe", "serve", "--host", HOST, "--port",
                 str(self.port), "--data-dir", str(self.data_dir), "--workers", str(self.workers)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop(keep=True)
        raise SystemExit(f"imgpipe serve did not start; see {self.folder / 'serve.log'}")

    def stop(self, keep: bool = False) -> None:
        """SIGTERM the tree, SIGKILL it after a minute; remove the folder unless ``keep``."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)
