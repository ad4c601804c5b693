"""The dead-letter function: a job that failed 5 times marks its images ``failed``.

The twin of ``ImageService.sweep_dead_letters`` in the local service, with the same rule: a dead
letter fails its images (if it names any - a poison message may not even be JSON) only for the
processing attempt it was sent for (``imgpipe.events.generation_of``), so a job of an attempt
before a reprocess can never fail the new one. The message is then acknowledged; only a failure
to record the outcome (e.g. the table is unreachable) leaves it for another try.

Metrics: ``DeadLetters`` per message, ``ImagesFailed`` per image marked.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgpipe.bootstrap import AwsApp, build_aws
from imgpipe.entrypoints.lambda_metrics import function_metrics, refresh

__all__ = ["handler", "record_handler"]

logger = Logger(service="imgpipe")  # the package's root logger: see lambda_api
metrics = function_metrics()
# A batch whose every record failed is reported like any other (not raised as a function
# error): the Errors alarm is kept for crashes and timeouts.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def app() -> AwsApp:
    """The AWS-wired service; built once per container."""
    return build_aws()


def record_handler(record: SQSRecord) -> None:
    """Mark the images of one dead letter failed; raise only when that could not be recorded."""
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
    context = {"message_id": record.message_id}
    try:
        body = json.loads(record.body)
    except ValueError:
        body = {}
    outcome = app().service.fail_dead_letter(body) if isinstance(body, dict) else {}
    if not outcome:  # not a notification of raw objects: nothing to mark
        logger.error("unreadable dead letter dropped",
                     extra={**context, "body_prefix": record.body[:200]})  # fmt: skip
    for image_id, failed in outcome.items():
        if failed:
            metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=1)
            logger.error("image failed", extra={**context, "image_id": image_id})
        else:
            logger.info("stale dead letter ignored (image finished, deleted or reprocessed)",
                        extra={**context, "image_id": image_id})  # fmt: skip


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (``imgpipe.entrypoints.lambda_dlq.handler``)."""
    refresh(metrics)
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)  # fmt: skip
