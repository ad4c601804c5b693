"""The processor function: SQS batches of S3 ObjectCreated notifications -> ``handle_event``.

Bad images are not failures: the service records them ``rejected`` and the message is
acknowledged. Anything that raises is reported in ``batchItemFailures``, so only that message
comes back (and after 5 receives goes to the dead-letter queue). The app is built on the first
invocation, never at import. Metrics (EMF, ``lambda_metrics``): ``ImagesProcessed``,
``ImagesRejected`` (dimension ``code``), ``ProcessingMs``, ``Bytes`` per image actually worked
on (a duplicate delivery counts nothing); ``Messages``, ``BatchItemFailures`` per message.
Tracing is off unless ``POWERTOOLS_TRACE_DISABLED=false`` (the template's ``Tracing``).

A record is started only while ``RESERVE_MS`` of the invocation remain; the rest of a slow batch
is reported as failed without being tried, so a timeout never takes finished work down with it.

A warm container must not carry one image's damage to the next: after an unexpected failure
the function checks its imaging engine (``engine_ok``). When the check fails, the records of
the batch not yet done are reported as failures without being tried, and the next invocation
of this container exits before touching its batch, so Lambda starts a fresh one. The cost: one
receive, and a wait of the visibility timeout, for each message of those two batches.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

# The rendering engine loads with the function, not with its first record: every invocation
# of this function renders, so its cold start includes the engine (libvips and Pillow).
import imgpipe.core.pipeline  # noqa: F401
from imgpipe.bootstrap import AwsApp, build_aws
from imgpipe.core.vips import engine_ok
from imgpipe.entrypoints.lambda_metrics import dimensions, function_metrics, namespace, refresh
from imgpipe.errors import EX_ENGINE_BROKEN, InternalError
from imgpipe.service import now_iso

__all__ = ["handler", "record_handler"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _untraced(function: _F) -> _F:
    return function


logger = Logger(service="imgpipe")  # the package's root logger: see lambda_api
metrics = function_metrics()

# Powertools' Tracer loads the X-Ray SDK (and botocore with it: ~0.2 s of cold start) even when
# tracing is disabled, so without tracing there is no Tracer at all.
if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() in ("false", "0"):
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service="imgpipe")
    capture_method: Callable[[_F], _F] = tracer.capture_method
    capture_handler: Callable[[_F], _F] = tracer.capture_lambda_handler(capture_response=False)
else:
    capture_method = capture_handler = _untraced
# A batch whose every record failed is reported like any other (not raised as a function
# error): the Errors alarm is kept for crashes and timeouts.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# A record is started only with this much of the invocation left: the longest an allowed image
# (50 MP) takes at the template's 1024 MB is ~15 s, so 30 s leaves a margin. What is not
# started is reported as a batch item failure and comes back after the visibility timeout.
RESERVE_MS = 30_000


class _Engine:
    """Whether this container's imaging engine failed its self-check."""

    broken = False


@functools.cache
def app() -> AwsApp:
    """The AWS-wired service; built once per container."""
    return build_aws()


@capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """Process one SQS message; raising marks it failed (and only it)."""
    started, since = time.perf_counter(), now_iso()
    context = {"message_id": record.message_id,
               "receive_count": record.attributes.approximate_receive_count}  # fmt: skip
    if _Engine.broken:
        metrics.add_metric(name="BatchItemFailures", unit=MetricUnit.Count, value=1)
        raise InternalError("not attempted: this container's imaging engine is broken")
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < RESERVE_MS:
        # Started now, it could be cut off by the timeout, and the whole batch with it (every
        # record of a timed-out invocation returns to the queue, the done ones too).
        metrics.add_metric(name="BatchItemFailures", unit=MetricUnit.Count, value=1)
        logger.warning("not attempted: too little time left in this invocation", extra=context)
        raise InternalError("not attempted: too little time left before the function's timeout")
    try:
        images = app().service.handle_event(json.loads(record.body))
    except Exception:  # reported to SQS as this item's failure, then re-raised for the batch
        logger.exception("message failed", extra=context)
        metrics.add_metric(name="BatchItemFailures", unit=MetricUnit.Count, value=1)
        if not engine_ok():
            logger.critical(
                "imaging engine failed its self-check; container retires", extra=context
            )
            _Engine.broken = True
        raise
    ms = (time.perf_counter() - started) * 1000
    metrics.add_metric(name="Messages", unit=MetricUnit.Count, value=1)
    for image in images:
        fresh = (image.processed_at or "") >= since  # else an earlier delivery did the work
        code = (image.error or {}).get("code")
        logger.info("image done", extra={**context, "image_id": image.id, "fresh": fresh,
                                         "status": image.status, "error_code": code,
                                         "ms": round(ms, 1)})  # fmt: skip
        if not fresh:
            continue
        metrics.add_metric(name="ProcessingMs", unit=MetricUnit.Milliseconds, value=ms)
        metrics.add_metric(name="Bytes", unit=MetricUnit.Bytes, value=image.bytes or 0)
        if image.status == "processed":
            metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
        elif image.status == "rejected":
            with single_metric("ImagesRejected", MetricUnit.Count, 1, namespace=namespace(),
                               default_dimensions=dimensions()) as rejected:  # fmt: skip
                rejected.add_dimension(name="code", value=str(code))


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@capture_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``imgpipe.entrypoints.lambda_processor.handler``)."""
    if _Engine.broken:
        # Before touching this batch: a crashed invocation returns every record to the queue,
        # and the runtime replaces the process.
        logger.error("exiting: this container's imaging engine is broken")
        os._exit(EX_ENGINE_BROKEN)
    refresh(metrics)
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)  # fmt: skip
