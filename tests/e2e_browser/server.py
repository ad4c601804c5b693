"""One real ``imgpipe serve`` process tree on 127.0.0.1 for the browser tests.

Started in its own session, so the server, its workers and multiprocessing's helpers form one
process group; stopped with SIGTERM and, after a grace period, SIGKILL for that group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

__all__ = ["HOST", "ServeProcess", "free_port"]

HOST = "127.0.0.1"
_START_TIMEOUT_S = 30.0
_STOP_GRACE_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class ServeProcess:
    """``imgpipe serve`` over ``data_dir`` with ``workers`` worker processes (and an access
    ``token`` if given)."""

    def __init__(
        self, data_dir: Path, log_path: Path, workers: int = 2, token: str | None = None,
        env: dict[str, str] | None = None, port: int | None = None,
    ) -> None:  # fmt: skip
        """``env``: more environment for the server (e.g. its OpenID provider); ``port``: a
        port chosen beforehand (``free_port``), when something must know the URL first."""
        self.data_dir, self.log_path, self.workers = data_dir, log_path, workers
        self.token, self.extra_env = token, dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.port = port
        self.url = f"http://{HOST}:{port}" if port else ""
        self.client = httpx.Client(timeout=30, trust_env=False)  # loopback only, no proxies

    def start(self) -> ServeProcess:
        """Start the tree; return once ``GET /health`` answers 200."""
        self.url = f"http://{HOST}:{self.port or free_port()}"
        port = self.url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
        env.update(self.extra_env)
        if self.token:
            env["IMGPIPE_API_TOKEN"] = self.token
        command = [sys.executable, "-m", "imgpipe", "serve", "--host", HOST, "--port", port,
                   "--data-dir", str(self.data_dir), "--workers", str(self.workers)]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"imgpipe serve exited early:\n{self.log_tail()}")
            with suppress(httpx.TransportError):
                if self.client.get(f"{self.url}/health").status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"imgpipe serve did not answer in time:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server; SIGKILL its process group if it has not gone after the grace."""
        self.client.close()
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(_STOP_GRACE_S)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of this tree
        self.process.wait(_STOP_GRACE_S)
        self.process = None

    def wait_processed(self, image_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
        """The record of ``image_id`` once it is terminal (``AssertionError`` unless processed,
        or after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record: dict[str, Any] = self.client.get(f"{self.url}/images/{image_id}").json()
            if record["status"] in ("processed", "rejected", "failed"):
                assert record["status"] == "processed", record
                return record
            time.sleep(0.1)
        raise AssertionError(f"{image_id} was not processed within {timeout_s} s")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""
