"""Faults injected into a real ``imgpipe serve``: killed workers, a killed service, redelivered
and poisonous queue messages. The service must lose nothing and do nothing twice."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fixtures as F
from imgpipe.adapters.local.sqlite_queue import SqliteQueue
from imgpipe.events import object_created_event
from imgpipe.model import Message

from .conftest import StartServer
from .harness import (
    TERMINAL,
    Server,
    cpu_ticks,
    jpeg_bytes,
    photo_bytes,
    pid_alive,
    presigned_upload,
    upload,
    wait_for,
)

pytestmark = pytest.mark.e2e

RENDITION_FILES = {f"{n}.{e}" for n in ("large", "medium", "thumb") for e in ("jpg", "webp")}
PHOTOS = 8


def _upload_photos(server: Server, seeds: range) -> list[str]:
    ids = []
    for seed in seeds:
        response = upload(server.client, photo_bytes(seed), f"photo-{seed}.jpg")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def _assert_processed_once(server: Server, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each id: one record, processed, a complete rendition set on disk; the queue drained and
    nothing rewritten afterwards (``processed_at`` stable past a visibility timeout)."""
    records = server.wait_terminal(ids, timeout_s=120)
    assert {r["status"] for r in records.values()} == {"processed"}, {
        i: (r["status"], r["error"]) for i, r in records.items()
    }
    assert set(server.records()) == set(ids)  # one record per upload, no strays
    for image_id, record in records.items():
        assert {r["url"].rsplit("/", 1)[1] for r in record["renditions"]} == RENDITION_FILES
        assert server.rendition_files(image_id) == RENDITION_FILES
        assert (record["width"], record["height"]) == (5472, 3648)

    def drained() -> bool:
        queue: dict[str, float] = server.client.get("/health").json()["queue"]
        return queue["visible"] == queue["in_flight"] == queue["dead"] == 0

    wait_for(drained, 60, server.log_tail)
    time.sleep(4)  # past the 3 s visibility: a lingering duplicate delivery would show now
    again = {i: server.record(i) for i in ids}
    assert {i: r["processed_at"] for i, r in again.items()} == {
        i: r["processed_at"] for i, r in records.items()
    }
    return records


def test_killed_worker_loses_no_image(serve: StartServer) -> None:
    """SIGKILL of a worker mid-image: it is replaced and every image ends processed exactly once."""
    server = serve(visibility_s=3, workers=2)

    def busy_workers() -> list[int]:
        before = {pid: cpu_ticks(pid) for pid in server.worker_pids()}
        time.sleep(0.2)
        return [pid for pid, ticks in before.items() if cpu_ticks(pid) - ticks >= 3]

    # Both workers up and done importing (busy then means busy with an image).
    wait_for(lambda: len(server.worker_pids()) == 2 and not busy_workers(), 60, server.log_tail)
    original = set(server.worker_pids())
    ids = _upload_photos(server, range(PHOTOS))
    victim = wait_for(lambda: next(iter(busy_workers()), None), 60, server.log_tail, 0.0)
    statuses = {r["status"] for r in server.records().values()}
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    assert victim in original
    assert "processing" in statuses  # the victim was mid-image, not idle

    def replaced() -> bool:
        pids = server.worker_pids()
        return len(pids) == 2 and victim not in pids

    wait_for(replaced, 30, server.log_tail)
    replaced_after = time.monotonic() - killed_at
    records = _assert_processed_once(server, ids)
    print(
        f"\n[e2e faults] worker replaced {replaced_after:.1f} s after SIGKILL; "
        f"{len(records)} photos processed once"
    )


def test_a_killed_workers_job_is_retried_at_once_not_after_the_visibility_timeout(
    serve: StartServer,
) -> None:
    """The supervisor knows which job a dead worker held and releases it: with a 5 minute
    visibility timeout, a photo whose worker was SIGKILLed is still processed within a minute."""
    server = serve(visibility_s=300, workers=1)
    wait_for(lambda: len(server.worker_pids()) == 1, 60, server.log_tail)
    (victim,) = server.worker_pids()
    wait_for(lambda: not _burning(victim), 60, server.log_tail)  # done importing
    (image_id,) = _upload_photos(server, range(200, 201))
    wait_for(lambda: server.record(image_id)["status"] == "processing", 60, server.log_tail, 0.02)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    record = server.wait_terminal([image_id], timeout_s=60)[image_id]
    assert record["status"] == "processed", record["error"]
    print(f"\n[e2e faults] job of a killed worker done {time.monotonic() - killed_at:.1f} s later")


def test_a_poison_image_is_rejected_and_the_same_worker_processes_the_next_ones(
    serve: StartServer,
) -> None:
    """One worker: the non-UTF-8-error AVIF (presigned, so only the worker judges it) ends
    rejected; the photos uploaded after it end processed, none retried or dead-lettered."""
    server = serve(workers=1)
    poison_id, posted = presigned_upload(server.client, F.avif_poison(), "p.avif", "image/avif")
    assert posted.status_code == 204, posted.text
    good = [upload(server.client, jpeg_bytes((400, 300), seed=s), f"{s}.jpg").json()["id"]
            for s in range(3)]  # fmt: skip
    records = server.wait_terminal([poison_id, *good], timeout_s=60)
    poison = records.pop(poison_id)
    assert (poison["status"], poison["error"]["code"]) == ("rejected", "corrupt")
    assert {r["status"] for r in records.values()} == {"processed"}
    assert server.client.get("/health").json()["queue"]["dead"] == 0


def _burning(pid: int) -> bool:
    before = cpu_ticks(pid)
    time.sleep(0.2)
    return cpu_ticks(pid) - before >= 3


def test_killed_service_loses_no_image_after_restart(serve: StartServer) -> None:
    """SIGKILL of the whole process tree mid-batch; a new serve on the same data finishes all."""
    first = serve(visibility_s=3, workers=2)
    ids = _upload_photos(first, range(100, 100 + PHOTOS))

    def midway() -> dict[str, int] | None:
        statuses: dict[str, int] = {}
        for image_id, record in first.records().items():
            if image_id in ids:
                statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        return statuses if statuses.get("processing") else None

    workers = first.worker_pids()
    before = wait_for(midway, 60, first.log_tail, interval_s=0.05)
    first.kill()
    assert sum(n for s, n in before.items() if s not in TERMINAL) > 0
    assert workers
    assert first.process is not None
    assert not any(pid_alive(pid) for pid in [first.process.pid, *workers])

    started = time.monotonic()
    second = serve(data_dir=first.data_dir, visibility_s=3, workers=2)
    _assert_processed_once(second, ids)
    strays = sum(
        name.startswith(".tmp-") for i in ids for name in second.processed_files(i)
    )  # temp files of writes cut short by the kill: swept when the second serve starts
    assert strays == 0
    print(
        f"\n[e2e faults] killed with {before}; restart finished the rest in "
        f"{time.monotonic() - started:.1f} s; {strays} stray temp files left"
    )


def test_redelivered_event_changes_nothing(serve: StartServer) -> None:
    """The same S3 event delivered twice more: one record, processed_at and renditions unchanged."""
    server = serve(workers=2)
    data = jpeg_bytes((1600, 1200), seed=77)
    response = upload(server.client, data, "twice.jpg")
    assert response.status_code == 202
    image_id = response.json()["id"]
    before = server.wait_terminal([image_id], timeout_s=60)[image_id]
    assert before["status"] == "processed"
    etags = {r["url"]: server.client.get(r["url"]).headers["etag"] for r in before["renditions"]}

    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    with SqliteQueue(server.data_dir / "queue.db") as queue:
        for _ in range(2):
            queue.send(object_created_event("raw", f"raw/{image_id}", len(data), etag))

    def drained() -> bool:
        stats: dict[str, float] = server.client.get("/health").json()["queue"]
        return stats["visible"] == stats["in_flight"] == 0

    wait_for(drained, 60, server.log_tail)
    after = server.record(image_id)
    assert after["status"] == "processed"
    assert after["processed_at"] == before["processed_at"]
    assert after["renditions"] == before["renditions"]
    assert {url: server.client.get(url).headers["etag"] for url in etags} == etags
    assert list(server.records()) == [image_id]
    assert server.rendition_files(image_id) == RENDITION_FILES
    assert server.client.get("/health").json()["queue"]["dead"] == 0


# -- dead letters ------------------------------------------------------------------------------

POISON = {"Records": "garbage"}


@dataclass
class Poisoned:
    """A server given a poison message and a job for an image whose original cannot be read."""

    server: Server
    poison_id: str
    sent_at: float  # time.time() of the send (the queue's clock)
    failing_id: str  # the image whose job keeps failing


@dataclass
class DeadLetters:
    """The same server once both jobs have died."""

    server: Server
    poison: Message  # as found in the dead-letter table
    poison_s: float  # from send to its appearance among the dead letters
    failing: dict[str, Any]  # the record of the image whose job kept failing


@pytest.fixture(scope="module", autouse=True)
def poisoned(serve_module: StartServer) -> Poisoned:
    """Start the dead-letter scenario (visibility 1 s, one worker) when this module starts.

    Dying takes five receives spaced by the worker's retry backoff - about a minute - so the
    clock runs while the other fault tests work, and ``dead_letters`` waits only for the rest.
    """
    server = serve_module(visibility_s=1, workers=1)
    ticket = server.client.post(
        "/uploads", json={"filename": "unreadable.jpg", "content_type": "image/jpeg", "bytes": 1000}
    ).json()
    key = ticket["upload"]["fields"]["key"]
    (server.raw_dir / ticket["id"]).mkdir()  # a folder where the original should be: reads fail
    with SqliteQueue(server.data_dir / "queue.db") as queue:
        sent_at = time.time()
        poison_id = queue.send(POISON)
        queue.send(object_created_event("raw", key, 1000, ""))
    return Poisoned(server, poison_id, sent_at, ticket["id"])


@pytest.fixture(scope="module")
def dead_letters(poisoned: Poisoned) -> DeadLetters:
    """Wait until the poison message is dead-lettered and the failing image is terminal."""
    server = poisoned.server
    deadline_s = 150  # 5 receives, each retried after min(visibility, backoff) = 1 s
    with SqliteQueue(server.data_dir / "queue.db") as queue:

        def poison_dead() -> Message | None:
            return next((m for m in queue.dead_letters() if m.id == poisoned.poison_id), None)

        poison = wait_for(poison_dead, deadline_s, server.log_tail, interval_s=0.2)
    # When it died, by the queue's own record (the tests before this one take their time).
    with closing(sqlite3.connect(server.data_dir / "queue.db")) as conn:
        (failed_at,) = conn.execute(
            "SELECT failed_at FROM dead_letters WHERE id = ?", (poisoned.poison_id,)
        ).fetchone()
    poison_s = failed_at - poisoned.sent_at
    failing = server.wait_terminal([poisoned.failing_id], deadline_s)[poisoned.failing_id]
    print(f"\n[e2e faults] poison message dead-lettered {poison_s:.1f} s after it was sent")
    return DeadLetters(server, poison, poison_s, failing)


def test_poison_message_is_dead_lettered_after_exactly_5_receives(
    dead_letters: DeadLetters,
) -> None:
    """A malformed body ends in the dead-letter table, received exactly 5 times, body intact."""
    assert dead_letters.poison.receive_count == 5
    assert dead_letters.poison.body == POISON


def test_server_keeps_serving_after_poison(dead_letters: DeadLetters) -> None:
    """After dead-lettering, /health reports the dead jobs and new uploads still get processed."""
    server = dead_letters.server
    health = server.client.get("/health")
    assert health.status_code == 200
    assert health.json()["queue"]["dead"] >= 1  # the poison stays for an operator to see
    response = upload(server.client, jpeg_bytes((300, 200), seed=5), "after.jpg")
    assert response.status_code == 202
    image_id = response.json()["id"]
    assert server.wait_terminal([image_id], timeout_s=60)[image_id]["status"] == "processed"


def test_image_of_a_dead_lettered_job_ends_failed(dead_letters: DeadLetters) -> None:
    """The image whose job was dead-lettered is marked failed (internal error), not left pending."""
    record = dead_letters.failing
    assert record["status"] == "failed"
    assert record["error"]["code"] == "internal"
    assert record["renditions"] == []


def test_poison_message_dies_within_its_visibility_budget(dead_letters: DeadLetters) -> None:
    """With a 1 s visibility timeout, 5 failed receives take seconds, not the minute that
    exponential backoff past the visibility timeout would take (2+4+8+16+30 s)."""
    # Generous: other servers of this module compete for the 2 CPUs while it runs.
    assert dead_letters.poison_s < 45


def _locked(database: Path) -> bool:
    """Whether some process holds ``database``'s write lock right now."""
    conn = sqlite3.connect(database, timeout=0.1, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()
    return False


@contextmanager
def _workers_paused(server: Server) -> Iterator[None]:
    """SIGSTOP every worker at a moment it holds no SQLite lock; SIGCONT them afterwards."""
    databases = (server.data_dir / "queue.db", server.data_dir / "imgpipe.db")
    for _attempt in range(100):
        pids = server.worker_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        if pids and not any(_locked(db) for db in databases):
            break
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    else:
        raise AssertionError("could not pause the workers outside a transaction")
    try:
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_failed_image_can_be_reprocessed_once_its_fault_is_fixed(
    dead_letters: DeadLetters,
) -> None:
    """With its original readable again, reprocessing takes a failed image to processed."""
    server, image_id = dead_letters.server, dead_letters.failing["id"]
    assert server.wait_terminal([image_id], timeout_s=30)[image_id]["status"] == "failed"
    (server.raw_dir / image_id).rmdir()
    (server.raw_dir / image_id).write_bytes(jpeg_bytes((640, 480), seed=11))  # restored
    with _workers_paused(server):  # the job waits in the queue across a housekeeping round
        response = server.client.post(f"/images/{image_id}/reprocess")
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        time.sleep(3)
        assert server.record(image_id)["status"] == "pending"  # not failed again meanwhile
    record = server.wait_terminal([image_id], timeout_s=60)[image_id]
    assert record["status"] == "processed", record["error"]
