"""``build_aws``: configuration from the environment, and the service it wires, end to end on
the moto server (S3's event notification is played by hand: that wiring is the template's)."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import boto3
import pytest

import aws_support
import fixtures as F
from imgpipe.bootstrap import AWS_ENV, AwsApp, build_aws
from imgpipe.errors import ConfigError
from imgpipe.events import object_created_event, parse_event
from imgpipe.keys import new_id, raw_key, rendition_key
from imgpipe.settings import RenditionSpec, Settings

pytestmark = pytest.mark.aws

SETTINGS = Settings(renditions=(RenditionSpec("thumb", 32, formats=("jpeg", "webp")),))
# Names only: build_aws makes clients but sends nothing until the service is used.
NAMES = {
    "IMGPIPE_RAW_BUCKET": "raw-bucket",
    "IMGPIPE_PROCESSED_BUCKET": "processed-bucket",
    "IMGPIPE_TABLE": "images",
    "IMGPIPE_QUEUE_URL": "http://127.0.0.1:9/123456789012/jobs",
    "IMGPIPE_DLQ_URL": "http://127.0.0.1:9/123456789012/dlq",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


def _build(stack: aws_support.AwsStack, **env: str) -> AwsApp:
    return build_aws(SETTINGS, {**stack.environ, **env}, aws_support.session())


def _process_announced(app: AwsApp, key: str) -> None:
    """What S3 -> SQS -> the processor does for one stored raw object."""
    head = app.blobs.head(key)
    assert head is not None
    event = object_created_event(app.blobs.raw_bucket, key, int(head["size"]), head["etag"])
    app.service.handle_event(event)


@pytest.mark.parametrize("name", AWS_ENV[:5])
def test_a_missing_variable_is_a_config_error_naming_it(name: str) -> None:
    """Each required IMGPIPE_* variable missing or blank raises ConfigError with its name."""
    environ = {k: v for k, v in NAMES.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        build_aws(SETTINGS, environ, aws_support.session())
    with pytest.raises(ConfigError, match=name):
        build_aws(SETTINGS, {**environ, name: "  "}, aws_support.session())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMGPIPE_TAGGER", "magic"),
        ("IMGPIPE_FACES", "local"),
        ("IMGPIPE_REKOGNITION_MIN_CONFIDENCE", "high"),
        ("IMGPIPE_REKOGNITION_MIN_CONFIDENCE", "101"),
        ("IMGPIPE_REKOGNITION_MIN_CONFIDENCE", "nan"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_it(name: str, value: str) -> None:
    """An unknown tagger or a confidence outside 0..100 raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match=name):
        build_aws(SETTINGS, {**NAMES, name: value}, aws_support.session())


def test_settings_come_from_the_same_environment() -> None:
    """Without explicit settings, IMGPIPE_* settings variables in environ apply."""
    environ = {**NAMES, "IMGPIPE_MAX_RECEIVES": "7", "IMGPIPE_JPEG": "70"}
    app = build_aws(environ=environ, session=aws_support.session())
    assert app.service.settings.encoding.jpeg == 70
    assert app.queue.max_receives == 7


def test_importing_bootstrap_needs_no_boto3() -> None:
    """The local service never loads boto3: build_aws imports it only when called."""
    code = "import sys, imgpipe.bootstrap; print('boto3' in sys.modules, 'botocore' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]


def test_upload_stores_privately_and_leaves_announcing_to_s3(
    aws_stack: aws_support.AwsStack,
) -> None:
    """A direct upload puts the raw object and the record, and sends no job: S3 notifies."""
    app = _build(aws_stack)
    assert app.service.store_notifies
    record = app.service.upload(F.jpeg((64, 48)), "holiday.jpg")
    assert app.blobs.get(record.raw_key) == F.jpeg((64, 48))
    head = app.blobs.head(record.raw_key)
    assert head is not None
    assert (head["filename"], head["content_type"]) == ("holiday.jpg", "image/jpeg")
    assert app.records.get(record.id) == record
    assert app.queue.receive(max_messages=10) == []


def test_announced_object_is_processed_into_s3_and_dynamodb(
    aws_stack: aws_support.AwsStack,
) -> None:
    """Processing writes renditions to the processed bucket and a processed record with local
    and Rekognition tags, findable by tag and served by presigned redirect."""
    app = _build(aws_stack)
    record = app.service.upload(F.jpeg((64, 48)), "holiday.jpg")
    _process_announced(app, record.raw_key)
    done = app.service.get(record.id)
    assert done.status == "processed"
    assert sorted(r["key"] for r in done.renditions) == [
        f"processed/{record.id}/thumb.jpg",
        f"processed/{record.id}/thumb.webp",
    ]
    assert list(app.blobs.list(f"processed/{record.id}/")) == sorted(
        r["key"] for r in done.renditions
    )
    sources = {t["source"] for t in done.tags}
    assert sources == {"local", "rekognition"}
    assert [r.id for r in app.service.list(tag="mobile phone").items] == [record.id]
    delivery = app.service.rendition(record.id, "thumb.webp")
    assert delivery.redirect is not None
    with urllib.request.urlopen(delivery.redirect, timeout=10) as response:
        assert response.headers["Content-Type"] == "image/webp"
        assert response.read() == app.blobs.get(f"processed/{record.id}/thumb.webp")


@pytest.mark.parametrize(("tagger", "sources"), [("local", {"local"}), ("none", set())])
def test_the_tagger_is_chosen_by_imgpipe_tagger(
    aws_stack: aws_support.AwsStack, tagger: str, sources: set[str]
) -> None:
    """IMGPIPE_TAGGER=local tags without Rekognition; none tags nothing."""
    app = _build(aws_stack, IMGPIPE_TAGGER=tagger)
    record = app.service.upload(F.jpeg((64, 48)))
    _process_announced(app, record.raw_key)
    assert {t["source"] for t in app.service.get(record.id).tags} == sources


@pytest.mark.parametrize("tagger", ["rekognition", "none"])
def test_imgpipe_faces_lets_rekognition_faces_place_the_focal_point(
    aws_stack: aws_support.AwsStack, tagger: str
) -> None:
    """IMGPIPE_FACES=rekognition: DetectFaces' face (moto's fixed one, bottom left) is the
    focal point and is recorded - whatever the tagger; unset, attention decides."""
    app = _build(aws_stack, IMGPIPE_TAGGER=tagger, IMGPIPE_FACES="rekognition")
    record = app.service.upload(F.salient((400, 300), (330, 60), 30))
    _process_announced(app, record.raw_key)
    metadata = app.service.get(record.id).metadata
    assert metadata["focal_point"] == {"x": 60, "y": 195, "source": "faces"}
    assert metadata["faces"] == [
        {"x": 40, "y": 165, "width": 40, "height": 60, "confidence": 0.9999}
    ]
    plain = _build(aws_stack, IMGPIPE_TAGGER=tagger)
    record = plain.service.upload(F.salient((400, 300), (320, 70), 30))  # not a duplicate
    _process_announced(plain, record.raw_key)
    metadata = plain.service.get(record.id).metadata
    assert metadata["focal_point"]["source"] == "attention"
    assert "faces" not in metadata


def test_reprocess_and_delete_go_through_the_queue_and_the_buckets(
    aws_stack: aws_support.AwsStack,
) -> None:
    """reprocess sends one S3-shaped job to the jobs queue; delete removes every trace."""
    app = _build(aws_stack)
    record = app.service.upload(F.jpeg((64, 48)))
    _process_announced(app, record.raw_key)
    app.service.reprocess(record.id)
    (job,) = app.queue.receive(max_messages=10)
    assert [o.key for o in parse_event(job.body)] == [record.raw_key]
    app.service.handle_event(job.body)
    app.queue.delete(job.receipt)
    assert app.service.get(record.id).status == "processed"
    app.service.delete(record.id)
    assert app.records.get(record.id) is None
    assert list(app.blobs.list("")) == []


def test_upload_grant_is_a_presigned_post_to_the_raw_bucket(
    aws_stack: aws_support.AwsStack,
) -> None:
    """create_upload answers with an S3 form for the new raw key and a pending record."""
    app = _build(aws_stack)
    ticket = app.service.create_upload("big.png", "image/png", 10_000_000)
    assert ticket.upload.url.startswith(f"{aws_stack.endpoint}/{aws_stack.raw_bucket}")
    assert ticket.upload.fields["key"] == f"raw/{ticket.id}"
    assert app.service.get(ticket.id).status == "pending"


def test_duplicate_content_reuses_the_first_images_renditions(
    aws_stack: aws_support.AwsStack,
) -> None:
    """A second upload of the same bytes is found through the sha256 index and copied."""
    app = _build(aws_stack)
    first = app.service.upload(F.jpeg((64, 48)))
    _process_announced(app, first.raw_key)
    second = app.service.upload(F.jpeg((64, 48)))
    _process_announced(app, second.raw_key)
    copy = app.service.get(second.id)
    assert (copy.status, copy.duplicate_of) == ("processed", first.id)
    for rendition in copy.renditions:
        original = rendition["key"].replace(second.id, first.id)
        assert app.blobs.get(rendition["key"]) == app.blobs.get(original)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_presigned_urls_use_the_regional_endpoint(region: str) -> None:
    """The upload form and a rendition's download URL name the bucket's regional endpoint in
    every region (boto3's default in us-east-1 is the global one, which redirects a new
    bucket); signing sends no request, so no endpoint is needed here."""
    environ = {k: v for k, v in NAMES.items() if k != "AWS_ENDPOINT_URL"}
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    app = build_aws(SETTINGS, environ, session)

    image_id = new_id()
    form = app.service.signer.presign_post(raw_key(image_id), "image/jpeg", 1024, 300)
    assert form.url == f"https://raw-bucket.s3.{region}.amazonaws.com/"
    url = app.blobs.download_url(rendition_key(image_id, "thumb.webp"), "a.webp", 300)
    assert url is not None
    assert url.startswith(f"https://processed-bucket.s3.{region}.amazonaws.com/processed/")
