"""Image events: one per terminal state, shaped by the published JSON Schema, and never able to
fail an image."""

from __future__ import annotations

import json
import logging
from importlib.resources import files

import jsonschema
import pytest

import fixtures as F
from imgpipe.errors import InternalError
from imgpipe.testing import InMemoryEventPublisher

from .conftest import MakePipeline, Pipeline

SCHEMA = json.loads((files("imgpipe") / "schemas" / "image-event.v1.json").read_text("utf-8"))


@pytest.fixture
def events() -> InMemoryEventPublisher:
    return InMemoryEventPublisher()


@pytest.fixture
def wired(make_pipeline: MakePipeline, events: InMemoryEventPublisher) -> Pipeline:
    pipeline = make_pipeline()
    pipeline.service.events = events
    return pipeline


def _valid(event: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(event)


def test_each_terminal_state_sends_one_event_that_matches_the_schema(
    wired: Pipeline, events: InMemoryEventPublisher
) -> None:
    good = wired.service.upload(F.jpeg((120, 80)), "cat.jpg")
    bad = wired.service.upload(F.truncated(F.noisy_jpeg()), "bad.jpg")
    wired.run_worker()
    stuck = wired.service.upload(F.jpeg((60, 40)), "stuck.jpg")
    assert wired.service.mark_failed(stuck.id, InternalError("worker died"), generation=0)
    wired.service.delete(good.id)
    wired.service.delete(good.id)  # nothing left: no second event

    assert sorted(events.types()) == sorted([
        ("image.processed", good.id), ("image.rejected", bad.id),
        ("image.failed", stuck.id), ("image.deleted", good.id)])  # fmt: skip
    for event in events.events:
        _valid(event)
    processed = next(e for e in events.events if e["type"] == "image.processed")
    data = processed["data"]
    assert (data["status"], data["filename"], data["width"], data["height"]) == (
        "processed", "cat.jpg", 120, 80)  # fmt: skip
    assert {r["key"] for r in data["renditions"]} == {
        f"processed/{good.id}/{n}" for n in ("thumb.jpg", "thumb.webp", "small.jpg")}  # fmt: skip
    rejected = next(e for e in events.events if e["type"] == "image.rejected")
    assert rejected["data"]["error"]["code"] in ("corrupt", "truncated")
    assert len({e["id"] for e in events.events}) == 4  # unique ids


def test_a_redelivered_job_sends_no_second_event(
    wired: Pipeline, events: InMemoryEventPublisher
) -> None:
    record = wired.service.upload(F.jpeg(), "a.jpg")
    wired.run_worker()
    wired.service.process_object(record.raw_key)  # the same event again (at-least-once)
    assert events.types() == [("image.processed", record.id)]


def test_a_publisher_failure_never_fails_the_image(
    wired: Pipeline, events: InMemoryEventPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    events.fail = RuntimeError("bus down")
    record = wired.service.upload(F.jpeg(), "a.jpg")
    with caplog.at_level(logging.ERROR, logger="imgpipe.service"):
        (done,) = wired.run_worker()
    assert done.status == "processed"
    assert wired.service.get(record.id).status == "processed"
    assert "publishing an event failed" in caplog.text
