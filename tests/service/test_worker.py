"""serve_jobs, the loop of every local worker: a poison file or a broken engine never fails the
images after it."""

from __future__ import annotations

from dataclasses import dataclass

import fixtures as F
from conftest import Engine
from imgpipe.entrypoints.worker import serve_jobs
from imgpipe.keys import id_from_key, new_id, raw_key
from imgpipe.testing import InMemoryQueue

from .conftest import Pipeline


@dataclass
class UntilDrained:
    """A stop signal that is set once the queue holds nothing, visible or in flight."""

    queue: InMemoryQueue

    def is_set(self) -> bool:
        stats = self.queue.stats()
        return not (stats["visible"] or stats["in_flight"])


def _serve(pipeline: Pipeline) -> bool:
    service = pipeline.service
    return serve_jobs(service, pipeline.queue, service.settings, UntilDrained(pipeline.queue))  # type: ignore[arg-type]  # a stop signal needs only is_set


def test_a_poison_file_is_rejected_and_every_later_image_processed(pipeline: Pipeline) -> None:
    """One worker, the non-UTF-8-error AVIF first: it ends rejected, the rest processed."""
    poison_key = raw_key(new_id())  # as a presigned upload stores it: no header check first
    pipeline.blobs.put(poison_key, F.avif_poison(), "image/avif")
    pipeline.service.object_created(poison_key)
    good = [pipeline.service.upload(data) for data in (F.jpeg(), F.png(), F.avif(), F.webp())]
    assert _serve(pipeline)
    record = pipeline.service.get(id_from_key(poison_key))
    assert (record.status, (record.error or {}).get("code")) == ("rejected", "corrupt")
    assert {pipeline.service.get(r.id).status for r in good} == {"processed"}


def test_a_broken_engine_stops_the_worker_and_releases_its_job(
    pipeline: Pipeline, engine: Engine
) -> None:
    """The worker that finds its engine broken stops at once; its job is visible again, and a
    fresh worker processes everything - nothing failed or rejected for the broken engine."""
    images = [pipeline.service.upload(F.jpeg()) for _ in range(3)]
    engine.break_()
    assert not _serve(pipeline)
    assert pipeline.queue.stats()["visible"] == 3  # the held job released, none lost
    assert {pipeline.service.get(r.id).status for r in images} <= {"pending", "processing"}
    engine.repair()  # what the replacement process starts with
    assert _serve(pipeline)
    assert {pipeline.service.get(r.id).status for r in images} == {"processed"}
