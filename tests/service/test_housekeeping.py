"""ImageService.reconcile and sweep_dead_letters: lost announcements are redone, unused grants
expire, and images whose job keeps failing end ``failed``."""

from __future__ import annotations

import fixtures as F
from imgpipe.keys import new_id, raw_key

from .conftest import VISIBILITY_S, MakePipeline, Pipeline

LONG_AGO = "2000-01-01T00:00:00.000000Z"


def _receive_until_dead(pipeline: Pipeline, dead: int = 1) -> None:
    """Receive the one job without ever deleting it, until the queue dead-letters it (then
    ``dead`` dead letters exist)."""
    for _ in range(pipeline.queue.max_receives):
        assert len(pipeline.queue.receive()) == 1
        pipeline.clock.advance(VISIBILITY_S + 1)
    assert pipeline.queue.receive() == []
    assert len(pipeline.queue.dead_letters()) == dead


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_announces_a_raw_object_left_without_record_or_event(
    pipeline: Pipeline,
) -> None:
    """After a crash between storing and recording, reconcile gets the object processed."""
    image_id = new_id()
    data = F.jpeg()
    pipeline.blobs.put(raw_key(image_id), data, "image/jpeg", {"filename": "cat.jpg"})

    assert pipeline.service.reconcile() == 1
    (done,) = pipeline.run_worker()

    assert done.id == image_id
    assert done.status == "processed"
    assert (done.filename, done.content_type, done.bytes) == ("cat.jpg", "image/jpeg", len(data))
    assert pipeline.blob_keys(f"processed/{image_id}/") != []


def test_reconcile_reannounces_a_stale_pending_image_whose_event_was_lost(
    pipeline: Pipeline,
) -> None:
    """A pending image older than ``older_than_s`` is announced again; a fresh one is not."""
    record = pipeline.service.upload(F.jpeg())
    (lost,) = pipeline.queue.receive()
    pipeline.queue.delete(lost.receipt)

    assert pipeline.service.reconcile() == 0  # younger than the default 60 s
    assert pipeline.service.reconcile(older_than_s=0) == 1
    (done,) = pipeline.run_worker()
    assert (done.id, done.status) == (record.id, "processed")


def test_periodic_reconcile_leaves_a_pending_image_with_a_job_alone(
    pipeline: Pipeline,
) -> None:
    """``orphans_only`` queues no second job for a pending image (its own may be retrying)."""
    pipeline.service.upload(F.jpeg())

    assert pipeline.service.reconcile(older_than_s=0, orphans_only=True) == 0
    assert len(pipeline.queue.receive(max_messages=10)) == 1


def test_reconcile_leaves_finished_images_alone(pipeline: Pipeline) -> None:
    """Processed and rejected images are not announced again."""
    pipeline.service.upload(F.jpeg())
    pipeline.service.upload(F.truncated(F.noisy_jpeg()))
    pipeline.run_worker()

    assert pipeline.service.reconcile(older_than_s=0) == 0
    assert pipeline.queue.receive(max_messages=10) == []


def test_reconcile_deletes_expired_grants_that_were_never_used(pipeline: Pipeline) -> None:
    """A pending record whose grant expired long ago and whose object never came is removed."""
    expired = pipeline.service.create_upload("old.jpg", "image/jpeg", 100).id
    pipeline.records.update(expired, frozenset({"pending"}), {"created_at": LONG_AGO})
    used = pipeline.service.create_upload("used.jpg", "image/jpeg", 100).id
    pipeline.records.update(used, frozenset({"pending"}), {"created_at": LONG_AGO})
    pipeline.blobs.put(raw_key(used), F.jpeg(), "image/jpeg")
    fresh = pipeline.service.create_upload("new.jpg", "image/jpeg", 100).id

    assert pipeline.service.reconcile() == 1  # the used grant's object is announced

    assert pipeline.records.get(expired) is None
    assert pipeline.records.get(used) is not None
    assert pipeline.records.get(fresh) is not None


# --- dead letters ------------------------------------------------------------------------------


def test_sweep_marks_the_image_of_a_dead_lettered_job_failed(
    make_pipeline: MakePipeline,
) -> None:
    """An image whose job exhausted its receives ends ``failed`` with an error."""
    pipeline = make_pipeline(max_receives=2)
    record = pipeline.service.upload(F.jpeg())
    _receive_until_dead(pipeline)

    assert pipeline.service.sweep_dead_letters() == 1

    failed = pipeline.service.get(record.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert set(failed.error) == {"code", "message"}
    assert "dead-letter" in failed.error["message"]
    assert failed.processed_at is not None


def test_sweep_leaves_an_image_processed_meanwhile_alone(make_pipeline: MakePipeline) -> None:
    """A dead letter for an image that another delivery finished does not fail it."""
    pipeline = make_pipeline(max_receives=2)
    record = pipeline.service.upload(F.jpeg())
    (message,) = pipeline.queue.receive()
    pipeline.service.handle_event(message.body)  # done, but the worker died before deleting
    pipeline.clock.advance(VISIBILITY_S + 1)
    assert len(pipeline.queue.receive()) == 1  # ...and so did the next one
    pipeline.clock.advance(VISIBILITY_S + 1)
    assert pipeline.queue.receive() == []
    assert len(pipeline.queue.dead_letters()) == 1

    pipeline.service.sweep_dead_letters()
    assert pipeline.service.get(record.id).status == "processed"


def test_sweep_ignores_dead_letters_that_are_not_s3_events(make_pipeline: MakePipeline) -> None:
    """A malformed dead letter is counted and skipped, not raised."""
    pipeline = make_pipeline(max_receives=1)
    pipeline.queue.send({"hello": "world"})
    _receive_until_dead(pipeline)
    assert pipeline.service.sweep_dead_letters() == 1


def test_a_reprocessed_image_is_not_failed_again_by_an_old_dead_letter(
    make_pipeline: MakePipeline,
) -> None:
    """After failed -> reprocess, the next housekeeping sweep does not re-fail the image."""
    pipeline = make_pipeline(max_receives=2)
    record = pipeline.service.upload(F.jpeg())
    _receive_until_dead(pipeline)
    pipeline.service.sweep_dead_letters()

    pipeline.service.reprocess(record.id)
    pipeline.service.sweep_dead_letters()  # housekeeping runs every few seconds
    pipeline.run_worker()

    assert pipeline.service.get(record.id).status == "processed"


def test_a_dead_letter_of_the_attempt_before_a_reprocess_does_not_fail_the_new_one(
    make_pipeline: MakePipeline,
) -> None:
    """A job that dies after the user pressed reprocess belongs to generation 0; the image is
    on generation 1, so the sweep leaves it to its new job (nothing looked into the dead
    letters at reprocess)."""
    pipeline = make_pipeline(max_receives=2)
    record = pipeline.service.upload(F.jpeg())
    (stuck,) = pipeline.queue.receive()  # the first attempt hangs in a worker...
    pipeline.service.reprocess(record.id)  # ...the user asks again (generation 1)...
    assert pipeline.service.get(record.id).generation == 1
    for _ in range(pipeline.queue.max_receives):  # ...and the old job, oldest first, dies
        pipeline.clock.advance(VISIBILITY_S + 1)
        (message,) = pipeline.queue.receive()
        if message.id != stuck.id:  # the receive that dead-lettered it: the new job waits
            pipeline.queue.change_visibility(message.receipt, 0)
    assert [m.id for m in pipeline.queue.dead_letters()] == [stuck.id]

    pipeline.service.sweep_dead_letters()
    assert pipeline.service.get(record.id).status == "pending"
    pipeline.run_worker()
    assert pipeline.service.get(record.id).status == "processed"


def test_a_dead_letter_of_the_current_attempt_fails_a_reprocessed_image(
    make_pipeline: MakePipeline,
) -> None:
    """The generation rule still fails an image whose newest attempt dies."""
    pipeline = make_pipeline(max_receives=2)
    record = pipeline.service.upload(F.jpeg())
    _receive_until_dead(pipeline)
    pipeline.service.sweep_dead_letters()
    pipeline.service.reprocess(record.id)
    _receive_until_dead(pipeline, dead=2)  # the new attempt's job dies too

    pipeline.service.sweep_dead_letters()
    failed = pipeline.service.get(record.id)
    assert (failed.status, failed.generation) == ("failed", 1)
