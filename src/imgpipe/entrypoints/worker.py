"""Queue workers for ``imgpipe serve``: processes that pull jobs and run the processor.

Each worker is a separate process (spawned, not forked: libvips runs threads). The supervisor
in the serve process restarts a worker that dies and kills one that overruns the per-image time
limit; it knows the receipt of the job each worker holds and releases a dead worker's job at
once instead of waiting out the visibility timeout. A job that keeps failing ends in the
dead-letter table (its image marked ``failed``).

After an unexpected failure a worker checks its imaging engine (``engine_ok``); a worker whose
engine is broken releases its job and exits, so the next image meets a fresh process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from imgpipe.bootstrap import build_local
from imgpipe.core.vips import engine_ok
from imgpipe.errors import EX_ENGINE_BROKEN
from imgpipe.logs import configure_logging
from imgpipe.ports import Queue
from imgpipe.service import ImageService
from imgpipe.settings import Settings

__all__ = ["WorkerPool", "run_worker", "serve_jobs"]

log = logging.getLogger("imgpipe.worker")

_POLL_S = 1.0
_MAX_BACKOFF_S = 30.0
_RECEIPT_BYTES = 128  # a local receipt is "<32 hex>:<32 hex>"


class _Held:
    """What a worker tells its supervisor about the job in hand (shared memory)."""

    def __init__(self, busy_since: Synchronized[float], receipt: Any) -> None:
        self.busy_since, self.receipt = busy_since, receipt

    def take(self, receipt: str) -> None:
        self.receipt.value = receipt.encode()
        self.busy_since.value = time.time()

    def clear(self) -> None:
        self.busy_since.value = 0.0
        self.receipt.value = b""


def serve_jobs(service: ImageService, queue: Queue, settings: Settings, stop: Event,
               held: _Held | None = None) -> bool:  # fmt: skip
    """Receive, process and delete jobs (at-least-once) until ``stop``; return ``False``
    early, with the job in hand released for another worker, when the engine broke."""
    while not stop.is_set():
        for message in queue.receive(max_messages=1, wait_s=_POLL_S):
            if held:
                held.take(message.receipt)
            started = time.perf_counter()
            try:
                records = service.handle_event(message.body)
            except Exception:  # a failed job is retried, never fatal to the worker
                context = {"message_id": message.id, "receive_count": message.receive_count}
                log.exception("job failed", extra=context)
                if not engine_ok():
                    # Not this image's fault, perhaps: retry it at once in a fresh worker.
                    log.critical(
                        "imaging engine failed its self-check; worker exits", extra=context
                    )
                    queue.change_visibility(message.receipt, 0)
                    return False
                # Retry sooner than the full visibility timeout, backing off.
                backoff = min(settings.service.visibility_s, _MAX_BACKOFF_S,
                              2.0**message.receive_count)  # fmt: skip
                queue.change_visibility(message.receipt, backoff)
            else:
                queue.delete(message.receipt)
                for record in records:
                    log.info("image done", extra={
                        "image_id": record.id, "status": record.status,
                        "ms": round((time.perf_counter() - started) * 1000, 1),
                        "error_code": (record.error or {}).get("code")})  # fmt: skip
            finally:
                if held:
                    held.clear()
    return True


def run_worker(data_dir: str, config: str | None, stop: Event, busy_since: Synchronized[float],
               receipt: Any, index: int) -> None:  # fmt: skip
    """The worker process: ``serve_jobs`` over the local adapters; exits ``EX_ENGINE_BROKEN``
    when its engine broke (the supervisor starts a fresh one)."""
    configure_logging()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop
    settings = Settings.load(config)
    app = build_local(Path(data_dir), settings)
    log.info("worker started", extra={"worker": index, "pid": os.getpid()})
    try:
        healthy = serve_jobs(app.service, app.queue, settings, stop, _Held(busy_since, receipt))
    finally:
        app.close()
        log.info("worker stopped", extra={"worker": index})
    if not healthy:
        sys.exit(EX_ENGINE_BROKEN)


@dataclass
class _Slot:
    process: BaseProcess
    held: _Held


@dataclass
class WorkerPool:
    """Starts, watches and stops ``size`` worker processes."""

    data_dir: Path
    config: Path | None
    size: int
    timeout_s: float
    queue: Queue  # to release the job of a worker that died holding one
    _stop: Event = field(init=False)
    _slots: list[_Slot] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()

    def start(self) -> None:
        self._slots = [self._spawn(i) for i in range(self.size)]

    def _spawn(self, index: int) -> _Slot:
        held = _Held(self._context.Value("d", 0.0), self._context.Array("c", _RECEIPT_BYTES))
        process = self._context.Process(
            target=run_worker, name=f"imgpipe-worker-{index}",
            args=(str(self.data_dir), str(self.config) if self.config else None, self._stop,
                  held.busy_since, held.receipt, index))  # fmt: skip
        process.start()
        return _Slot(process=process, held=held)

    def check(self) -> None:
        """Replace dead workers, releasing the job each held; kill and replace one stuck past
        the per-image time limit (its job is retried, and dead-lettered if it keeps hanging)."""
        for index, slot in enumerate(self._slots):
            started = slot.held.busy_since.value
            if slot.process.is_alive() and started and time.time() - started > self.timeout_s:
                log.warning("worker over its time limit; killing it",
                            extra={"worker": index, "pid": slot.process.pid})  # fmt: skip
                slot.process.kill()
                slot.process.join(5)
            if not slot.process.is_alive() and not self._stop.is_set():
                receipt = slot.held.receipt.value.decode()
                if receipt:  # a stale receipt is a no-op, so releasing is always safe
                    self.queue.change_visibility(receipt, 0)
                log.warning("worker exited; restarting",
                            extra={"worker": index, "exitcode": slot.process.exitcode,
                                   "released_job": bool(receipt)})  # fmt: skip
                self._slots[index] = self._spawn(index)

    def stop(self, grace_s: float) -> None:
        """Let workers finish their current job (up to ``grace_s``), then kill stragglers."""
        self._stop.set()
        deadline = time.monotonic() + grace_s
        for slot in self._slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(5)
                if receipt := slot.held.receipt.value.decode():
                    self.queue.change_visibility(receipt, 0)  # retried at the next start
