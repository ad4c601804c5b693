"""The Lambda handlers end to end against moto, deployed from template.yaml with IAM enforced.

``aws_deploy.deploy`` makes each test a fresh stack on the IAM-enforcing moto server from the
template's own properties - buckets (the raw one versioned and notifying the jobs queue of
``s3:ObjectCreated:*`` under ``raw/``; moto delivers the notifications), queues with their
redrive, the table - and one principal per function whose policy is exactly its role's policy
in the template. Only the jobs queue's visibility timeout is shortened (1 s) so that retries
happen within the test.

The handlers are imported and called as Lambda calls them, each with its own function's
environment and role keys (``Deployment.invoke``): API Gateway HTTP API v2 events for the API
function; for the SQS-triggered ones, ``Pump`` plays the event source mapping with the
function's role - ReceiveMessage, one invocation per batch, DeleteMessage for every record not
listed in ``batchItemFailures``. Nothing of ours or boto3's is mocked, and a call the template
does not allow fails with AccessDenied.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import jsonschema
import pytest

import aws_deploy
import fixtures as F
from cfn import TEMPLATE, load_template
from conftest import Engine
from imgpipe.entrypoints import lambda_api, lambda_dlq, lambda_processor
from imgpipe.errors import EX_ENGINE_BROKEN
from imgpipe.etags import content_etag
from imgpipe.testing import LambdaContext, to_v2_event

pytestmark = pytest.mark.aws

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class Pump:
    """The SQS event source mapping of one queue and function, run by hand with the function's
    role (the mapping polls with it)."""

    deployment: Deployment
    queue: str  # logical id
    function: str  # logical id
    handler: Handler
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # every record handed over
    failures: list[str] = field(default_factory=list)  # message ids reported failed

    def __post_init__(self) -> None:
        self.sqs = self.deployment.stack.client("sqs", self.function)
        self.url = self.deployment.stack.ref(self.queue)
        self.arn = self.deployment.stack.attribute(self.queue, "Arn")

    def once(self, batch_size: int = 10, remaining_ms: tuple[int, ...] = (60_000,)) -> int:
        """One poll and one invocation (whose clock answers ``remaining_ms``); the number of
        records delivered."""
        found = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not found:
            return 0
        records = [self._record(m) for m in found]
        self.deliveries.extend(records)
        result = self.deployment.invoke(self.function, self.handler, {"Records": records},
                                        remaining_ms)  # fmt: skip
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        self.failures.extend(failed)
        for message in found:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return len(records)

    def drain(self, rounds: int = 40) -> None:
        """Poll until the queue holds nothing, visible or in flight."""
        for _ in range(rounds):
            self.once()
            if not self.deployment.depth(self.queue):
                return
        pytest.fail(f"{self.function}: queue not drained after {rounds} polls")

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The SQS event record Lambda builds from one received message."""
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": self.arn, "awsRegion": aws_deploy.REGION,
        }  # fmt: skip


@dataclass
class Deployment:
    """A stack deployed on moto and the three handlers, each run as its function."""

    stack: aws_deploy.Deployed
    monkeypatch: pytest.MonkeyPatch
    overrides: dict[str, str] = field(default_factory=dict)
    jobs: Pump = field(init=False)
    dead_letters: Pump = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = Pump(self, "JobsQueue", "ProcessorFunction", lambda_processor.handler)
        self.dead_letters = Pump(self, "DeadLetterQueue", "DeadLetterFunction",
                                 lambda_dlq.handler)  # fmt: skip

    def invoke(self, function: str, handler: Handler, event: dict[str, Any],
               remaining_ms: tuple[int, ...] = (60_000,)) -> dict[str, Any]:  # fmt: skip
        """One invocation of ``function`` with exactly its environment, as Lambda makes it."""
        for name in [n for n in os.environ if n.startswith(("IMGPIPE_", "AWS_", "POWERTOOLS_"))]:
            self.monkeypatch.delenv(name)
        for name, value in {**self.stack.environment(function), **self.overrides}.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        memory = int(self.stack.property(function, "MemorySize"))
        context: Any = LambdaContext(  # duck-typed
            self.stack.ref(function),
            memory,
            region=aws_deploy.REGION,
            account=aws_deploy.ACCOUNT,
            remaining_ms=remaining_ms,
        )
        return handler(event, context)

    def depth(self, queue: str) -> int:
        """Messages in ``queue``, visible or in flight (read as the admin)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.stack.client("sqs").get_queue_attributes(QueueUrl=self.stack.ref(queue),
                                                              AttributeNames=names)  # fmt: skip
        return sum(int(v) for v in found["Attributes"].values())

    def api(self, method: str, target: str, body: bytes = b"",
            headers: dict[str, str] | None = None,
            claims: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """One request through the API function (``claims``: what the JWT authorizer
        verified); the Lambda proxy response."""
        event = to_v2_event(method, target, {"host": "api.example", **(headers or {})}, body,
                            "198.51.100.7", claims)  # fmt: skip
        return self.invoke("ApiFunction", lambda_api.handler, event)

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
        self.overrides.update(variables)
        _forget_apps()

    def s3(self) -> Any:
        return self.stack.client("s3")


def _forget_apps() -> None:
    lambda_api.adapter.cache_clear()
    lambda_processor.app.cache_clear()
    lambda_dlq.app.cache_clear()


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A fresh stack deployed from the template on the IAM-enforcing moto server."""
    with aws_deploy.deploy(visibility_s=1) as stack:
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
    s3 = deployment.s3()
    listed = s3.list_objects_v2(Bucket=deployment.stack.ref("ProcessedBucket"),
                                Prefix=f"processed/{image_id}/")  # fmt: skip
    assert len(listed.get("Contents", [])) == 6
    raw = s3.list_objects_v2(Bucket=deployment.stack.ref("RawBucket"))
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
    assert location.startswith(deployment.stack.account.endpoint)
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
    assert form["url"].startswith(deployment.stack.account.endpoint)

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

    sqs = deployment.stack.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=deployment.stack.ref("JobsQueue"), MessageBody=notification)
    deployment.jobs.drain()

    again = deployment.record(image_id)
    assert again == first  # same processed_at, renditions, tags
    _, listing = deployment.json("GET", "/images")
    assert [item["id"] for item in listing["items"]] == [image_id]
    s3 = deployment.s3()
    objects = s3.list_objects_v2(Bucket=deployment.stack.ref("ProcessedBucket")).get("Contents", [])
    assert len(objects) == 6
    assert _metric_total(_emf(capsys.readouterr().out), "ImagesProcessed") == 0


def test_a_poison_message_goes_to_the_dead_letter_queue_after_5_receives(
    deployment: Deployment,
) -> None:
    """A message that always fails is delivered maxReceiveCount times, then dead-lettered;
    the dead-letter function drops what names no image."""
    sqs = deployment.stack.client("sqs")
    sqs.send_message(QueueUrl=deployment.stack.ref("JobsQueue"), MessageBody="this is not json")

    deployment.jobs.drain()

    poison = [d for d in deployment.jobs.deliveries if d["body"] == "this is not json"]
    assert len(poison) == 5
    assert [d["attributes"]["ApproximateReceiveCount"] for d in poison] == ["1", "2", "3", "4", "5"]
    dead = sqs.receive_message(QueueUrl=deployment.stack.ref("DeadLetterQueue"), WaitTimeSeconds=1,
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
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=f"missing-{uuid.uuid4().hex[:12]}")

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


# -- IAM as the template grants it ------------------------------------------------------------


def test_iam_is_enforced_each_function_has_exactly_its_roles_rights(
    deployment: Deployment,
) -> None:
    """The checks are live: as the API function, reading the dead-letter queue or writing a
    rendition is denied; as the processor, writing an original is denied. (Every other test
    here passing proves the template grants what the code needs.)"""
    api_sqs = deployment.stack.client("sqs", "ApiFunction")
    with pytest.raises(botocore.exceptions.ClientError, match=r"403|AccessDenied"):
        api_sqs.receive_message(QueueUrl=deployment.stack.ref("DeadLetterQueue"))
    api_s3 = deployment.stack.client("s3", "ApiFunction")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        api_s3.put_object(Bucket=deployment.stack.ref("ProcessedBucket"),
                          Key="processed/x/thumb.webp", Body=b"x")  # fmt: skip
    processor_s3 = deployment.stack.client("s3", "ProcessorFunction")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        processor_s3.put_object(Bucket=deployment.stack.ref("RawBucket"), Key="raw/x", Body=b"x")
    anonymous = deployment.stack.account.client(
        "dynamodb", aws_deploy.Keys("AKIAUNKNOWN0000000000", "nope")
    )
    with pytest.raises(botocore.exceptions.ClientError):
        anonymous.get_item(TableName=deployment.stack.ref("Table"), Key={"pk": {"S": "x"}})


def test_a_near_duplicate_is_marked_by_the_processor_and_found_through_the_api(
    deployment: Deployment,
) -> None:
    """Under each function's own role: the processor finds the older image through the pHash
    band items and records ``near_duplicate_of``; the API's similar route finds the pair."""
    first = deployment.upload(F.scene(1))
    deployment.jobs.drain()
    copy = deployment.upload(F.scene(1, (300, 225), quality=60))
    other = deployment.upload(F.scene(2))
    deployment.jobs.drain()

    near = deployment.record(copy)["near_duplicate_of"]
    assert near is not None
    assert near["id"] == first
    assert deployment.record(other)["near_duplicate_of"] is None
    status, body = deployment.json("GET", f"/images/{first}/similar")
    assert status == 200, body
    assert [(i["image"]["id"], i["distance"]) for i in body["items"]] == [(copy, near["distance"])]


def test_a_users_focal_point_is_set_through_the_api_and_kept_by_the_processor(
    deployment: Deployment,
) -> None:
    """Under the functions' roles: the processor stores the attention point; PUT focal-point
    (API role: record write + job) has the image processed again around the user's point."""
    image_id = deployment.upload(F.salient(), "image/png")
    deployment.jobs.drain()
    found = deployment.record(image_id)["metadata"]["focal_point"]
    assert found["source"] == "attention"
    status, body = deployment.json("PUT", f"/images/{image_id}/focal-point", {"x": 20, "y": 880})
    assert status == 202, body
    deployment.jobs.drain()
    record = deployment.record(image_id)
    assert record["status"] == "processed"
    assert record["metadata"]["focal_point"] == {"x": 20, "y": 880, "source": "user"}


def test_rekognition_faces_place_the_focal_point_only_where_the_template_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faces=rekognition: the processor's role may call DetectFaces, and the face (the taught
    moto's one, bottom left of 1600 x 900) is the focal point, away from the disc attention
    would choose. A processor told to look for faces by a stack deployed without them is
    refused by IAM: the job fails and stays queued for its retry."""
    with aws_deploy.deploy(visibility_s=1, Faces="rekognition") as stack:
        _forget_apps()
        try:
            deployment = Deployment(stack, monkeypatch)
            image_id = deployment.upload(F.salient(), "image/png")
            deployment.jobs.drain()
            metadata = deployment.record(image_id)["metadata"]
            assert metadata["focal_point"] == {"x": 240, "y": 585, "source": "faces"}
            assert [f["confidence"] for f in metadata["faces"]] == [0.9999]
        finally:
            _forget_apps()
    with aws_deploy.deploy(visibility_s=1) as stack:
        _forget_apps()
        try:
            deployment = Deployment(stack, monkeypatch)
            deployment.configure(IMGPIPE_FACES="rekognition")
            image_id = deployment.upload(F.salient(), "image/png")
            assert deployment.jobs.once() >= 1  # the image's job (S3's test event may join it)
            assert len(deployment.jobs.failures) == 1
            assert deployment.record(image_id)["status"] == "processing"
        finally:
            _forget_apps()


def test_terminal_states_reach_the_event_bus_under_each_functions_role(
    deployment: Deployment,
) -> None:
    """processed (processor), failed (dead-letter function) and deleted (API) are put on the
    stack's bus with the roles' own rights; a rule on it (the README's example) delivers them,
    each matching the published schema."""
    events, sqs = deployment.stack.client("events"), deployment.stack.client("sqs")
    bus = deployment.stack.ref("EventBus")
    inbox = sqs.create_queue(QueueName=f"{bus}-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    events.put_rule(Name="all-image-events", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["imgpipe"]}))  # fmt: skip
    events.put_targets(Rule="all-image-events", EventBusName=bus,
                       Targets=[{"Id": "inbox", "Arn": inbox_arn}])  # fmt: skip

    good = deployment.upload(F.noisy_jpeg())
    deployment.jobs.drain()
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=f"missing-{uuid.uuid4().hex[:12]}")
    doomed = deployment.upload(F.jpeg())
    deployment.jobs.drain()  # five failures: dead-lettered
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=deployment.stack.ref("ProcessedBucket"))
    deployment.dead_letters.drain()
    status, _ = deployment.json("DELETE", f"/images/{good}")
    assert status == 204

    received = []
    for _ in range(10):
        batch = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        received += [json.loads(m["Body"]) for m in batch]
        if len(received) >= 3 or not batch:
            break
    seen = sorted((e["detail-type"], e["detail"]["subject"]) for e in received)
    assert seen == sorted([("image.processed", good), ("image.failed", doomed),
                           ("image.deleted", good)])  # fmt: skip
    schema = json.loads((files("imgpipe") / "schemas" / "image-event.v1.json").read_text())
    for entry in received:
        assert entry["source"] == "imgpipe"
        jsonschema.Draft202012Validator(schema).validate(entry["detail"])


def test_reprocess_works_while_the_dead_letter_queue_holds_the_images_old_job(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image whose job died sits in the dead-letter queue; reprocess (as the API role, which
    has no right on that queue) answers 202, the new attempt is processed, and the old dead
    letter, handled afterwards, leaves the image processed."""
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=f"missing-{uuid.uuid4().hex[:12]}")
    deployment.jobs.drain()  # five failures: the job is dead-lettered
    assert deployment.depth("DeadLetterQueue") == 1
    deployment.configure(IMGPIPE_PROCESSED_BUCKET=deployment.stack.ref("ProcessedBucket"))

    status, body = deployment.json("POST", f"/images/{image_id}/reprocess")
    assert status == 202, body
    deployment.jobs.drain()
    assert deployment.record(image_id)["status"] == "processed"
    capsys.readouterr()

    deployment.dead_letters.drain()
    assert deployment.record(image_id)["status"] == "processed"
    assert deployment.dead_letters.failures == []
    metrics = _emf(capsys.readouterr().out)
    assert _metric_total(metrics, "DeadLetters") == 1
    assert _metric_total(metrics, "ImagesFailed") == 0


def test_the_alarmed_metrics_are_the_ones_the_functions_emit(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each alarm on a metric of ours names a metric the functions print, with exactly the
    dimensions they print (service and this stack's name), in the namespace they use."""
    sqs = deployment.stack.client("sqs")
    sqs.send_message(QueueUrl=deployment.stack.ref("DeadLetterQueue"), MessageBody="{}")
    deployment.dead_letters.drain()
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.jobs.drain()
    assert deployment.record(image_id)["status"] == "processed"
    emitted = set()
    for document in _emf(capsys.readouterr().out):
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                named = tuple(sorted((d, document[d]) for d in dimensions))
                for metric in directive["Metrics"]:
                    emitted.add((directive["Namespace"], metric["Name"], named))

    stack = deployment.stack.stack
    ours = [stack.evaluate(r["Properties"]) for r in stack.template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and not str(r["Properties"].get("Namespace", "AWS/")).startswith("AWS/")]  # fmt: skip
    assert ours, "no alarm on the functions' own metrics"
    for alarm in ours:
        named = tuple(sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]))
        assert (alarm["Namespace"], alarm["MetricName"], named) in emitted, alarm["MetricName"]


def test_records_that_would_run_into_the_timeout_are_returned_untried(
    deployment: Deployment,
) -> None:
    """With time for one image left, the processor finishes the first record and reports the
    others as batch item failures without starting them; they are processed next time."""
    deployment.jobs.drain()  # the bucket's s3:TestEvent, out of the way
    images = [deployment.upload(F.noisy_jpeg((64 + i, 48))) for i in range(3)]
    reserve = lambda_processor.RESERVE_MS
    assert deployment.jobs.once(remaining_ms=(reserve + 5_000, reserve - 1)) == 3
    statuses = sorted(deployment.record(i)["status"] for i in images)
    assert statuses == ["pending", "pending", "processed"]
    assert len(deployment.jobs.failures) == 2

    deployment.jobs.drain()
    assert {deployment.record(i)["status"] for i in images} == {"processed"}


def test_the_dashboard_signs_in_at_the_stacks_user_pool_and_records_the_uploader(
    deployment: Deployment,
) -> None:
    """With the default AuthMode COGNITO, the page's config names the user pool's issuer, the
    dashboard client and the hosted UI's endpoints; an upload through the authorizer records
    the token's sub as uploaded_by."""
    response = deployment.api("GET", "/dashboard/config.json")
    config = json.loads(base64.b64decode(response["body"]) if response.get("isBase64Encoded")
                        else response["body"])  # fmt: skip
    pool = deployment.stack.ref("UserPool")
    domain = deployment.stack.ref("HostedUiDomain")
    assert config["auth"] == "oidc"
    assert (
        config["oidc"]["issuer"] == f"https://cognito-idp.{aws_deploy.REGION}.amazonaws.com/{pool}"
    )
    assert config["oidc"]["client_id"] == deployment.stack.ref("DashboardClient")
    hosted = f"https://{domain}.auth.{aws_deploy.REGION}.amazoncognito.com"
    assert config["oidc"]["authorization_endpoint"] == f"{hosted}/oauth2/authorize"
    assert config["oidc"]["token_endpoint"] == f"{hosted}/oauth2/token"
    csp = httpx.Headers(response["headers"])["content-security-policy"]
    assert f"connect-src 'self' https: {hosted}" in csp

    jpeg = {"content-type": "image/jpeg"}
    upload = deployment.api("POST", "/images", F.noisy_jpeg(), jpeg, claims={"sub": "user-0001"})
    assert upload["statusCode"] == 202
    image_id = json.loads(upload["body"])["id"]
    assert deployment.record(image_id)["uploaded_by"] == "user-0001"


def test_rendition_urls_point_at_the_cdn_and_a_delete_invalidates_them(
    deployment: Deployment,
) -> None:
    """Records list each rendition as https://<distribution>/processed/<id>/<file>?v=<etag>
    (the key OAC serves from the bucket, versioned by content); deleting the image asks
    CloudFront, as the API role, to drop /processed/<id>/*."""
    image_id = deployment.upload(F.noisy_jpeg())
    deployment.jobs.drain()
    record = deployment.record(image_id)
    domain = deployment.stack.attribute("Cdn", "DomainName")
    s3 = deployment.s3()
    for rendition in record["renditions"]:
        url = httpx.URL(rendition["url"])
        assert (url.scheme, url.host) == ("https", domain)
        key = url.path.lstrip("/")
        assert key.startswith(f"processed/{image_id}/")
        stored = s3.get_object(Bucket=deployment.stack.ref("ProcessedBucket"), Key=key)
        assert url.params["v"] == content_etag(stored["Body"].read()).strip('"')  # its bytes

    status, _ = deployment.json("DELETE", f"/images/{image_id}")
    assert status == 204
    cloudfront = deployment.stack.client("cloudfront")
    listed = cloudfront.list_invalidations(DistributionId=deployment.stack.ref("Cdn"))
    ids = [i["Id"] for i in listed["InvalidationList"].get("Items", [])]
    assert len(ids) == 1
    batch = cloudfront.get_invalidation(DistributionId=deployment.stack.ref("Cdn"), Id=ids[0])
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == [
        f"/processed/{image_id}/*"]  # fmt: skip


# -- each function from its own package -----------------------------------------------------

# Run in a fresh interpreter that sees only the stdlib and ``paths`` - Lambda's /var/task, then
# the layers' /opt/python - as the Lambda runtime does: no site-packages, no .pth files.
_RUNNER = """
import importlib, json, sys
paths, handler, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path[:0] = paths
call = json.load(sys.stdin)

class Context:
    function_name = call["function_name"]
    memory_limit_in_mb = call["memory"]
    invoked_function_arn = call["arn"]
    aws_request_id = "packaged-invocation"
    def get_remaining_time_in_millis(self):
        return call["remaining_ms"]

module, name = handler.rsplit(".", 1)
response = getattr(importlib.import_module(module), name)(call["event"], Context())
with open(out, "w") as f:
    json.dump({"response": response, "modules": sorted(sys.modules)}, f)
"""
IMAGING_MODULES = {"pyvips", "pillow_heif"}


def _handler(function: str) -> str:
    return str(load_template()["Resources"][function]["Properties"]["Handler"])


@dataclass
class Packaged:
    """A handler run from an installed package (``paths``), one process per invocation."""

    paths: tuple[Path, ...]
    handler: str
    modules: set[str] = field(default_factory=set)  # everything any invocation imported

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        call = {"event": event, "function_name": context.function_name,
                "memory": context.memory_limit_in_mb, "arn": context.invoked_function_arn,
                "remaining_ms": context.get_remaining_time_in_millis()}  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "response.json"
            paths = json.dumps([str(p) for p in self.paths])
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _RUNNER, paths, self.handler, str(out)],
                input=json.dumps(call), env=dict(os.environ), capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-4000:]
            result = json.loads(out.read_text())
        self.modules.update(m.split(".", 1)[0] for m in result["modules"])
        return dict(result["response"])


def _install(requirements: Path, target: Path) -> Path:
    """``requirements`` alone (--no-deps: a package it forgets is missing) into ``target``."""
    uv = TEMPLATE.parent / ".venv-tools" / "uv" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("uv is installed by make venv into .venv-tools/uv")
    subprocess.run([str(uv), "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
                    "--target", str(target), "-r", str(requirements)],
                   check=True, timeout=600)  # fmt: skip
    return target


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, ...]]:
    """Each function's path: its CodeUri (our code) with its requirements installed beside it,
    then each of its layers' requirements - what sam build makes, for this machine's
    interpreter (sam build itself makes arm64 packages; test_template checks them)."""
    template = load_template()
    root = tmp_path_factory.mktemp("packages")
    code = TEMPLATE.parent / template["Globals"]["Function"]["CodeUri"]
    function_site = _install(code / "requirements.txt", root / "function")
    layer_uri = template["Resources"]["ImagingLayer"]["Properties"]["ContentUri"]
    layer_site = _install(TEMPLATE.parent / layer_uri / "requirements.txt",
                          root / "imaging" / "python")  # fmt: skip
    return {
        "ApiFunction": (code, function_site),
        "DeadLetterFunction": (code, function_site),
        "ProcessorFunction": (code, function_site, layer_site),
    }


def test_each_function_runs_from_its_own_package_and_the_api_has_no_imaging_engine(
    deployment: Deployment, packages: dict[str, tuple[Path, ...]]
) -> None:
    """The API function, with only src/requirements.txt, takes an upload (header checks
    included), answers reads and health, and refuses a corrupt file - never loading libvips
    or pillow-heif; the processor, with the imaging layer, renders the upload."""
    api = Packaged(packages["ApiFunction"], _handler("ApiFunction"))
    deployment.jobs.handler = Packaged(packages["ProcessorFunction"],
                                       _handler("ProcessorFunction"))  # fmt: skip
    assert not [p for p in packages["ApiFunction"][1].iterdir()
                if p.name.split(".")[0].split("-")[0] in IMAGING_MODULES]  # fmt: skip

    def call(method: str, target: str, body: bytes = b"", kind: str = "image/jpeg") -> Any:
        event = to_v2_event(method, target, {"host": "api.example", "content-type": kind}, body,
                            "198.51.100.7", None)  # fmt: skip
        return deployment.invoke("ApiFunction", api, event)

    uploaded = call("POST", "/images?filename=photo.jpg", F.noisy_jpeg())
    assert uploaded["statusCode"] == 202, uploaded
    image_id = json.loads(uploaded["body"])["id"]
    broken_header = b"\xff\xd8\xff\xc0\x00\x11" + b"\xff" * 64 + b"\xff\xd9"  # SOF0 of 255 bits
    refused = call("POST", "/images", broken_header)
    assert refused["statusCode"] == 422, refused
    assert json.loads(refused["body"])["error"]["code"] == "corrupt"
    deployment.jobs.drain()

    assert call("GET", "/health")["statusCode"] == 200
    record = json.loads(call("GET", f"/images/{image_id}")["body"])
    assert record["status"] == "processed"
    assert {r["format"] for r in record["renditions"]} >= {"jpeg", "webp"}
    assert json.loads(call("GET", "/images")["body"])["items"][0]["id"] == image_id
    assert call("DELETE", f"/images/{image_id}")["statusCode"] == 204
    assert not IMAGING_MODULES & api.modules
    assert "pyvips" in deployment.jobs.handler.modules
