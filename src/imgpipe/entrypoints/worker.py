"""Queue workers for ``imgpipe serve``: processes that pull jobs and run the processor.

Each worker is a separate process (spawned, not forked: libvips runs threads). The supervisor
in the serve process restarts a worker that dies and kills one that overruns the per-image time
limit; its job then reappears after the visibility timeout, as in SQS, and a job that keeps
failing ends in the dead-letter table (its image marked ``failed``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

from imgpipe.bootstrap import build_local
from imgpipe.logs import configure_logging
from imgpipe.settings import Settings

__all__ = ["WorkerPool", "run_worker"]

log = logging.getLogger("imgpipe.worker")

_POLL_S = 1.0
_MAX_BACKOFF_S = 30.0


def run_worker(data_dir: str, config: str | None, stop: Event, busy_since: Synchronized[float],
               index: int) -> None:  # fmt: skip
    """Loop until ``stop``: receive a job, process it, delete it (at-least-once)."""
    configure_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop
    settings = Settings.load(config)
    app = build_local(Path(data_dir), settings)
    log.info("worker started", extra={"worker": index, "pid": os.getpid()})
    try:
        while not stop.is_set():
            for message in app.queue.receive(max_messages=1, wait_s=_POLL_S):
                busy_since.value = time.time()
                started = time.perf_counter()
                try:
                    records = app.service.handle_event(message.body)
                except Exception:  # a failed job is retried, never fatal to the worker
                    context = {"message_id": message.id, "receive_count": message.receive_count}
                    log.exception("job failed", extra=context)
                    # Retry sooner than the full visibility timeout, backing off.
                    backoff = min(settings.service.visibility_s, _MAX_BACKOFF_S,
                                  2.0**message.receive_count)  # fmt: skip
                    app.queue.change_visibility(message.receipt, backoff)
                else:
                    app.queue.delete(message.receipt)
                    for record in records:
                        log.info("image done", extra={
                            "image_id": record.id, "status": record.status,
                            "ms": round((time.perf_counter() - started) * 1000, 1),
                            "error_code": (record.error or {}).get("code")})  # fmt: skip
                finally:
                    busy_since.value = 0.0
    finally:
        app.close()
        log.info("worker stopped", extra={"worker": index})


@dataclass
class _Slot:
    process: BaseProcess
    busy_since: Synchronized[float]


@dataclass
class WorkerPool:
    """Starts, watches and stops ``size`` worker processes."""

    data_dir: Path
    config: Path | None
    size: int
    timeout_s: float
    _stop: Event = field(init=False)
    _slots: list[_Slot] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()

    def start(self) -> None:
        self._slots = [self._spawn(i) for i in range(self.size)]

    def _spawn(self, index: int) -> _Slot:
        busy = self._context.Value("d", 0.0)
        process = self._context.Process(
            target=run_worker, name=f"imgpipe-worker-{index}",
            args=(str(self.data_dir), str(self.config) if self.config else None, self._stop,
                  busy, index))  # fmt: skip
        process.start()
        return _Slot(process=process, busy_since=busy)

    def check(self) -> None:
        """Replace dead workers; kill and replace one stuck past the per-image time limit."""
        for index, slot in enumerate(self._slots):
            started = slot.busy_since.value
            if slot.process.is_alive() and started and time.time() - started > self.timeout_s:
                log.warning("worker over its time limit; killing it",
                            extra={"worker": index, "pid": slot.process.pid})  # fmt: skip
                slot.process.kill()
                slot.process.join(5)
            if not slot.process.is_alive() and not self._stop.is_set():
                log.warning("worker exited; restarting",
                            extra={"worker": index, "exitcode": slot.process.exitcode})  # fmt: skip
                self._slots[index] = self._spawn(index)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process.pid is not None]

    def stop(self, grace_s: float) -> None:
        """Let workers finish their current job (up to ``grace_s``), then kill stragglers."""
        self._stop.set()
        deadline = time.monotonic() + grace_s
        for slot in self._slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()  # its job is released: visible again after the timeout
                slot.process.join(5)
