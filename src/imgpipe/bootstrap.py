"""The composition root: the only place that chooses adapters.

``build_local(data_dir)`` wires the embedded default - filesystem blobs, SQLite records, a SQLite
queue with SQS semantics, the local tagger and HMAC-signed upload forms - under one folder::

    DATA_DIR/
      blobs/raw/<id>                     the originals (private; never served)
      blobs/processed/<id>/<name>.<ext>  renditions
      imgpipe.db                         image records
      queue.db                           jobs and dead letters
      upload-secret                      HMAC key for upload forms (created once, mode 0600)

``build_aws()`` wires the deployment on AWS - two S3 buckets, a DynamoDB table, the SQS jobs
queue and its dead-letter queue, Rekognition - from the ``IMGPIPE_*`` environment variables the
template gives each Lambda. boto3 is the ``aws`` extra: it and the AWS adapters are imported
only when ``build_aws`` runs, and it creates every client it uses (none exists at import).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imgpipe.core.tags import CompositeTagger, LocalTagger, NullTagger
from imgpipe.errors import ConfigError
from imgpipe.ports import FaceFinder, Tagger
from imgpipe.service import ImageService
from imgpipe.settings import Settings

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

    from imgpipe.adapters.aws.dynamodb_metadata_store import DynamoDbMetadataStore
    from imgpipe.adapters.aws.s3_blob_store import S3BlobStore
    from imgpipe.adapters.aws.sqs_queue import SqsQueue
    from imgpipe.adapters.local.fs_blob_store import FsBlobStore
    from imgpipe.adapters.local.sqlite_metadata_store import SqliteMetadataStore
    from imgpipe.adapters.local.sqlite_queue import SqliteQueue
    from imgpipe.adapters.local.upload_signer import HmacUploadSigner

__all__ = [
    "AWS_ENV",
    "CDN_ENV",
    "LOCAL_UPLOAD_PATH",
    "AwsApp",
    "LocalApp",
    "build_aws",
    "build_local",
]

LOCAL_UPLOAD_PATH = "/_uploads"


@dataclass
class LocalApp:
    """The service and the concrete adapters behind it (the server needs a few of them)."""

    service: ImageService
    blobs: FsBlobStore
    records: SqliteMetadataStore
    queue: SqliteQueue
    signer: HmacUploadSigner
    webhooks: SqliteQueue | None = None  # the deliveries, when [webhooks] names URLs

    def close(self) -> None:
        self.records.close()
        self.queue.close()
        if self.webhooks is not None:
            self.webhooks.close()


def _secret(path: Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return path.read_bytes()


def build_local(data_dir: Path, settings: Settings, base_url: str = "") -> LocalApp:
    """Wire the embedded default under ``data_dir`` (created if needed)."""
    # Here, not at import: the Lambda functions import this module and need none of them.
    from imgpipe.adapters.local.fs_blob_store import FsBlobStore  # noqa: PLC0415
    from imgpipe.adapters.local.sqlite_metadata_store import SqliteMetadataStore  # noqa: PLC0415
    from imgpipe.adapters.local.sqlite_queue import SqliteQueue  # noqa: PLC0415
    from imgpipe.adapters.local.upload_signer import HmacUploadSigner  # noqa: PLC0415

    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FsBlobStore(data_dir / "blobs")
    records = SqliteMetadataStore(data_dir / "imgpipe.db")
    queue = SqliteQueue(data_dir / "queue.db", visibility_s=settings.service.visibility_s,
                        max_receives=settings.service.max_receives)  # fmt: skip
    try:
        secret = _secret(data_dir / "upload-secret")
    except FileExistsError:  # another process created it a moment ago
        secret = (data_dir / "upload-secret").read_bytes()
    signer = HmacUploadSigner(secret, f"{base_url}{LOCAL_UPLOAD_PATH}")
    hooks = settings.webhooks
    webhooks = publisher = None
    if hooks.urls:  # one queue in the same file; its receives are the delivery attempts
        from imgpipe.adapters.local.webhooks import WebhookPublisher  # noqa: PLC0415 - httpx

        webhooks = SqliteQueue(data_dir / "queue.db", name="webhooks",
                               visibility_s=hooks.timeout_s * 3,
                               max_receives=hooks.max_attempts)  # fmt: skip
        publisher = WebhookPublisher(webhooks, hooks.urls)
    service = ImageService(blobs, records, queue, LocalTagger(), signer, settings,
                           events=publisher)  # fmt: skip
    return LocalApp(service=service, blobs=blobs, records=records, queue=queue, signer=signer,
                    webhooks=webhooks)  # fmt: skip


# Every IMGPIPE_* variable the functions read (the template's drift test checks them): the
# first five are required.
AWS_ENV = (
    "IMGPIPE_RAW_BUCKET",
    "IMGPIPE_PROCESSED_BUCKET",
    "IMGPIPE_TABLE",
    "IMGPIPE_QUEUE_URL",  # the jobs queue the raw bucket notifies; reprocess sends there too
    "IMGPIPE_DLQ_URL",
    "IMGPIPE_TAGGER",  # rekognition (default) | local | none
    "IMGPIPE_REKOGNITION_MIN_CONFIDENCE",  # percent, default 80
    "IMGPIPE_FACES",  # rekognition (DetectFaces places the focal point) | none (default)
    "IMGPIPE_STACK",  # the stack's name: the metrics' "stack" dimension (lambda_metrics)
    "IMGPIPE_EVENT_BUS",  # the EventBridge bus image events go to (none: no events)
)
_AWS_REQUIRED = AWS_ENV[:5]
# Only the API function has these (template.yaml): where records point rendition URLs, and the
# distribution a delete invalidates. Without them, records carry API URLs and nothing caches.
CDN_ENV = ("IMGPIPE_CDN_URL", "IMGPIPE_CDN_DISTRIBUTION")
_TAGGERS = ("rekognition", "local", "none")
_FACE_FINDERS = ("rekognition", "none")
_CONNECT_TIMEOUT_S = 5


@dataclass
class AwsApp:
    """The service and the AWS adapters behind it (the handlers need a few of them)."""

    service: ImageService
    blobs: S3BlobStore
    records: DynamoDbMetadataStore
    queue: SqsQueue
    cdn_url: str | None = None  # rendition URLs in records: <cdn_url>/processed/<id>/<file>


def build_aws(
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    session: boto3.session.Session | None = None,
) -> AwsApp:
    """Wire the AWS deployment from ``environ`` (default ``os.environ``); see ``AWS_ENV``.

    ``settings`` default to ``Settings.load(environ=environ)``. ``session`` (default: a new
    one, in ``AWS_REGION``) makes every client; ``AWS_ENDPOINT_URL`` in ``environ`` points
    them all at another endpoint (a moto server in tests). A missing variable or a bad value
    raises ``ConfigError`` naming it. S3 event notifications announce new raw objects, so the
    service is built with ``store_notifies=True``.
    """
    import boto3  # noqa: PLC0415 - the aws extra: only a deployment on AWS needs it
    from botocore.config import Config  # noqa: PLC0415

    from imgpipe.adapters.aws.dynamodb_metadata_store import (  # noqa: PLC0415
        DynamoDbMetadataStore,
    )
    from imgpipe.adapters.aws.s3_blob_store import S3BlobStore  # noqa: PLC0415
    from imgpipe.adapters.aws.s3_upload_signer import S3UploadSigner  # noqa: PLC0415
    from imgpipe.adapters.aws.sqs_queue import SqsQueue  # noqa: PLC0415

    env = os.environ if environ is None else environ
    if missing := [name for name in _AWS_REQUIRED if not env.get(name, "").strip()]:
        raise ConfigError(f"missing environment variable(s) for AWS: {', '.join(missing)}")
    raw_bucket, processed_bucket, table, queue_url, dlq_url = (
        env[name].strip() for name in _AWS_REQUIRED
    )
    tagger_name = _choice(env, "IMGPIPE_TAGGER", _TAGGERS, "rekognition")
    faces_name = _choice(env, "IMGPIPE_FACES", _FACE_FINDERS, "none")
    min_confidence = _percentage(env, "IMGPIPE_REKOGNITION_MIN_CONFIDENCE", 80.0)
    settings = settings if settings is not None else Settings.load(environ=env)
    if session is None:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        session = boto3.session.Session(region_name=region)
    endpoint = env.get("AWS_ENDPOINT_URL") or None

    # One config per service: standard retries (throttling and 5xx, with backoff) and timeouts
    # sized to the calls - SQS long polls for up to 20 s, S3 moves objects up to 25 MB.
    # Presigned POSTs and GETs go to the bucket's regional name (<bucket>.s3.<region>.amazonaws
    # .com, also in us-east-1): a new bucket answers the global name with a 307 for hours, and a
    # browser's CORS preflight cannot follow a redirect.
    regional = _client_config(60, signing="s3v4").merge(Config(s3={
        "addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}))  # fmt: skip
    s3 = session.client("s3", endpoint_url=endpoint, config=regional)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint, config=_client_config(10))
    sqs = session.client("sqs", endpoint_url=endpoint, config=_client_config(25))
    blobs = S3BlobStore(s3, raw_bucket, processed_bucket)
    # An unused upload grant is deleted by the table's TTL an hour after its form expired.
    records = DynamoDbMetadataStore(dynamodb, table, settings.service.upload_expiry_s + 3600)
    queue = SqsQueue(sqs, queue_url, dlq_url, max_receives=settings.service.max_receives)
    tagger, faces = _aws_taggers(tagger_name, faces_name, min_confidence, session, endpoint)
    signer = S3UploadSigner(s3, raw_bucket)
    cdn_url = env.get("IMGPIPE_CDN_URL", "").strip().rstrip("/") or None
    distribution = env.get("IMGPIPE_CDN_DISTRIBUTION", "").strip()
    cdn = None
    if distribution:
        from imgpipe.adapters.aws.cloudfront_cdn import CloudFrontCdn  # noqa: PLC0415

        cloudfront = session.client("cloudfront", endpoint_url=endpoint,
                                    config=_client_config(10))  # fmt: skip
        cdn = CloudFrontCdn(cloudfront, distribution)
    events = None
    if bus := env.get("IMGPIPE_EVENT_BUS", "").strip():
        from imgpipe.adapters.aws.eventbridge_publisher import (  # noqa: PLC0415
            EventBridgePublisher,
        )

        client = session.client("events", endpoint_url=endpoint, config=_client_config(10))
        events = EventBridgePublisher(client, bus)
    service = ImageService(blobs, records, queue, tagger, signer, settings, store_notifies=True,
                           cdn=cdn, events=events, faces=faces)  # fmt: skip
    return AwsApp(service=service, blobs=blobs, records=records, queue=queue, cdn_url=cdn_url)


def _client_config(read_timeout_s: int, attempts: int = 3, signing: str | None = None) -> Config:
    """Standard retries (throttling, 5xx, dropped connections; ``attempts`` calls in all)."""
    from botocore.config import Config  # noqa: PLC0415 - the aws extra

    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        signature_version=signing,  # S3: SigV4 presigned URLs in every region
    )


def _aws_taggers(
    tagger: str,
    faces: str,
    min_confidence: float,
    session: boto3.session.Session,
    endpoint: str | None,
) -> tuple[Tagger, FaceFinder | None]:
    """The tagger and the face finder, sharing one Rekognition client when both use it."""
    local: Tagger = NullTagger() if tagger == "none" else LocalTagger()
    if "rekognition" not in (tagger, faces):
        return local, None
    from imgpipe.adapters.aws.rekognition_tagger import (  # noqa: PLC0415
        RekognitionFaceFinder,
        RekognitionTagger,
    )

    # The adapters retry throttling themselves (with jitter); botocore retrying would multiply.
    config = _client_config(15, attempts=1)
    client = session.client("rekognition", endpoint_url=endpoint, config=config)
    labels = CompositeTagger(local, RekognitionTagger(client, min_confidence))
    return (labels if tagger == "rekognition" else local,
            RekognitionFaceFinder(client) if faces == "rekognition" else None)  # fmt: skip


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _percentage(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 100:  # also refuses nan
        raise ConfigError(f"{name} must be a percentage between 0 and 100, not {raw!r}")
    return value
