"""A real ``imgpipe serve`` process tree on 127.0.0.1, and the HTTP chores the e2e tests share.

``Server`` starts ``python -m imgpipe serve`` in its own session (so the whole tree - server,
workers, multiprocessing's resource tracker - forms one process group), waits for
``GET /health`` and stops it with SIGTERM, then SIGKILL for the group after a grace period.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

__all__ = [
    "HOST",
    "TERMINAL",
    "Server",
    "cpu_ticks",
    "error_of",
    "jpeg_bytes",
    "photo_bytes",
    "pid_alive",
    "presigned_upload",
    "raw_files",
    "upload",
    "wait_for",
]

HOST = "127.0.0.1"  # servers started here never listen anywhere else
TERMINAL = frozenset({"processed", "rejected", "failed"})
_STOP_GRACE_S = 20.0
_START_TIMEOUT_S = 30.0
_LOG_TAIL = 4000
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


# Runs as the server process itself, then execs into ``python -m imgpipe ...``: the kernel sends
# SIGTERM to it when the test process dies, however it dies (the setting survives exec).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('the test process is already gone')\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One ``imgpipe serve`` over ``data_dir``; ``env`` maps setting names to values."""

    def __init__(
        self, data_dir: Path, log_path: Path, env: Mapping[str, object], workers: int = 2
    ) -> None:
        self.data_dir, self.log_path, self.workers = data_dir, log_path, workers
        self.env = {f"IMGPIPE_{name.upper()}": str(value) for name, value in env.items()}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.client = httpx.Client(timeout=60, trust_env=False)  # no proxies: loopback only

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Server:
        """Start the process tree and return once ``/health`` answers 200."""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = _free_port()
            self.url = f"http://{HOST}:{port}"
            self.client.base_url = httpx.URL(self.url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
            env.update(self.env)
            command = [
                sys.executable,
                "-c",
                _DIE_WITH_PARENT,
                str(os.getpid()),
                "-m",
                "imgpipe",
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
            ]
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            if self._wait_healthy():
                return self
            self.kill()
        raise RuntimeError(f"imgpipe serve did not come up:\n{self.log_tail()}")

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with suppress(httpx.TransportError):
                if self.client.get("/health", timeout=2).status_code == 200:
                    return True
            time.sleep(0.1)
        self.kill()
        return False

    def stop(self, grace_s: float = _STOP_GRACE_S) -> int | None:
        """SIGTERM the server; SIGKILL its process group if it is not gone within ``grace_s``."""
        if self.process is None:
            return None
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()  # also reaps stragglers of the group (workers, resource tracker)
        return code

    def kill(self) -> None:
        """SIGKILL the whole process group this server started, and reap the server."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        deadline = time.monotonic() + 10
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        self.client.close()

    def _group_alive(self) -> bool:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def worker_pids(self) -> list[int]:
        """The worker processes: children of the server spawned by multiprocessing.

        ``/proc/PID/task/TID/children`` lists the children each thread forked, so every thread
        is read (a replacement worker is started by the housekeeping thread, not the main one).
        """
        assert self.process is not None
        children: list[str] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            with suppress(FileNotFoundError, ProcessLookupError):
                children += (task / "children").read_text().split()
        workers = []
        for child in children:
            with suppress(FileNotFoundError, ProcessLookupError):
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
                    workers.append(int(child))
        return sorted(workers)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL:]
        except FileNotFoundError:
            return ""

    # -- state on disk --------------------------------------------------------------------------

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "blobs" / "raw"

    def has_raw(self, image_id: str) -> bool:
        return (self.raw_dir / image_id).exists()

    def rendition_files(self, image_id: str) -> set[str]:
        """Names of the rendition files stored for ``image_id`` (no sidecars, no temp files)."""
        return {
            name
            for name in self.processed_files(image_id)
            if not name.endswith(".meta.json") and not name.startswith(".tmp-")
        }

    def processed_files(self, image_id: str) -> set[str]:
        """Every file in ``DATA/blobs/processed/<id>/``."""
        folder = self.data_dir / "blobs" / "processed" / image_id
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    # -- API -------------------------------------------------------------------------------------

    def record(self, image_id: str) -> dict[str, Any]:
        response = self.client.get(f"/images/{image_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def records(self, status: str | None = None, limit: int = 200) -> dict[str, dict[str, Any]]:
        """Every record (walking all pages), by id."""
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            response = self.client.get("/images", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            found.update((item["id"], item) for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def wait_terminal(self, ids: Iterable[str], timeout_s: float) -> dict[str, dict[str, Any]]:
        """Poll until every id is in a terminal status; return their records."""
        wanted = set(ids)

        def settled() -> dict[str, dict[str, Any]] | None:
            everything = self.records()
            mine = {i: everything[i] for i in wanted if i in everything}
            done = len(mine) == len(wanted) and all(r["status"] in TERMINAL for r in mine.values())
            return mine if done else None

        found: dict[str, dict[str, Any]] = wait_for(
            settled, timeout_s, lambda: self._progress(wanted)
        )
        return found

    def _progress(self, wanted: set[str]) -> str:
        everything = self.records()
        statuses: dict[str, int] = {}
        for image_id in wanted:
            status = everything.get(image_id, {}).get("status", "missing")
            statuses[status] = statuses.get(status, 0) + 1
        return f"statuses {statuses}\n--- server log ---\n{self.log_tail()}"


def wait_for(probe: Any, timeout_s: float, explain: Any = None, interval_s: float = 0.25) -> Any:
    """Call ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = explain() if explain else ""
            raise AssertionError(f"not reached within {timeout_s:.0f} s; {detail}")
        time.sleep(interval_s)


def upload(client: httpx.Client, data: bytes, filename: str = "image.jpg") -> httpx.Response:
    """A direct multipart upload (``POST /images``, field ``file``)."""
    return client.post("/images", files={"file": (filename, data, "application/octet-stream")})


def presigned_upload(
    client: httpx.Client, data: bytes, filename: str = "image.jpg", content_type: str = "image/jpeg"
) -> tuple[str, httpx.Response]:
    """Ask for an upload form and post the bytes with it; return the id and the form's answer."""
    ticket = client.post(
        "/uploads", json={"filename": filename, "content_type": content_type, "bytes": len(data)}
    )
    assert ticket.status_code == 201, ticket.text
    grant = ticket.json()
    form = grant["upload"]
    response = client.post(
        form["url"], data=form["fields"], files={"file": (filename, data, content_type)}
    )
    return grant["id"], response


def jpeg_bytes(size: tuple[int, int] = (640, 480), seed: int = 0, quality: int = 90) -> bytes:
    """A distinct JPEG per ``seed``: a gradient tinted by the seed, with EXIF and GPS."""
    base = Image.linear_gradient("L").resize(size)
    tint = ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
    image = Image.merge(
        "RGB",
        [
            base,
            base.transpose(Image.Transpose.ROTATE_90).resize(size),
            Image.new("L", size, tint[2]),
        ],
    )
    image.paste(tint, (0, 0, min(size[0], 64 + seed), min(size[1], 64)))
    exif = Image.Exif()
    exif[0x010F] = "E2ECam"
    exif[0x0112] = 1
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


@functools.cache
def photo_bytes(seed: int, size: tuple[int, int] = (5472, 3648)) -> bytes:
    """A distinct, busy 20 MP JPEG (smoothed noise) that costs a worker real decoding work."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size[1] // 12, size[0] // 12, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def raw_files(server: Server) -> list[str]:
    """Names in ``DATA/blobs/raw`` (originals and their sidecars, temp files too)."""
    return sorted(p.name for p in server.raw_dir.iterdir()) if server.raw_dir.is_dir() else []


def error_of(response: httpx.Response) -> dict[str, str]:
    """The ``{"code", "message"}`` of an error response (asserting its documented shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    detail: dict[str, str] = body["error"]
    return detail
