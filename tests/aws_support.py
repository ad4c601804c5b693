"""A moto server on 127.0.0.1 for every AWS test, and helpers to give each test its own resources.

The server is moto's ``ThreadedMotoServer`` - real HTTP on a free loopback port, started once
per test process on first use and stopped when the process exits. Clients reach it through
``endpoint_url`` with dummy credentials, so nothing here can sign a request that AWS would
accept, or send one anywhere but 127.0.0.1.

Plain module, no pytest plugin: ``import aws_support`` (``tests/`` is on ``sys.path``) and call
the helpers, or re-export the fixtures at the bottom from a ``conftest.py``. Every resource gets
a unique name, so tests never see each other's buckets, tables or queues.
"""

from __future__ import annotations

import atexit
import http.server
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

import moto_iam_server
from cfn import Stack, create_table_arguments, load_template
from imgpipe.adapters.aws.dynamodb_metadata_store import DynamoDbMetadataStore
from imgpipe.adapters.aws.s3_blob_store import S3BlobStore
from imgpipe.adapters.aws.sqs_queue import SqsQueue

__all__ = [
    "REGION",
    "AwsStack",
    "FaultInjector",
    "aws_stack",
    "backend_params",
    "client",
    "dynamodb_store",
    "endpoint",
    "make_buckets",
    "make_queues",
    "make_stack",
    "make_table",
    "moto_endpoint",
    "s3_blob_store",
    "session",
    "sqs_queue",
    "unique",
]

REGION = "us-east-1"
_LOOPBACK = "127.0.0.1"
_lock = threading.Lock()
_server: ThreadedMotoServer | None = None
_endpoint: str | None = None
_session: boto3.session.Session | None = None


def endpoint() -> str:
    """The moto server's URL, starting the server on first use (stopped at process exit)."""
    global _server, _endpoint  # noqa: PLW0603 - one server per process, made on demand
    with _lock:
        if _endpoint is None:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
            moto_iam_server.teach_moto()  # DetectFaces
            _server = ThreadedMotoServer(ip_address=_LOOPBACK, port=0, verbose=False)
            _server.start()
            host, port = _server.get_host_and_port()
            _endpoint = f"http://{host}:{port}"
            atexit.register(_server.stop)
        return _endpoint


def session() -> boto3.session.Session:
    """The process's boto3 session, with dummy credentials: it never reads ~/.aws or instance
    metadata. Shared, because a session caches the service models that make a new client
    slow; like any boto3 session, make clients from one thread at a time."""
    global _session  # noqa: PLW0603 - one per process, made on demand
    with _lock:
        if _session is None:
            _session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
            )
        return _session


def client(service: str, url: str | None = None, **config: Any) -> Any:
    """A client of ``service`` on the moto server (or ``url``), standard retries unless told."""
    settings = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
    if service == "s3":  # as build_aws does: boto3 would presign with SigV2 in us-east-1
        settings = settings.merge(Config(signature_version="s3v4"))
    if config:
        settings = settings.merge(Config(**config))
    boto: Any = session()  # the service name is a parameter: no typed overload to pick
    return boto.client(service, endpoint_url=url or endpoint(), config=settings)


def unique(prefix: str) -> str:
    """A fresh resource name (lower case: bucket names must be)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


# -- resources, each as a context manager that removes what it made ---------------------------


@contextmanager
def make_buckets() -> Iterator[tuple[str, str]]:
    """A fresh (raw, processed) bucket pair, emptied and deleted afterwards."""
    s3 = client("s3")
    names = (unique("raw"), unique("processed"))
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        yield names
    finally:
        for name in names:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                found = page.get("Versions", []) + page.get("DeleteMarkers", [])
                if found:
                    objects = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in found]
                    s3.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
            s3.delete_bucket(Bucket=name)


@contextmanager
def make_table() -> Iterator[str]:
    """A fresh table laid out as template.yaml's ``Table``, deleted afterwards."""
    dynamodb = client("dynamodb")
    name = unique("images")
    dynamodb.create_table(**create_table_arguments(Stack(load_template()), "Table", name))
    try:
        yield name
    finally:
        dynamodb.delete_table(TableName=name)


@contextmanager
def make_queues(
    max_receives: int = 5, visibility_s: int = 30, extra: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """A fresh (jobs, dead-letter) queue pair with the jobs queue's ``RedrivePolicy`` set."""
    sqs = client("sqs")
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
    attributes = {"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": str(visibility_s),
                  **(extra or {})}  # fmt: skip
    queue_url = sqs.create_queue(QueueName=unique("jobs"), Attributes=attributes)["QueueUrl"]
    try:
        yield queue_url, dlq_url
    finally:
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=dlq_url)


# -- adapters on fresh resources (the contract suites' "aws" factories) -----------------------


def s3_blob_store() -> S3BlobStore:
    """A store on a fresh bucket pair (left to the server: a ``BlobStore`` factory has no
    teardown, and moto forgets everything when the process ends)."""
    s3 = client("s3")
    raw, processed = unique("raw"), unique("processed")
    for name in (raw, processed):
        s3.create_bucket(Bucket=name)
    return S3BlobStore(s3, raw, processed)


@contextmanager
def dynamodb_store() -> Iterator[DynamoDbMetadataStore]:
    with make_table() as table:
        yield DynamoDbMetadataStore(client("dynamodb"), table)


@contextmanager
def sqs_queue(visibility_s: int = 30, max_receives: int = 5) -> Iterator[SqsQueue]:
    with make_queues(max_receives, visibility_s) as (queue_url, dlq_url):
        yield SqsQueue(client("sqs"), queue_url, dlq_url, max_receives)


def backend_params(names: Iterable[str]) -> list[Any]:
    """Fixture params for a contract suite's backends, the moto-backed one marked ``aws``."""
    return [pytest.param(n, marks=pytest.mark.aws) if n == "aws" else n for n in names]


# -- a whole stack, as build_aws sees it --------------------------------------------------------


@dataclass
class AwsStack:
    """Fresh buckets, table and queues, and the environment that points ``build_aws`` at them."""

    raw_bucket: str
    processed_bucket: str
    table: str
    queue_url: str
    dlq_url: str
    endpoint: str
    environ: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.environ = {
            "IMGPIPE_RAW_BUCKET": self.raw_bucket,
            "IMGPIPE_PROCESSED_BUCKET": self.processed_bucket,
            "IMGPIPE_TABLE": self.table,
            "IMGPIPE_QUEUE_URL": self.queue_url,
            "IMGPIPE_DLQ_URL": self.dlq_url,
            "AWS_ENDPOINT_URL": self.endpoint,
            **self.environ,
        }


@contextmanager
def make_stack(max_receives: int = 5, visibility_s: int = 30) -> Iterator[AwsStack]:
    """Every resource ``build_aws`` needs, removed afterwards."""
    with (
        make_buckets() as (raw, processed),
        make_table() as table,
        make_queues(max_receives, visibility_s) as (queue_url, dlq_url),
    ):
        yield AwsStack(raw, processed, table, queue_url, dlq_url, endpoint())


# -- fault injection: a loopback proxy that answers with scripted errors ------------------------


class FaultInjector:
    """An HTTP endpoint on 127.0.0.1 in front of the moto server for JSON-protocol services
    (DynamoDB, SQS, Rekognition): it answers the next requests with the queued errors, then
    forwards the rest to moto unchanged. ``calls`` counts every request it saw.

    This is how a test meets throttling or an outage over real HTTP, without mocking boto3.
    """

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream or endpoint()
        self.calls = 0
        self._faults: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer((_LOOPBACK, 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def fail(self, code: str, status: int = 400, times: int = 1) -> None:
        """Answer the next ``times`` requests with error ``code`` and HTTP ``status``."""
        with self._lock:
            self._faults.extend([(status, code)] * times)

    def __enter__(self) -> FaultInjector:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next_fault(self) -> tuple[int, str] | None:
        with self._lock:
            self.calls += 1
            return self._faults.pop(0) if self._faults else None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        injector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = injector._next_fault()
                if fault is not None:
                    status, code = fault
                    payload = json.dumps({"__type": code, "message": f"injected {code}"})
                    self._reply(status, {"Content-Type": "application/x-amz-json-1.1",
                                         "x-amzn-ErrorType": code}, payload.encode())  # fmt: skip
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(
                    injector.upstream + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        self._reply(answer.status, dict(answer.headers), answer.read())
                except urllib.error.HTTPError as error:
                    self._reply(error.code, dict(error.headers), error.read())

            def _reply(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in {"content-length", "transfer-encoding", "connection",
                                            "server", "date"}:  # fmt: skip
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: one line per request would drown the test output."""

        return Handler


# -- fixtures, for a conftest.py to re-export ---------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    """The URL of the process's moto server."""
    return endpoint()


@pytest.fixture
def aws_stack() -> Iterator[AwsStack]:
    """A fresh set of the stack's resources for one test."""
    with make_stack() as stack:
        yield stack
