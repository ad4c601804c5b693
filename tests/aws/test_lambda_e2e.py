"""The Lambda handlers end to end against a moto server on 127.0.0.1, wired like template.yaml.

Each test gets fresh buckets, table and queues (``aws_support.make_stack``) with the template's
settings applied where they change behaviour: the raw bucket versioned and notifying the jobs
queue of ``s3:ObjectCreated:*`` under ``raw/`` (moto delivers the notifications), and the jobs
queue redriving to the dead-letter queue after the template's ``maxReceiveCount``. Only the
visibility timeout is shortened (1 s) so that retries happen within the test.

The handlers are imported and called as Lambda calls them: API Gateway HTTP API v2 events for
the API function; for the SQS-triggered ones, ``Pump`` plays the event source mapping -
ReceiveMessage, one invocation per batch, DeleteMessage for every record not listed in
``batchItemFailures``. Configuration reaches the handlers only through the environment, as in
Lambda (``monkeypatch.setenv``); nothing of ours or boto3's is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import aws_support
import fixtures as F
from cfn import load_template
from conftest import Engine
from imgpipe.entrypoints import lambda_api, lambda_dlq, lambda_processor
from imgpipe.errors import EX_ENGINE_BROKEN
from imgpipe.testing import to_v2_event

pytestmark = pytest.mark.aws

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{aws_support.REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Pump:
    """The SQS event source mapping of one queue and function, run by hand."""

    queue_url: str
    handler: Handler
    name: str
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # every record handed over
    failures: list[str] = field(default_factory=list)  # message ids reported failed

    def __post_init__(self) -> None:
        self.sqs = aws_support.client("sqs")
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                                   AttributeNames=["QueueArn"])  # fmt: skip
        self.arn = attributes["Attributes"]["QueueArn"]

    def once(self, batch_size: int = 10) -> int:
        """One poll and one invocation; the number of records delivered."""
        found = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not found:
            return 0
        records = [self._record(m) for m in found]
        self.deliveries.extend(records)
        result = self.handler({"Records": records}, LambdaContext(self.name))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        self.failures.extend(failed)
        for message in found:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])  # fmt: skip
        return len(records)

    def drain(self, rounds: int = 40) -> None:
        """Poll until the queue holds nothing, visible or in flight."""
        for _ in range(rounds):
            self.once()
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            depth = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
            if not any(int(v) for v in depth["Attributes"].values()):
                return
        pytest.fail(f"{self.name}: queue not drained after {rounds} polls")

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The SQS event record Lambda builds from one received message."""
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": self.arn, "awsRegion": aws_support.REGION,
        }  # fmt: skip


@dataclass
class Deployment:
    """The stack's resources on moto and the three handlers reading them from the environment."""

    stack: aws_support.AwsStack
    monkeypatch: pytest.MonkeyPatch
    jobs: Pump = field(init=False)
    dead_letters: Pump = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = Pump(self.stack.queue_url, lambda_processor.handler, "imgpipe-processor")
        self.dead_letters = Pump(self.stack.dlq_url, lambda_dlq.handler, "imgpipe-dead-letters")

    def api(self, method: str, target: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        """One request through the API function; the Lambda proxy response."""
        event = to_v2_event(method, target, {"host": "api.example", **(headers or {})}, body,
                            "198.51.100.7")  # fmt: skip
        context: Any = LambdaContext("imgpipe-api", 512)  # duck-typed: what Powertools reads
        return lambda_api.handler(event, context)

    def json(self, method: str, target: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        response = self.api(method, target, payload, {"content-type": "application/json"})
        text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return response["statusCode"], json.loads(text) if text else None

    def upload(self, data: bytes, content_type: str = "image/jpeg") -> str:
        response = self.api("POST", "/images?filename=photo.jpg", data,
                            {"content-type": content_type})  # fmt: skip
        assert response["statusCode"] == 202, response
        return str(json.loads(response["body"])["id"])

    def record(self, image_id: str) -> dict[str, Any]:
        status, body = self.json("GET", f"/images/{image_id}")
        assert status == 200, body
        return dict(body)

    def configure(self, **variables: str) -> None:
        """Change the functions' environment; the next invocation builds them anew (a new
        deployment of the function configuration does the same)."""
        for name, value in variables.items():
            self.monkeypatch.setenv(name, value)
        _forget_apps()


def _forget_apps() -> None:
    lambda_api.adapter.cache_clear()
    lambda_processor.app.cache_clear()
    lambda_dlq.app.cache_clear()


def _wire_like_the_template(stack: aws_support.AwsStack) -> None:
    """The raw bucket's versioning and its S3 -> SQS notification, from template.yaml."""
    raw = load_template()["Resources"]["RawBucket"]["Properties"]
    s3, sqs = aws_support.client("s3"), aws_support.client("sqs")
    s3.put_bucket_versioning(Bucket=stack.raw_bucket,
                             VersioningConfiguration=raw["VersioningConfiguration"])  # fmt: skip
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    configurations = [
        {"QueueArn": queue_arn, "Events": [c["Event"]],
         "Filter": {"Key": {"FilterRules": c["Filter"]["S3Key"]["Rules"]}}}
        for c in raw["NotificationConfiguration"]["QueueConfigurations"]
    ]  # fmt: skip
    s3.put_bucket_notification_configuration(
        Bucket=stack.raw_bucket, NotificationConfiguration={"QueueConfigurations": configurations}
    )


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A fresh stack on moto, wired like the template, with the functions' environment set."""
    redrive = load_template()["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"]
    with aws_support.make_stack(max_receives=int(redrive["maxReceiveCount"]),
                                visibility_s=1) as stack:  # fmt: skip
        _wire_like_the_template(stack)
        for name, value in {
            **stack.environ, "IMGPIPE_TAGGER": "rekognition",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": aws_support.REGION, "AWS_DEFAULT_REGION": aws_support.REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "IMGPIPE_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        _forget_apps()
        try:
            yield Deployment(stack, monkeypatch)
        finally:
            _forget_apps()


def _emf(output: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format documents printed by the functions."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def _metric_total(documents: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    total = 0.0
    for doc in documents:
        if name in doc and all(doc.get(k) == v for k, v in dimensions.items()):
            value = doc[name]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_direct_upload_is_processed_with_renditions_and_rekognition_tags(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """POST /images stores raw/<id>; S3 notifies SQS; the processor renders and tags it."""
    image_id = deployment.upload(F.noisy_jpeg())
    assert deployment.record(image_id)["status"] == "pending"

    deployment.jobs.drain()

    record = deployment.record(image_id)
    assert record["status"] == "processed", record
    assert {(r["name"], r["format"]) for r in record["renditions"]} == {
        (name, fmt) for name in ("large", "medium", "thumb") for fmt in ("jpeg", "webp")
    }
    sources = {t["source"] for t in record["tags"]}
    assert {"local", "rekognition"} <= sources  # moto's fixed labels, through DetectLabels
    s3 = aws_support.client("s3")
    listed = s3.list_objects_v2(Bucket=deployment.stack.processed_bucket,
                                Prefix=f"processed/{image_id}/")  # fmt: skip
    assert len(listed.get("Contents", [])) == 6
    raw = s3.list_objects_v2(Bucket=deployment.stack.raw_bucket)
    assert [o["Key"] for o in raw.get("Contents", [])] == [f"raw/{image_id}"]  # no recursion
    metrics = _emf(capsys.readouterr().out)
    assert _metric_total(metrics, "ImagesProcessed") == 1
    assert _metric_total(metrics, "Bytes") == len(F.noisy_jpeg())


def test_rendition_is_a_302_to_a_presigned_url_that_is_not_logged(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """GET .../renditions/thumb.webp redirects to a presigned GET that serves the bytes; no
    log record of either function carries the signed URL."""
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.jobs.drain()

    response = deployment.api("GET", f"/images/{image_id}/renditions/thumb.webp")

    assert response["statusCode"] == 302
    location = httpx.Headers(response["headers"])["location"]
    assert location.startswith(deployment.stack.endpoint)
    assert "X-Amz-Signature=" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content[8:12] == b"WEBP"
    logged = [json.dumps(vars(record), default=str) for record in caplog.records]
    assert any('"image done"' in line and image_id in line for line in logged)
    assert not [line for line in logged if "X-Amz-Signature" in line or "Signature=" in line]


def test_presigned_post_upload_is_processed(deployment: Deployment) -> None:
    """POST /uploads grants a form; posting it to S3 starts processing like a direct upload."""
    data = F.noisy_png()
    status, grant = deployment.json("POST", "/uploads", {
        "filename": "big.png", "content_type": "image/png", "bytes": len(data)})  # fmt: skip
    assert status == 201, grant
    form = grant["upload"]
    assert form["url"].startswith(deployment.stack.endpoint)

    posted = httpx.post(form["url"], data=form["fields"],
                        files={"file": ("big.png", data, "image/png")})  # fmt: skip
    assert posted.status_code in (200, 201, 204), posted.text
    deployment.jobs.drain()

    record = deployment.record(grant["id"])
    assert record["status"] == "processed", record
    assert record["format"] == "png"
    assert record["sha256"] is not None


def test_a_bad_image_sent_to_s3_is_rejected_and_counted_by_code(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes S3 accepted but that are no image end ``rejected`` (acknowledged, no retry)."""
    data = F.truncated(F.noisy_jpeg())
    _, grant = deployment.json("POST", "/uploads", {
        "content_type": "image/jpeg", "bytes": len(data)})  # fmt: skip
    form = grant["upload"]
    httpx.post(form["url"], data=form["fields"], files={"file": ("x.jpg", data, "image/jpeg")})

    deployment.jobs.drain()

    record = deployment.record(grant["id"])
    assert record["status"] == "rejected"
    assert record["error"]["code"] in {"truncated", "corrupt"}
    assert deployment.jobs.failures == []  # a permanent error is not a failed message
    metrics = _emf(capsys.readouterr().out)
    assert _metric_total(metrics, "ImagesRejected", code=record["error"]["code"]) == 1


def test_a_duplicate_s3_event_leaves_one_record_and_one_set_of_renditions(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """At-least-once delivery: the same notification again changes nothing and counts nothing."""
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.jobs.drain()
    first = deployment.record(image_id)
    notification = next(d["body"] for d in deployment.jobs.deliveries
                        if image_id in d["body"])  # fmt: skip
    capsys.readouterr()

    sqs = aws_support.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=deployment.stack.queue_url, MessageBody=notification)
    deployment.jobs.drain()

    again = deployment.record(image_id)
    assert again == first  # same processed_at, renditions, tags
    _, listing = deployment.json("GET", "/images")
    assert [item["id"] for item in listing["items"]] == [image_id]
    s3 = aws_support.client("s3")
    objects = s3.list_objects_v2(Bucket=deployment.stack.processed_bucket).get("Contents", [])
    assert len(objects) == 6
    assert _metric_total(_emf(capsys.readouterr().out), "ImagesProcessed") == 0


def test_a_poison_message_goes_to_the_dead_letter_queue_after_5_receives(
    deployment: Deployment,
) -> None:
    """A message that always fails is delivered maxReceiveCount times, then dead-lettered;
    the dead-letter function drops what names no image."""
    sqs = aws_support.client("sqs")
    sqs.send_message(QueueUrl=deployment.stack.queue_url, MessageBody="this is not json")

    deployment.jobs.drain()

    poison = [d for d in deployment.jobs.deliveries if d["body"] == "this is not json"]
    assert len(poison) == 5
    assert [d["attributes"]["ApproximateReceiveCount"] for d in poison] == ["1", "2", "3", "4", "5"]
    dead = sqs.receive_message(QueueUrl=deployment.stack.dlq_url, WaitTimeSeconds=1,
                               VisibilityTimeout=0)["Messages"]  # fmt: skip
    assert [m["Body"] for m in dead] == ["this is not json"]

    deployment.dead_letters.drain()
    assert deployment.dead_letters.failures == []


def test_an_image_whose_job_keeps_failing_ends_failed_via_the_dead_letter_function(
    deployment: Deployment,
) -> None:
    """Processing that raises every time (here: renditions cannot be written) is retried 5
    times, dead-lettered, and the dead-letter function marks the image ``failed``."""
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=aws_support.unique("missing"))

    deployment.jobs.drain()

    assert len(deployment.jobs.failures) == 5
    assert deployment.record(image_id)["status"] == "processing"
    deployment.dead_letters.drain()
    record = deployment.record(image_id)
    assert record["status"] == "failed"
    assert "dead-letter" in record["error"]["message"]


def test_health_reports_the_queues_through_the_api_function(deployment: Deployment) -> None:
    """GET /health reads the jobs and dead-letter queue depths with the function's clients."""
    status, body = deployment.json("GET", "/health")
    assert status == 200
    assert set(body["queue"]) >= {"visible", "in_flight", "dead"}


def test_the_handlers_build_nothing_at_import() -> None:
    """Importing the handler modules, with no configuration at all, makes no client and loads
    no boto3: the app is built on the first invocation."""
    code = ("import sys, imgpipe.entrypoints.lambda_api, imgpipe.entrypoints.lambda_processor, "
            "imgpipe.entrypoints.lambda_dlq; print('boto3' in sys.modules)")  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IMGPIPE_", "AWS_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "False"


def _post_to_s3(deployment: Deployment, data: bytes, content_type: str) -> str:
    """A presigned upload: the bytes reach S3 with no header check by the API function."""
    _, grant = deployment.json("POST", "/uploads", {
        "content_type": content_type, "bytes": len(data)})  # fmt: skip
    form = grant["upload"]
    posted = httpx.post(form["url"], data=form["fields"],
                        files={"file": ("x", data, content_type)})  # fmt: skip
    assert posted.status_code in (200, 201, 204), posted.text
    return str(grant["id"])


def test_a_poison_file_in_a_batch_does_not_fail_the_images_after_it(
    deployment: Deployment,
) -> None:
    """The non-UTF-8-error AVIF first, good images after it, in one warm container: the poison
    ends rejected, every other image processed, and no message is reported failed."""
    poison = _post_to_s3(deployment, F.avif_poison(), "image/avif")
    good = [_post_to_s3(deployment, data, mime)
            for data, mime in ((F.noisy_jpeg(), "image/jpeg"), (F.noisy_png(), "image/png"),
                               (F.avif(), "image/avif"))]  # fmt: skip
    deployment.jobs.drain()

    record = deployment.record(poison)
    assert (record["status"], record["error"]["code"]) == ("rejected", "corrupt")
    assert {deployment.record(i)["status"] for i in good} == {"processed"}
    assert deployment.jobs.failures == []


def test_a_broken_engine_fails_the_rest_of_its_batch_untried_and_a_fresh_container_recovers(
    deployment: Deployment, engine: Engine
) -> None:
    """After the engine fails its self-check, every record of the batch is a batch item failure
    (none is marked failed or rejected); a fresh container then processes them all."""
    images = [deployment.upload(F.noisy_jpeg((64 + i, 48))) for i in range(3)]
    engine.break_()
    try:
        deployment.jobs.once()  # the three jobs (and the bucket's s3:TestEvent) in one batch
        jobs = {d["messageId"] for d in deployment.jobs.deliveries if "ObjectCreated" in d["body"]}
        assert len(jobs) == 3
        assert jobs <= set(deployment.jobs.failures)
        assert lambda_processor._Engine.broken
    finally:
        engine.repair()
        lambda_processor._Engine.broken = False  # the runtime's fresh container
    assert {deployment.record(i)["status"] for i in images} <= {"pending", "processing"}

    deployment.jobs.drain()
    assert {deployment.record(i)["status"] for i in images} == {"processed"}


def test_a_container_with_a_broken_engine_exits_before_touching_its_next_batch() -> None:
    """The invocation after a failed self-check ends the process (exit 170) without reading
    its event, so Lambda replaces the container and the batch returns to the queue whole."""
    code = ("from types import SimpleNamespace as NS\n"
            "from imgpipe.entrypoints import lambda_processor as p\n"
            "p._Engine.broken = True\n"
            "context = NS(function_name='f', memory_limit_in_mb=1024, aws_request_id='r',\n"
            "             invoked_function_arn='arn:aws:lambda:eu-west-1:1:function:f')\n"
            "p.handler({'Records': 'never read'}, context)\n"
            "print('still running')")  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IMGPIPE_", "AWS_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**environ, "POWERTOOLS_TRACE_DISABLED": "true"},
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == EX_ENGINE_BROKEN, done.stderr
    assert "still running" not in done.stdout
