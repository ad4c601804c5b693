"""Batch processing of files and folders: the use case behind ``imgpipe process``.

Each image runs in a worker process with a wall-clock budget: a decoder that hangs or a worker
that dies costs that one image (``failed``), never the batch. A worker whose imaging engine
fails its self-check after an unexpected error exits instead of taking the next image, and the
image it held is tried again in a fresh worker: no image fails because of an earlier one.
Results are plain dicts in the CLI's ``--json`` shape so they cross process boundaries.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from imgpipe.errors import (
    EX_ENGINE_BROKEN,
    ImgpipeError,
    InternalError,
    ProcessingTimeoutError,
    TooLargeBytesError,
    error_for_code,
)
from imgpipe.settings import Settings

__all__ = ["BatchSummary", "collect_inputs", "process_file", "run_batch"]

Result = dict[str, Any]

_ATTEMPTS = 2  # an image whose worker's engine broke gets one more try in a fresh worker


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Expand folders recursively (sorted, hidden entries skipped); keep files as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` + 1 bytes: an oversized file is refused without loading it."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = path.stat().st_size
        raise TooLargeBytesError(f"{size:,} bytes exceeds the {max_bytes:,} byte limit")
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def process_file(source: str, out_dir: str, settings: Settings) -> Result:
    """Process one file into ``out_dir/<id>/``; return its result record (runs in a worker).

    After an unexpected error the worker checks its engine; a broken one exits the process
    (``EX_ENGINE_BROKEN``) rather than serve another image."""
    # Imported here so the parent process never loads libvips (workers are spawned clean).
    from imgpipe.core.vips import engine_ok  # noqa: PLC0415 - libvips only in the worker

    try:
        result = _process_file(source, out_dir, settings)
    except Exception:
        if not engine_ok():
            os._exit(EX_ENGINE_BROKEN)
        raise
    if result["status"] == "failed" and not engine_ok():
        os._exit(EX_ENGINE_BROKEN)
    return result


def _process_file(source: str, out_dir: str, settings: Settings) -> Result:
    from imgpipe.core.pipeline import content_id, process  # noqa: PLC0415 - worker-only import

    result: Result = {
        "source": source,
        "status": "processed",
        "id": None,
        "metadata": {},
        "renditions": [],
    }
    try:
        data = _read_capped(Path(source), settings.limits.max_bytes)
        sha256 = hashlib.sha256(data).hexdigest()
        image_id = content_id(sha256)
        result["id"] = image_id
        processed = process(data, settings, sha256=sha256)
    except ImgpipeError as exc:
        return _failed(result, exc)
    except OSError as exc:
        return _failed(result, InternalError(f"cannot read {source}: {exc.strerror or exc}"))
    folder = Path(out_dir) / image_id
    folder.mkdir(parents=True, exist_ok=True)
    renditions = []
    for rendition in processed.renditions:
        target = folder / rendition.filename
        _write_atomic(target, rendition.data)
        renditions.append({**rendition.describe(), "path": str(target)})
    result["metadata"] = processed.metadata
    result["renditions"] = renditions
    result["tags"] = [t.to_dict() for t in processed.tags]
    record = {
        "id": image_id,
        "source": source,
        **{k: result[k] for k in ("metadata", "tags")},
        "renditions": [{k: v for k, v in r.items() if k != "path"} for r in renditions],
    }
    _write_atomic(folder / "metadata.json", json.dumps(record, indent=2).encode("utf-8"))
    return result


def _failed(result: Result, exc: ImgpipeError) -> Result:
    result["status"] = "rejected" if exc.permanent else "failed"
    result["error"] = exc.to_dict()
    return result


@dataclass
class BatchSummary:
    """Counts by outcome and the megapixels processed, for the summary table and exit code."""

    processed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    megapixels: float = 0.0
    exit_code: int = 0

    def add(self, result: Result) -> None:
        status = result["status"]
        if status == "processed":
            self.processed += 1
            md = result["metadata"]
            self.megapixels += md["width"] * md["height"] / 1e6
            return
        code = result["error"]["code"]
        bucket = self.rejected if status == "rejected" else self.failed
        bucket[code] = bucket.get(code, 0) + 1
        if status == "failed":
            self.exit_code = max(self.exit_code, _exit_code(code))


def _exit_code(code: str) -> int:
    return error_for_code(code, "").exit_code


def run_batch(
    sources: list[Path],
    out_dir: Path,
    settings: Settings,
    jobs: int,
    on_result: Callable[[Result], None],
) -> BatchSummary:
    """Process ``sources`` on ``jobs`` worker processes; call ``on_result`` as each one ends."""
    summary = BatchSummary()
    for result in _results(sources, out_dir, settings, jobs):
        summary.add(result)
        on_result(result)
    return summary


def _results(sources: list[Path], out_dir: Path, settings: Settings, jobs: int) -> Iterator[Result]:
    if not sources:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    # Spawned workers: forking a process that has started libvips' threads is not safe.
    context = multiprocessing.get_context("spawn")
    with ProcessPool(max_workers=max(1, min(jobs, len(sources))), context=context) as pool:

        def schedule(src: Path) -> Any:
            return pool.schedule(process_file, args=(str(src), str(out_dir), settings),
                                 timeout=settings.limits.timeout_s)  # fmt: skip

        futures = [(src, schedule(src)) for src in sources]
        for src, first in futures:
            future = first
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    yield future.result()
                except ProcessExpired as exc:
                    if exc.exitcode == EX_ENGINE_BROKEN and attempt < _ATTEMPTS:
                        future = schedule(src)  # the engine broke, maybe not by this image
                        continue
                    yield _failed(_blank(src), _expired(exc.exitcode))
                except FutureTimeout:
                    error: ImgpipeError = ProcessingTimeoutError(
                        f"gave up after {settings.limits.timeout_s:g} s; the worker was stopped"
                    )
                    yield _failed(_blank(src), error)
                except Exception as exc:  # noqa: BLE001 - one broken image must not stop the batch
                    yield _failed(_blank(src), InternalError(f"{type(exc).__name__}: {exc}"))
                break


def _expired(exitcode: int | None) -> InternalError:
    if exitcode == EX_ENGINE_BROKEN:
        return InternalError("this image broke the imaging engine in two fresh workers")
    return InternalError(f"worker died (exit code {exitcode})")


def _blank(source: Path) -> Result:
    return {"source": str(source), "status": "failed", "id": None, "metadata": {}, "renditions": []}
