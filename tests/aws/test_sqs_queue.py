"""The SQS queue in real time: the timeouts and dead letters the contract suite cannot reach
with a ManualClock, and what the adapter adds to SQS (whole seconds, peeks, stats)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import aws_support
from imgpipe.adapters.aws.sqs_queue import SqsQueue
from imgpipe.model import Message

pytestmark = pytest.mark.aws


@pytest.fixture
def queue() -> Iterator[SqsQueue]:
    with aws_support.sqs_queue(visibility_s=30, max_receives=2) as built:
        yield built


def _receive_one(queue: SqsQueue, **kwargs: Any) -> Message:
    messages = queue.receive(**kwargs)
    assert len(messages) == 1, messages
    return messages[0]


def test_message_comes_back_after_its_visibility_timeout(queue: SqsQueue) -> None:
    """A received message is hidden for visibility_s, then redelivered with a new receipt."""
    sent = queue.send({"n": 1})
    first = _receive_one(queue, visibility_s=1)
    assert queue.receive() == []
    second = _receive_one(queue, wait_s=3)
    assert (second.id, second.receive_count) == (sent, 2)
    assert second.receipt != first.receipt


def test_fractional_visibility_is_rounded_up(queue: SqsQueue) -> None:
    """SQS counts whole seconds: 0.2 s hides the message for 1 s, never for less."""
    queue.send({"n": 1})
    _receive_one(queue, visibility_s=0.2)
    time.sleep(0.4)
    assert queue.receive() == []


def test_change_visibility_hides_or_releases_a_message(queue: SqsQueue) -> None:
    """change_visibility restarts the hidden period; 0 returns the message at once."""
    queue.send({"n": 1})
    message = _receive_one(queue, visibility_s=0)
    queue.change_visibility(message.receipt, 30)
    assert queue.receive() == []
    queue.change_visibility(message.receipt, 0)
    assert _receive_one(queue).receive_count == 2


def test_messages_dead_letter_after_max_receives(queue: SqsQueue) -> None:
    """After max_receives deliveries the queue's redrive policy moves the message to the DLQ."""
    doomed = queue.send({"n": "doomed"})
    for count in (1, 2):
        assert _receive_one(queue, visibility_s=0).receive_count == count
    assert queue.receive(max_messages=10) == []
    young = queue.send({"n": "young"})
    assert _receive_one(queue, visibility_s=0).id == young
    dead = queue.dead_letters()
    assert dead == [Message(doomed, "", {"n": "doomed"}, queue.max_receives)]


def test_dead_letters_can_be_peeked_again(queue: SqsQueue) -> None:
    """Peeking leaves dead letters in place: a second peek finds the same ones."""
    ids = []
    for n in range(3):
        ids.append(queue.send({"n": n}))
    for _ in range(queue.max_receives + 1):
        queue.receive(max_messages=10, visibility_s=0)
    assert sorted(m.id for m in queue.dead_letters()) == sorted(ids)
    assert sorted(m.id for m in queue.dead_letters()) == sorted(ids)


def test_stats_count_visible_in_flight_and_dead(queue: SqsQueue) -> None:
    """stats() reads the queues' approximate counts; the oldest age is not an SQS attribute."""
    assert queue.stats() == {"visible": 0, "in_flight": 0, "dead": 0, "oldest_age_s": 0.0}
    queue.send({"n": "doomed"})
    for _ in range(queue.max_receives + 1):
        queue.receive(visibility_s=0)
    queue.send({"n": 1})
    queue.send({"n": 2})
    _receive_one(queue)
    assert queue.stats() == {"visible": 1, "in_flight": 1, "dead": 1, "oldest_age_s": 0.0}


def test_unknown_receipts_are_a_no_op(queue: SqsQueue) -> None:
    """delete and change_visibility with a receipt SQS does not know do nothing."""
    queue.send({"n": 1})
    queue.delete("not-a-receipt")
    queue.change_visibility("not-a-receipt", 0)
    message = _receive_one(queue, visibility_s=0)
    queue.delete(message.receipt)
    queue.delete(message.receipt)  # already deleted
    assert queue.receive() == []


def test_a_body_that_is_not_a_json_object_is_handed_on_whole(queue: SqsQueue) -> None:
    """A foreign message (plain text) arrives as {"raw_body": text} for the caller to refuse."""
    sqs = aws_support.client("sqs")
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody="hello")
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody="[1, 2]")
    bodies = [m.body for m in queue.receive(max_messages=10)]
    assert sorted(bodies, key=str) == [{"raw_body": "[1, 2]"}, {"raw_body": "hello"}]


def test_receive_asks_for_at_most_ten(queue: SqsQueue) -> None:
    """max_messages above SQS's limit of 10 is clamped rather than refused."""
    for n in range(12):
        queue.send({"n": n})
    assert len(queue.receive(max_messages=50)) <= 10
