"""``Queue`` on an SQS standard queue and its dead-letter queue.

SQS itself keeps the contract's promises - at-least-once delivery, visibility timeouts,
receive counts, and moving a message to the dead-letter queue once it has been received
``maxReceiveCount`` times (the queue's ``RedrivePolicy``, set by the template; ``max_receives``
here only reports it). Where SQS differs from the port, this adapter says so:

- Times are whole seconds: a visibility timeout is rounded up (a message is never hidden for
  less than asked), and a long poll waits in whole seconds with short polls for a remainder
  under a second.
- SQS may still delete a message with a receipt that a later receive has replaced; it does
  not promise the no-op the port describes for stale receipts.
- A standard queue delivers roughly, not strictly, oldest first.
- ``stats()["oldest_age_s"]`` is 0: the age of the oldest message is a CloudWatch metric
  (``ApproximateAgeOfOldestMessage``, which the template's alarm watches), not a queue
  attribute.
- ``dead_letters()`` peeks by receiving from the dead-letter queue and making the messages
  visible again at once; each peek therefore adds to their receive count there, which is why
  dead letters report ``max_receives``, the count that sent them there. No function calls it
  (it would compete with the dead-letter function's trigger, and no role has the rights): it is
  for operators and the contract suite.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgpipe.adapters.aws._errors import error_code, translated
from imgpipe.model import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageTypeDef,
    )

__all__ = ["SqsQueue"]

_MAX_BATCH = 10  # SQS's limit per ReceiveMessage / batch call
_MAX_WAIT_S = 20  # SQS's longest long poll
_MAX_VISIBILITY_S = 43_200
_SHORT_POLL_S = 0.1  # between short polls for the sub-second part of a wait
_PEEK_HIDE_S = 30  # how long a peek may hold a dead letter before making it visible again
# A stale or unknown receipt is a no-op for the port; SQS reports these for it.
_STALE_RECEIPT = frozenset({
    "ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
})  # fmt: skip


class SqsQueue:
    """Jobs on ``queue_url``; dead letters on ``dlq_url`` (the queue's redrive target).

    Each call needs its own action on its queue: ``SendMessage`` / ``ReceiveMessage`` /
    ``DeleteMessage`` / ``ChangeMessageVisibility`` on the jobs queue, ``GetQueueAttributes`` on
    both for ``stats()``; ``dead_letters()`` also ``ReceiveMessage`` and
    ``ChangeMessageVisibility`` on the dead-letter queue.
    """

    def __init__(
        self, sqs_client: SQSClient, queue_url: str, dlq_url: str, max_receives: int = 5
    ) -> None:
        self._sqs = sqs_client
        self.queue_url, self.dlq_url = queue_url, dlq_url
        self.max_receives = max_receives

    def send(self, body: Mapping[str, Any]) -> str:
        encoded = json.dumps(dict(body))
        with translated("SQS send"):
            sent = self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=encoded)
        return sent["MessageId"]

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        deadline = time.monotonic() + max(wait_s, 0.0)
        while True:
            whole_s = min(int(deadline - time.monotonic()), _MAX_WAIT_S)
            found = self._receive(self.queue_url, max_messages, max(whole_s, 0), visibility_s)
            if found:
                return [_message(m, _receive_count(m)) for m in found]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if whole_s < 1:  # SQS long-polls in whole seconds: short-poll the remainder
                time.sleep(min(remaining, _SHORT_POLL_S))

    def delete(self, receipt: str) -> None:
        with translated("SQS delete"):
            try:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
            except ClientError as exc:
                if error_code(exc) not in _STALE_RECEIPT:
                    raise

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        with translated("SQS change visibility"):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=_seconds(visibility_s),
                )
            except ClientError as exc:
                if error_code(exc) not in _STALE_RECEIPT:
                    raise

    def dead_letters(self) -> list[Message]:
        """Every message on the dead-letter queue, as the peek found them (receipt ``""``)."""
        expected = int(self._attributes(self.dlq_url)["ApproximateNumberOfMessages"])
        peeked: dict[str, MessageTypeDef] = {}
        while expected and len(peeked) < expected:
            # Long-poll for one second: a short poll may miss messages on a small queue.
            batch = self._receive(self.dlq_url, _MAX_BATCH, 1, _PEEK_HIDE_S)
            if not batch:
                break
            peeked.update((m["MessageId"], m) for m in batch)
        self._release(list(peeked.values()))
        return [_message(m, self.max_receives, receipt="") for m in peeked.values()]

    def stats(self) -> Mapping[str, float]:
        jobs, dead = self._attributes(self.queue_url), self._attributes(self.dlq_url)
        return {
            "visible": float(jobs["ApproximateNumberOfMessages"]),
            "in_flight": float(jobs["ApproximateNumberOfMessagesNotVisible"]),
            "dead": float(dead["ApproximateNumberOfMessages"])
            + float(dead["ApproximateNumberOfMessagesNotVisible"]),
            "oldest_age_s": 0.0,
        }

    def _receive(
        self, url: str, max_messages: int, wait_s: int, visibility_s: float | None
    ) -> list[MessageTypeDef]:
        kwargs: dict[str, Any] = {
            "QueueUrl": url,
            "MaxNumberOfMessages": max(1, min(max_messages, _MAX_BATCH)),
            "WaitTimeSeconds": wait_s,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_s is not None:  # else the queue's own VisibilityTimeout
            kwargs["VisibilityTimeout"] = _seconds(visibility_s)
        with translated("SQS receive"):
            return self._sqs.receive_message(**kwargs).get("Messages", [])

    def _release(self, messages: list[MessageTypeDef]) -> None:
        """Make peeked dead letters visible again now."""
        for start in range(0, len(messages), _MAX_BATCH):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(messages[start : start + _MAX_BATCH])
            ]
            with translated("SQS release dead letters"):
                self._sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)

    def _attributes(self, url: str) -> dict[str, str]:
        with translated("SQS queue attributes"):
            found = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        return {str(name): value for name, value in found.get("Attributes", {}).items()}


def _seconds(visibility_s: float) -> int:
    """Whole seconds for SQS, rounded up and clamped to SQS's range."""
    return min(max(math.ceil(visibility_s), 0), _MAX_VISIBILITY_S)


def _receive_count(raw: MessageTypeDef) -> int:
    return int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


def _message(raw: MessageTypeDef, receive_count: int, receipt: str | None = None) -> Message:
    text = raw.get("Body", "")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):  # not ours: hand it on whole, for the caller to refuse
        body = {"raw_body": text}
    if receipt is None:
        receipt = raw["ReceiptHandle"]
    return Message(id=raw["MessageId"], receipt=receipt, body=body, receive_count=receive_count)
