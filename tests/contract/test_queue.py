"""The ``Queue`` contract (SQS semantics), run against every adapter of the port.

Time is a ``ManualClock`` except in the long-poll tests, which need real waiting. Tests that
need a second process or a reopened file only make sense for the SQLite queue and use it
directly. SQS (the "aws" backend, on a moto server) keeps time on the server, where a
``ManualClock`` cannot reach: a test is skipped there at the point it moves the clock, and
``tests/aws/test_sqs_queue.py`` checks the same timeouts in real time.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

import aws_support
from imgpipe.adapters.local.sqlite_queue import SqliteQueue
from imgpipe.model import Message
from imgpipe.ports import Queue
from imgpipe.testing import InMemoryQueue, ManualClock

Clock = Callable[[], float]
MakeQueue = Callable[[Clock], Queue]

VISIBILITY_S = 30.0

# One line per adapter: given a scratch directory and a clock, open a queue to be closed after.
_ADAPTERS: dict[str, Callable[[Path, Clock], AbstractContextManager[Queue]]] = {
    "memory": lambda tmp, clock: nullcontext(InMemoryQueue(VISIBILITY_S, 5, clock)),
    "local": lambda tmp, clock: SqliteQueue(tmp / "queue.db", "jobs", VISIBILITY_S, 5, clock),
    "aws": lambda tmp, clock: aws_support.sqs_queue(int(VISIBILITY_S), 5),  # server's clock
}
_SERVER_CLOCK = frozenset({"aws"})


@pytest.fixture(params=aws_support.backend_params(_ADAPTERS))
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeQueue]:
    """Open queues of the parametrized kind on demand; close them all at teardown."""
    opened: list[AbstractContextManager[Queue]] = []

    def make(clock: Clock) -> Queue:
        opened.append(_ADAPTERS[request.param](tmp_path, clock))
        return opened[-1].__enter__()

    yield make
    for manager in reversed(opened):
        manager.__exit__(None, None, None)


class _ServerClock(ManualClock):
    """The clock of a queue that keeps time on its server: moving it skips the test."""

    def advance(self, seconds: float) -> None:
        pytest.skip("SQS hides messages on the server's clock, which a ManualClock cannot move")


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> ManualClock:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("make_queue") in _SERVER_CLOCK:
        return _ServerClock()
    return ManualClock()


@pytest.fixture
def queue(make_queue: MakeQueue, clock: ManualClock) -> Queue:
    return make_queue(clock)


def _receive_one(queue: Queue, **kwargs: Any) -> Message:
    messages = queue.receive(**kwargs)
    assert len(messages) == 1, messages
    return messages[0]


# -- the contract, for every adapter ------------------------------------------------------------


def test_send_receive_delete(queue: Queue, clock: ManualClock) -> None:
    """A sent body comes back once with a receipt, and a deleted message never returns."""
    message_id = queue.send({"image_id": "abc", "n": 1})
    message = _receive_one(queue)
    assert (message.id, message.body, message.receive_count) == (
        message_id,
        {"image_id": "abc", "n": 1},
        1,
    )
    assert message.receipt
    queue.delete(message.receipt)
    clock.advance(VISIBILITY_S + 1)
    assert queue.receive(max_messages=10) == []


def test_received_message_is_hidden_until_visibility_timeout(
    queue: Queue, clock: ManualClock
) -> None:
    """A received message is invisible for the timeout, then redelivered with a new receipt."""
    message_id = queue.send({"n": 1})
    first = _receive_one(queue)
    assert queue.receive() == []
    clock.advance(VISIBILITY_S - 1)
    assert queue.receive() == []
    clock.advance(2)
    second = _receive_one(queue)
    assert second.id == message_id
    assert second.receive_count == 2
    assert second.receipt != first.receipt


def test_receive_visibility_argument_overrides_default(queue: Queue, clock: ManualClock) -> None:
    """``receive(visibility_s=...)`` sets this delivery's timeout instead of the queue's."""
    queue.send({"n": 1})
    _receive_one(queue, visibility_s=5)
    clock.advance(4)
    assert queue.receive() == []
    clock.advance(2)
    assert _receive_one(queue).receive_count == 2


def test_stale_receipt_is_a_no_op(queue: Queue, clock: ManualClock) -> None:
    """After a redelivery, the old receipt neither deletes nor re-times the message."""
    queue.send({"n": 1})
    stale = _receive_one(queue).receipt
    clock.advance(VISIBILITY_S + 1)
    latest = _receive_one(queue).receipt
    queue.delete(stale)
    queue.change_visibility(stale, 0)
    assert queue.receive() == []
    clock.advance(VISIBILITY_S + 1)
    again = _receive_one(queue)
    assert again.receive_count == 3
    queue.delete(latest)  # stale as well by now
    queue.delete(again.receipt)
    clock.advance(VISIBILITY_S + 1)
    assert queue.receive() == []


def test_change_visibility_zero_makes_message_visible_now(queue: Queue) -> None:
    """``change_visibility(receipt, 0)`` returns a message to the queue immediately."""
    queue.send({"n": 1})
    first = _receive_one(queue)
    queue.change_visibility(first.receipt, 0)
    assert _receive_one(queue).receive_count == 2


def test_change_visibility_extends_the_timeout(queue: Queue, clock: ManualClock) -> None:
    """``change_visibility`` restarts the hidden period from now (a worker's heartbeat)."""
    queue.send({"n": 1})
    message = _receive_one(queue)
    clock.advance(VISIBILITY_S - 1)
    queue.change_visibility(message.receipt, 60)
    clock.advance(59)
    assert queue.receive() == []
    clock.advance(2)
    assert _receive_one(queue).receive_count == 2


def test_message_moves_to_dead_letters_after_max_receives(queue: Queue, clock: ManualClock) -> None:
    """After ``max_receives`` deliveries, the next receive dead-letters the message instead."""
    message_id = queue.send({"n": 1})
    for count in range(1, queue.max_receives + 1):
        assert _receive_one(queue).receive_count == count
        assert queue.dead_letters() == []
        clock.advance(VISIBILITY_S + 1)
    assert queue.receive(max_messages=10) == []
    assert queue.dead_letters() == [Message(message_id, "", {"n": 1}, queue.max_receives)]
    clock.advance(VISIBILITY_S + 1)
    assert queue.receive() == []
    assert [m.id for m in queue.dead_letters()] == [message_id]  # they stay for an operator


def test_dead_letter_does_not_block_younger_messages(queue: Queue, clock: ManualClock) -> None:
    """A receive that dead-letters an exhausted message still returns the next visible one."""
    old = queue.send({"n": "old"})
    for _ in range(queue.max_receives):
        _receive_one(queue)
        clock.advance(VISIBILITY_S + 1)
    young = queue.send({"n": "young"})
    assert _receive_one(queue).id == young
    assert [m.id for m in queue.dead_letters()] == [old]


def test_oldest_message_first(queue: Queue, clock: ManualClock) -> None:
    """Visible messages are delivered oldest first."""
    sent = []
    for n in range(4):
        sent.append(queue.send({"n": n}))
        clock.advance(1)
    assert [m.id for m in queue.receive(max_messages=2)] == sent[:2]
    assert [m.id for m in queue.receive(max_messages=10)] == sent[2:]


def test_max_messages_is_respected(queue: Queue) -> None:
    """A receive returns at most ``max_messages``, and each message to only one receive."""
    sent = {queue.send({"n": n}) for n in range(5)}
    first = queue.receive(max_messages=3)
    second = queue.receive(max_messages=3)
    assert (len(first), len(second)) == (3, 2)
    assert {m.id for m in first} | {m.id for m in second} == sent
    assert queue.receive(max_messages=3) == []


def test_undeleted_messages_come_back(queue: Queue, clock: ManualClock) -> None:
    """At-least-once: every received but undeleted message is delivered again."""
    sent = {queue.send({"n": n}) for n in range(3)}
    first = queue.receive(max_messages=10)
    queue.delete(first[1].receipt)
    clock.advance(VISIBILITY_S + 1)
    again = queue.receive(max_messages=10)
    assert {m.id for m in again} == sent - {first[1].id}
    assert {m.receive_count for m in again} == {2}


def test_long_poll_wakes_when_another_thread_sends(make_queue: MakeQueue) -> None:
    """``receive(wait_s=2)`` returns soon after another thread sends, not at the deadline."""
    queue = make_queue(time.time)
    sender = threading.Timer(0.2, queue.send, args=({"n": 1},))
    sender.start()
    try:
        started = time.monotonic()
        messages = queue.receive(wait_s=2)
        elapsed = time.monotonic() - started
    finally:
        sender.join()
    assert [m.body for m in messages] == [{"n": 1}]
    assert elapsed < 1.0


def test_long_poll_wakes_when_visibility_expires(make_queue: MakeQueue) -> None:
    """A long poll returns a message whose visibility timeout runs out during the wait."""
    queue = make_queue(time.time)
    queue.send({"n": 1})
    _receive_one(queue, visibility_s=0.3)
    started = time.monotonic()
    message = _receive_one(queue, wait_s=3)
    assert message.receive_count == 2
    assert time.monotonic() - started < 1.5


def test_long_poll_on_empty_queue_waits_then_returns_nothing(make_queue: MakeQueue) -> None:
    """``receive(wait_s=0.3)`` on an empty queue returns [] after about 0.3 s without spinning."""
    queue = make_queue(time.time)
    started, cpu_started = time.monotonic(), time.process_time()
    assert queue.receive(wait_s=0.3) == []
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    assert 0.29 <= elapsed < 0.8  # a load spike only ever makes it later
    assert cpu < elapsed / 2, f"used {cpu:.3f} s of CPU in {elapsed:.3f} s: spinning?"


# -- the SQLite queue only: files and processes -------------------------------------------------


def test_sqlite_messages_survive_reopening(tmp_path: Path, clock: ManualClock) -> None:
    """Messages, receipts and receive counts live in the file, not in the instance."""
    path = tmp_path / "queue.db"
    with SqliteQueue(path, clock=clock) as queue:
        in_flight = queue.send({"n": 1})
        clock.advance(1)
        waiting = queue.send({"n": 2})
        receipt = _receive_one(queue).receipt
    with SqliteQueue(path, clock=clock) as reopened:
        assert [(m.id, m.receive_count) for m in reopened.receive(max_messages=10)] == [
            (waiting, 1)
        ]
        reopened.change_visibility(receipt, 0)
        assert [(m.id, m.receive_count) for m in reopened.receive()] == [(in_flight, 2)]


def test_sqlite_queues_with_different_names_share_a_file(tmp_path: Path) -> None:
    """Two names on one file are independent queues."""
    path = tmp_path / "queue.db"
    with SqliteQueue(path, "jobs") as jobs, SqliteQueue(path, "other") as other:
        jobs.send({"n": 1})
        assert other.receive() == []
        assert other.stats()["visible"] == 0
        assert _receive_one(jobs).body == {"n": 1}


def test_sqlite_stats_count_visible_in_flight_and_dead(tmp_path: Path, clock: ManualClock) -> None:
    """``stats()`` reports what ``/health`` shows: depth by state and the oldest message's age."""
    with SqliteQueue(tmp_path / "queue.db", max_receives=1, clock=clock) as queue:
        assert queue.stats() == {"visible": 0, "in_flight": 0, "dead": 0, "oldest_age_s": 0.0}
        queue.send({"n": "doomed"})
        _receive_one(queue)
        clock.advance(VISIBILITY_S + 1)
        assert queue.receive() == []  # dead-lettered
        queue.send({"n": 1})
        clock.advance(10)
        queue.send({"n": 2})
        clock.advance(5)
        _receive_one(queue)
        assert queue.stats() == {"visible": 1, "in_flight": 1, "dead": 1, "oldest_age_s": 15.0}


def test_sqlite_redrive_returns_dead_letters_to_the_queue(
    tmp_path: Path, clock: ManualClock
) -> None:
    """``redrive_dead_letters`` requeues every dead letter with a fresh receive count."""
    with SqliteQueue(tmp_path / "queue.db", max_receives=1, clock=clock) as queue:
        ids = [queue.send({"n": n}) for n in range(2)]
        for _ in ids:
            _receive_one(queue)
        clock.advance(VISIBILITY_S + 1)
        assert queue.receive(max_messages=10) == []
        assert [m.id for m in queue.dead_letters()] == ids
        assert queue.redrive_dead_letters() == 2
        assert queue.dead_letters() == []
        assert queue.redrive_dead_letters() == 0
        messages = queue.receive(max_messages=10)
    assert [(m.id, m.receive_count) for m in messages] == [(ids[0], 1), (ids[1], 1)]


def _drain(path: Path) -> list[str]:
    """Receive and delete one message at a time until the queue is empty; return the ids."""
    got: list[str] = []
    with SqliteQueue(path, visibility_s=300) as queue:
        while messages := queue.receive():
            got.append(messages[0].id)
            time.sleep(0.002)  # "work", so that the processes interleave
            queue.delete(messages[0].receipt)
    return got


def _send_one(path: Path) -> list[str]:
    """Open the queue (creating the file if need be) and send one message."""
    with SqliteQueue(path) as queue:
        return [queue.send({"pid": os.getpid()})]


def _child(work: Callable[[Path], list[str]], path: Path, start: Any, results: Any) -> None:
    """Child process: run ``work`` once every sibling is ready; report its result or error."""
    try:
        start.wait(timeout=60)
        results.put(work(path))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(f"{type(exc).__name__}: {exc}")


def _in_processes(work: Callable[[Path], list[str]], path: Path, count: int) -> list[list[str]]:
    """Run ``work(path)`` in ``count`` fresh processes started together; return their results."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(count), context.Queue()
    processes = [
        context.Process(target=_child, args=(work, path, start, results)) for _ in range(count)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
        results.close()
        results.join_thread()
    assert [o for o in outcomes if isinstance(o, str)] == []
    assert [p.exitcode for p in processes] == [0] * count
    return outcomes


def test_sqlite_two_processes_never_receive_the_same_message(tmp_path: Path) -> None:
    """Two processes draining one file concurrently each get a disjoint share of the messages."""
    path = tmp_path / "queue.db"
    with SqliteQueue(path) as queue:
        sent = {queue.send({"n": n}) for n in range(50)}
    shares = _in_processes(_drain, path, 2)
    received = [message_id for share in shares for message_id in share]
    assert sorted(received) == sorted(sent), [len(share) for share in shares]
    with SqliteQueue(path) as queue:
        assert queue.stats()["visible"] + queue.stats()["in_flight"] == 0


def test_sqlite_processes_can_create_the_file_at_once(tmp_path: Path) -> None:
    """Several processes opening a fresh file together all succeed on one schema."""
    path = tmp_path / "queue.db"
    sent = _in_processes(_send_one, path, 4)
    with SqliteQueue(path) as queue:
        received = queue.receive(max_messages=10)
    assert sorted(m.id for m in received) == sorted(ids[0] for ids in sent)
