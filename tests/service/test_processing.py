"""ImageService.handle_event / process_object: pending images become processed (or rejected),
idempotently, with duplicates reusing renditions and reprocessing replacing stale ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import quote

import pytest

import fixtures as F
from imgpipe.core.tags import LocalTagger
from imgpipe.errors import BadRequestError, ConflictError, InvalidRequestError, NotFoundError
from imgpipe.events import object_created_event
from imgpipe.keys import new_id, raw_key, rendition_key
from imgpipe.model import Tag
from imgpipe.ports import TagSubject
from imgpipe.service import ImageService
from imgpipe.settings import RenditionSpec, Settings

from .conftest import MakePipeline, Pipeline


class CountingTagger:
    """A tagger that remembers how many images it was shown (each one was rendered first)."""

    def __init__(self) -> None:
        self.seen = 0

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        self.seen += 1
        return [Tag("counted", 0.5, "test")]


def _processed_keys(pipeline: Pipeline, image_id: str) -> list[str]:
    return pipeline.blob_keys(f"processed/{image_id}/")


# --- the happy path ----------------------------------------------------------------------------


def test_processing_renders_every_preset_into_the_blob_store(pipeline: Pipeline) -> None:
    """A pending image becomes processed with one stored rendition per preset and format."""
    record = pipeline.service.upload(F.jpeg((120, 80)), "cat.jpg")
    (done,) = pipeline.run_worker()

    assert done == pipeline.service.get(record.id)
    assert done.status == "processed"
    assert (done.width, done.height, done.format) == (120, 80, "jpeg")
    assert done.processed_at is not None
    assert done.error is None
    expected = {rendition_key(record.id, n) for n in ("thumb.jpg", "thumb.webp", "small.jpg")}
    assert set(_processed_keys(pipeline, record.id)) == expected
    assert {r["key"] for r in done.renditions} == expected
    assert pipeline.blob_keys("raw/") == [record.raw_key]  # the original is kept for reprocessing


def test_rendition_entries_describe_the_stored_bytes(pipeline: Pipeline) -> None:
    """Each rendition entry's size, format and content type match the object stored for it."""
    record = pipeline.service.upload(F.png((120, 80)))
    (done,) = pipeline.run_worker()

    content_types = {"jpeg": "image/jpeg", "webp": "image/webp"}
    sizes = {(r["name"], r["format"]): (r["width"], r["height"]) for r in done.renditions}
    assert sizes == {
        ("thumb", "jpeg"): (32, 21),
        ("thumb", "webp"): (32, 21),
        ("small", "jpeg"): (48, 32),
    }
    for rendition in done.renditions:
        head = pipeline.blobs.head(rendition["key"])
        assert head is not None
        assert int(head["size"]) == rendition["bytes"]
        assert head["content_type"] == content_types[rendition["format"]]
    assert done.content_type == "image/png"
    assert record.bytes == len(F.png((120, 80)))


def test_processing_records_the_taggers_tags(pipeline: Pipeline) -> None:
    """The tags on the record are the tagger's, in wire form."""
    pipeline.service.upload(F.jpeg())
    (done,) = pipeline.run_worker()
    assert done.tags == [{"name": "fixed", "confidence": 1.0, "source": "test"}]


def test_processing_with_the_local_tagger_tags_from_the_pixels(
    make_pipeline: MakePipeline,
) -> None:
    """With the local tagger a wide grey image is tagged landscape and monochrome."""
    pipeline = make_pipeline(tagger=LocalTagger())
    pipeline.service.upload(F.jpeg((120, 80)))
    (done,) = pipeline.run_worker()
    names = {t["name"] for t in done.tags}
    assert {"landscape", "monochrome"} <= names
    assert {t["source"] for t in done.tags} == {"local"}


# --- rejection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "codes"),
    [
        pytest.param(F.truncated(F.noisy_jpeg()), {"truncated", "corrupt"}, id="truncated-jpeg"),
        pytest.param(F.truncated(F.noisy_png()), {"truncated", "corrupt"}, id="truncated-png"),
    ],
)
def test_header_valid_but_damaged_image_is_rejected_after_one_attempt(
    pipeline: Pipeline, data: bytes, codes: set[str]
) -> None:
    """Damage found while decoding ends ``rejected`` with a code; the job is done, not retried."""
    record = pipeline.service.upload(data)  # the header alone passes
    (done,) = pipeline.run_worker()

    assert done.status == "rejected"
    assert done.error is not None
    assert done.error["code"] in codes
    assert done.processed_at is not None
    assert done.renditions == []
    assert _processed_keys(pipeline, record.id) == []
    pipeline.clock.advance(3600)
    assert pipeline.queue.receive(max_messages=10) == []
    assert pipeline.queue.dead_letters() == []


def test_garbage_after_a_valid_header_uploaded_through_a_grant_is_rejected(
    pipeline: Pipeline,
) -> None:
    """Bytes that skip direct-upload validation are still refused by the processor."""
    image_id = new_id()
    pipeline.blobs.put(raw_key(image_id), F.jpeg_garbage_after_header(), "image/jpeg")
    pipeline.service.object_created(raw_key(image_id))
    (done,) = pipeline.run_worker()
    assert done.status == "rejected"
    assert done.error is not None
    assert done.error["code"] in {"corrupt", "truncated"}


# --- idempotency -------------------------------------------------------------------------------


def test_the_same_event_handled_twice_changes_nothing_the_second_time(
    pipeline: Pipeline,
) -> None:
    """A re-delivered event yields the same record: same processed_at, renditions and bytes."""
    record = pipeline.service.upload(F.jpeg())
    (message,) = pipeline.queue.receive()
    (first,) = pipeline.service.handle_event(message.body)
    stored = {k: pipeline.blobs.get(k) for k in _processed_keys(pipeline, record.id)}

    (second,) = pipeline.service.handle_event(message.body)

    assert second == first
    assert second.processed_at == first.processed_at
    assert second.renditions == first.renditions
    assert {k: pipeline.blobs.get(k) for k in _processed_keys(pipeline, record.id)} == stored
    assert len(pipeline.records.list().items) == 1


def test_a_redelivered_job_after_the_visibility_timeout_is_acknowledged_without_work(
    make_pipeline: MakePipeline,
) -> None:
    """A worker that processed but failed to delete its job gets it again and only acks it."""
    tagger = CountingTagger()
    pipeline = make_pipeline(tagger=tagger)
    pipeline.service.upload(F.jpeg())
    (message,) = pipeline.queue.receive()
    (first,) = pipeline.service.handle_event(message.body)  # ...and the worker dies here

    pipeline.clock.advance(60)
    (again,) = pipeline.run_worker()
    assert again == first
    assert tagger.seen == 1
    assert pipeline.queue.receive() == []


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_content_reuses_the_earlier_renditions_without_rendering(
    make_pipeline: MakePipeline,
) -> None:
    """The same bytes again are ``duplicate_of`` the first image, with copied renditions."""
    tagger = CountingTagger()
    pipeline = make_pipeline(tagger=tagger)
    data = F.jpeg((90, 60))
    original = pipeline.service.upload(data, "a.jpg")
    pipeline.run_worker()
    copy = pipeline.service.upload(data, "b.jpg")
    (done,) = pipeline.run_worker()

    first = pipeline.service.get(original.id)
    assert tagger.seen == 1
    assert done.status == "processed"
    assert done.duplicate_of == original.id
    assert (done.width, done.height, done.tags) == (first.width, first.height, first.tags)
    names = sorted(k.rsplit("/", 1)[1] for k in _processed_keys(pipeline, copy.id))
    assert names == sorted(k.rsplit("/", 1)[1] for k in _processed_keys(pipeline, original.id))
    for mine, theirs in zip(done.renditions, first.renditions, strict=True):
        assert mine["key"].startswith(f"processed/{copy.id}/")
        assert pipeline.blobs.get(mine["key"]) == pipeline.blobs.get(theirs["key"])
        assert {**mine, "key": ""} == {**theirs, "key": ""}


def test_a_near_duplicate_points_at_the_closest_older_image_only(pipeline: Pipeline) -> None:
    """A re-encode processed before its original points nowhere, and the original (the older)
    never points at it; reprocessed once the original is processed, the copy points at it."""
    original = pipeline.service.upload(F.scene(5), "original.jpg")
    copy = pipeline.service.upload(F.scene(5, (300, 225), quality=60), "copy.jpg")
    other = pipeline.service.upload(F.scene(6), "other.jpg")
    pipeline.service.process_object(copy.raw_key)  # before the original exists as processed
    pipeline.service.process_object(original.raw_key)
    pipeline.service.process_object(other.raw_key)
    assert pipeline.service.get(copy.id).near_duplicate_of is None
    assert pipeline.service.get(original.id).near_duplicate_of is None  # the copy is newer

    pipeline.service.reprocess(copy.id)
    pipeline.run_worker()
    near = pipeline.service.get(copy.id).near_duplicate_of
    assert near is not None
    assert near["id"] == original.id
    assert 0 <= near["distance"] <= Settings().service.near_duplicate_distance
    assert pipeline.service.get(other.id).near_duplicate_of is None
    found = pipeline.service.similar(original.id)
    assert [(s.record.id, s.distance) for s in found] == [(copy.id, near["distance"])]


AVATAR = Settings(renditions=(RenditionSpec("avatar", 128, 128, fit="cover", formats=("png",)),))


def test_the_focal_point_is_found_stored_and_a_users_one_rerenders_the_crops(
    make_pipeline: MakePipeline,
) -> None:
    """Processing stores the attention focal point (on the disc) and the avatar shows the disc;
    a user's point elsewhere re-renders the avatar around it, and survives a later reprocess."""
    pipeline = make_pipeline(settings=AVATAR)
    record = pipeline.service.upload(F.salient(), "disc.png")
    (done,) = pipeline.run_worker()
    point = done.metadata["focal_point"]
    assert point["source"] == "attention"
    assert (point["x"] - 1300) ** 2 + (point["y"] - 220) ** 2 < 70**2
    avatar_key = done.renditions[0]["key"]
    assert (
        F.yellow_fraction(pipeline.blobs.get(avatar_key)) > 0.015
    )  # the whole disc: pi*10^2 of 128^2

    queued = pipeline.service.set_focal_point(record.id, 10, 890)
    assert (queued.status, queued.generation) == ("pending", 1)
    (again,) = pipeline.run_worker()
    assert again.metadata["focal_point"] == {"x": 10, "y": 890, "source": "user"}
    assert F.yellow_fraction(pipeline.blobs.get(again.renditions[0]["key"])) == 0.0
    assert again.renditions[0]["etag"] != done.renditions[0]["etag"]

    pipeline.service.reprocess(record.id)
    (kept,) = pipeline.run_worker()
    assert kept.metadata["focal_point"] == {"x": 10, "y": 890, "source": "user"}


def test_a_focal_point_needs_a_processed_image_and_a_point_inside_it(pipeline: Pipeline) -> None:
    pending = pipeline.service.upload(F.jpeg((120, 80)), "cat.jpg")
    with pytest.raises(ConflictError, match="pending"):
        pipeline.service.set_focal_point(pending.id, 1, 1)
    pipeline.run_worker()
    with pytest.raises(InvalidRequestError, match="outside the 120x80"):
        pipeline.service.set_focal_point(pending.id, 120, 0)
    with pytest.raises(NotFoundError):
        pipeline.service.set_focal_point(new_id(), 1, 1)


def test_similar_needs_a_processed_image(pipeline: Pipeline) -> None:
    pending = pipeline.service.upload(F.scene(7), "pending.jpg")
    with pytest.raises(ConflictError, match="pending"):
        pipeline.service.similar(pending.id)
    with pytest.raises(NotFoundError):
        pipeline.service.similar(new_id())


def test_a_duplicate_keeps_its_renditions_when_the_original_is_deleted(
    pipeline: Pipeline,
) -> None:
    """Copies are the duplicate's own objects: deleting the original leaves them in place."""
    data = F.jpeg()
    original = pipeline.service.upload(data)
    pipeline.run_worker()
    copy = pipeline.service.upload(data)
    (done,) = pipeline.run_worker()

    pipeline.service.delete(original.id)
    for rendition in done.renditions:
        assert pipeline.blobs.head(rendition["key"]) is not None
    assert pipeline.service.get(copy.id).status == "processed"


# --- reprocessing ------------------------------------------------------------------------------


def test_reprocess_with_new_presets_replaces_the_renditions(
    pipeline: Pipeline, settings: Settings
) -> None:
    """Reprocess goes pending, then processed with the new presets; stale objects are removed."""
    record = pipeline.service.upload(F.jpeg((120, 80)))
    (before,) = pipeline.run_worker()

    presets = (
        RenditionSpec("thumb", 40, formats=("jpeg",)),
        RenditionSpec("tiny", 16, formats=("png",)),
    )
    redeployed = pipeline.redeployed(replace(settings, renditions=presets))
    queued = redeployed.service.reprocess(record.id)
    assert queued.status == "pending"
    stored = redeployed.records.get(record.id)
    assert stored is not None
    assert stored.status == "pending"

    (after,) = redeployed.run_worker()
    assert after.status == "processed"
    assert after.processed_at is not None
    assert before.processed_at is not None
    assert after.processed_at >= before.processed_at
    expected = {rendition_key(record.id, n) for n in ("thumb.jpg", "tiny.png")}
    assert set(_processed_keys(pipeline, record.id)) == expected
    assert {r["key"] for r in after.renditions} == expected
    assert {(r["name"], r["width"]) for r in after.renditions} == {("thumb", 40), ("tiny", 16)}


def test_reprocess_of_a_rejected_image_applies_relaxed_limits(
    pipeline: Pipeline, settings: Settings
) -> None:
    """An image rejected under old limits is processed after the limits change and a reprocess."""
    record = pipeline.service.upload(F.jpeg((90, 60)))
    narrow = pipeline.redeployed(replace(settings, limits=replace(settings.limits, max_side=50)))
    (rejected,) = narrow.run_worker()
    assert rejected.status == "rejected"
    assert rejected.error is not None
    assert rejected.error["code"] == "too_many_pixels"

    pipeline.service.reprocess(record.id)
    (done,) = pipeline.run_worker()
    assert done.status == "processed"
    assert done.error is None


def test_reprocess_of_an_unknown_image_or_a_missing_original_is_not_found(
    pipeline: Pipeline,
) -> None:
    """Reprocess needs a record and its stored original."""
    with pytest.raises(NotFoundError):
        pipeline.service.reprocess(new_id())
    ticket = pipeline.service.create_upload(None, "image/jpeg", 100)  # never uploaded
    with pytest.raises(NotFoundError):
        pipeline.service.reprocess(ticket.id)
    assert pipeline.queue.receive() == []


def test_reprocessing_an_original_renders_again_even_when_a_duplicate_exists(
    pipeline: Pipeline, settings: Settings
) -> None:
    """Reprocessing the first of two identical images renders the new presets itself."""
    data = F.jpeg((120, 80))
    original = pipeline.service.upload(data)
    pipeline.run_worker()
    copy = pipeline.service.upload(data)
    pipeline.run_worker()

    presets = (RenditionSpec("hero", 64, formats=("jpeg",)),)
    redeployed = pipeline.redeployed(replace(settings, renditions=presets))
    redeployed.service.reprocess(original.id)
    (done,) = redeployed.run_worker()

    assert done.duplicate_of != copy.id  # no cycle: copy.duplicate_of is original
    assert _processed_keys(pipeline, original.id) == [rendition_key(original.id, "hero.jpg")]


# --- deletion ----------------------------------------------------------------------------------


def test_delete_removes_the_original_the_renditions_and_the_record(pipeline: Pipeline) -> None:
    """After delete nothing of the image is left; other images are untouched."""
    record = pipeline.service.upload(F.jpeg())
    other = pipeline.service.upload(F.png())
    pipeline.run_worker()
    kept = pipeline.blob_keys(f"processed/{other.id}/")

    pipeline.service.delete(record.id)

    assert pipeline.records.get(record.id) is None
    assert [k for k in pipeline.blob_keys() if record.id in k] == []
    assert pipeline.blob_keys(f"processed/{other.id}/") == kept
    assert pipeline.service.get(other.id).status == "processed"


def test_delete_is_idempotent(pipeline: Pipeline) -> None:
    """Deleting twice, or deleting an id that never existed, is not an error."""
    record = pipeline.service.upload(F.jpeg())
    pipeline.service.delete(record.id)
    pipeline.service.delete(record.id)
    pipeline.service.delete(new_id())
    assert pipeline.blob_keys() == []
    with pytest.raises(NotFoundError):
        pipeline.service.get(record.id)


def test_an_event_for_a_deleted_image_does_nothing(pipeline: Pipeline) -> None:
    """``process_object`` of a deleted raw object returns None and recreates nothing."""
    record = pipeline.service.upload(F.jpeg())
    pipeline.service.delete(record.id)

    assert pipeline.service.process_object(record.raw_key) is None
    assert pipeline.run_worker() == []
    assert pipeline.records.get(record.id) is None
    assert pipeline.blob_keys() == []


class _DeletingTagger:
    """Stands in for a user deleting the image while the worker renders it."""

    def __init__(self, pipeline: Pipeline, image_id: str) -> None:
        self.pipeline, self.image_id = pipeline, image_id

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        self.pipeline.service.delete(self.image_id)
        return []


def test_a_delete_during_processing_leaves_no_renditions_behind(pipeline: Pipeline) -> None:
    """When an image is deleted mid-processing, the job removes what it wrote and ends."""
    record = pipeline.service.upload(F.jpeg())
    tagger = _DeletingTagger(pipeline, record.id)
    s = pipeline.service
    racing = ImageService(s.blobs, s.records, s.queue, tagger, s.signer, s.settings)
    (message,) = pipeline.queue.receive()

    assert racing.handle_event(message.body) == []
    assert pipeline.blob_keys() == []
    assert pipeline.records.get(record.id) is None


# --- events ------------------------------------------------------------------------------------


def test_an_s3_test_event_is_acknowledged_without_work(pipeline: Pipeline) -> None:
    """The ``s3:TestEvent`` S3 sends when notifications are configured processes nothing."""
    assert pipeline.service.handle_event({"Event": "s3:TestEvent", "Bucket": "raw"}) == []
    assert pipeline.records.list().items == []


def test_events_other_than_object_created_are_skipped(pipeline: Pipeline) -> None:
    """An ObjectRemoved record in a notification is ignored."""
    record = pipeline.service.upload(F.jpeg())
    body = object_created_event("raw", record.raw_key, 1, "")
    body["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert pipeline.service.handle_event(body) == []
    assert pipeline.service.get(record.id).status == "pending"


def test_event_keys_are_url_decoded(pipeline: Pipeline) -> None:
    """Keys arrive URL-encoded as S3 sends them (``raw%2F<id>``) and are decoded once."""
    record = pipeline.service.upload(F.jpeg())
    body = object_created_event("raw", record.raw_key, 1, "")
    body["Records"][0]["s3"]["object"]["key"] = quote(record.raw_key, safe="")
    (done,) = pipeline.service.handle_event(body)
    assert (done.id, done.status) == (record.id, "processed")


def _event_with_key(key: str) -> dict[str, object]:
    body = object_created_event("raw", "raw/" + "0" * 28, 1, "")
    body["Records"][0]["s3"]["object"]["key"] = key
    return body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_event_with_key(rendition_key("0" * 28, "thumb.jpg")), id="processed-key"),
        pytest.param(_event_with_key("uploads/" + "0" * 28), id="other-prefix"),
        pytest.param(_event_with_key("raw/../processed/x"), id="traversal"),
        pytest.param(_event_with_key("raw/not-an-id"), id="bad-id"),
        pytest.param({}, id="no-records"),
        pytest.param({"Records": "raw/x"}, id="records-not-a-list"),
        pytest.param({"Records": [{}]}, id="record-without-name"),
        pytest.param({"Records": [None]}, id="record-not-an-object"),
        pytest.param({"Records": [{"eventName": "ObjectCreated:Put"}]}, id="record-without-s3"),
        pytest.param(
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "raw/x"}}}]},
            id="record-without-bucket",
        ),
    ],
)
def test_events_outside_raw_or_malformed_are_bad_requests(
    pipeline: Pipeline, body: dict[str, object]
) -> None:
    """Anything but an S3 notification of raw objects is a BadRequestError and does no work."""
    with pytest.raises(BadRequestError):
        pipeline.service.handle_event(body)
    assert pipeline.records.list().items == []
    assert pipeline.blob_keys() == []


def test_a_duplicate_declared_as_another_type_keeps_the_true_content_type(
    pipeline: Pipeline,
) -> None:
    """A presigned upload declared image/png whose bytes duplicate an earlier JPEG ends with
    content_type image/jpeg, like its original."""
    data = F.jpeg((120, 80))
    first = pipeline.service.upload(data, "a.jpg")
    pipeline.run_worker()
    ticket = pipeline.service.create_upload("b.png", "image/png", len(data))
    key = ticket.upload.fields["key"]
    pipeline.blobs.put(key, data, "image/png")
    pipeline.service.object_created(key)
    (done,) = pipeline.run_worker()
    assert done.duplicate_of == first.id
    assert done.content_type == "image/jpeg"
