"""The ``Queue`` port on one SQLite file: durable, shared by every process that opens the file.

SQS semantics as in ``imgpipe.testing.InMemoryQueue``: visibility timeouts, receive counts,
dead letters after ``max_receives`` and long polling. Each receive claims its messages in one
``BEGIN IMMEDIATE`` transaction, so two processes never get the same delivery.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from imgpipe.adapters.local._sqlite import Connections
from imgpipe.model import Message

__all__ = ["SqliteQueue"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL, sent_at REAL NOT NULL,
    visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, sent_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL,
    receive_count INTEGER NOT NULL, failed_at REAL NOT NULL);
"""
_POLL_FIRST_S = 0.02  # how soon a waiting receive first looks for sends from other processes
_POLL_MAX_S = 0.25
_BUSY_TIMEOUT_MS = 5000


class _Doorbell:
    """Rung after every change that can make a message receivable, for waiters in this process.

    The ring counter closes the gap between "found nothing" and "started waiting": a waiter
    passes the count it saw before looking, and returns at once if a ring came in between.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.rings = 0

    def ring(self) -> None:
        with self._cond:
            self.rings += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for a ring after ``seen``; return whether one came."""
        with self._cond:
            return self._cond.wait_for(lambda: self.rings != seen, timeout)


_DOORBELLS: dict[tuple[str, str], _Doorbell] = {}
_DOORBELLS_LOCK = threading.Lock()


def _doorbell(path: Path, name: str) -> _Doorbell:
    # Shared by every instance on the same file and queue, so a send through one instance
    # wakes a long poll through another in the same process.
    with _DOORBELLS_LOCK:
        return _DOORBELLS.setdefault((str(path.resolve()), name), _Doorbell())


class SqliteQueue:
    """A durable queue with SQS semantics in a SQLite file (WAL; safe across threads and processes).

    Contract (the ``Queue`` port): at-least-once delivery, oldest first. ``receive`` hides each
    returned message for ``visibility_s`` and increments its receive count; a visible message
    already received ``max_receives`` times moves to the dead letters instead of being returned.
    ``receive(wait_s=...)`` long-polls without spinning. ``delete`` and ``change_visibility``
    act only on the receipt of the latest receive; a stale receipt is a no-op. ``send`` is
    durable once it returns. ``clock`` gives wall-clock seconds (shared by processes);
    ``wait_s`` is always real time. sqlite3 failures raise ``InternalError``.

    The file's folder must exist. Connections and transactions come from
    ``_sqlite.Connections`` (one per thread); ``close()`` closes them all.
    """

    def __init__(
        self,
        path: Path,
        name: str = "jobs",
        visibility_s: float = 30.0,
        max_receives: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.visibility_s = visibility_s
        self.max_receives = max_receives
        self._clock = clock
        self._db = Connections(
            self.path,
            f"queue {name} at {self.path}",
            _BUSY_TIMEOUT_MS,
            ["PRAGMA synchronous = FULL"],
        )  # a returned send survives a power cut
        self._bell = _doorbell(self.path, name)
        try:
            self._db.enable_wal()
            with (
                self._db.transaction() as conn
            ):  # IF NOT EXISTS, serialised: safe for racing starters
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
        except BaseException:
            self.close()
            raise

    def send(self, body: Mapping[str, Any]) -> str:
        """Enqueue a JSON-serialisable ``body``; return the message id once it is committed."""
        message_id = uuid.uuid4().hex
        encoded, now = json.dumps(dict(body)), self._clock()
        with self._db.connection() as conn:  # one statement: atomic and committed on return
            conn.execute(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?,?,?,?,?)",
                (message_id, self.name, encoded, now, now),
            )
        self._bell.ring()
        return message_id

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages, oldest first; wait up to ``wait_s`` for one."""
        hide_s = self.visibility_s if visibility_s is None else visibility_s
        deadline = time.monotonic() + wait_s
        poll_s = _POLL_FIRST_S
        while True:
            seen = self._bell.rings
            found, next_visible_at = self._take(max_messages, hide_s)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            # Other processes cannot ring our doorbell, so also look again after a backoff.
            timeout = min(remaining, poll_s)
            if next_visible_at is not None:
                timeout = min(timeout, max(next_visible_at - self._clock(), 0.001))
            rang = self._bell.wait(seen, timeout)
            poll_s = _POLL_FIRST_S if rang else min(poll_s * 2, _POLL_MAX_S)

    def _take(self, max_messages: int, hide_s: float) -> tuple[list[Message], float | None]:
        """Claim visible messages; also return when the next hidden one becomes visible."""
        out: list[Message] = []
        with self._db.transaction() as conn:
            now = self._clock()
            after: tuple[float, int] = (float("-inf"), -1)
            while len(out) < max_messages:
                # Keyset paging, so a message just claimed with a zero timeout is not seen twice.
                rows = conn.execute(
                    "SELECT rowid, id, body, receive_count, sent_at FROM messages"
                    " WHERE queue = ? AND visible_at <= ? AND (sent_at, rowid) > (?, ?)"
                    " ORDER BY sent_at, rowid LIMIT ?",
                    (self.name, now, *after, max_messages - len(out)),
                ).fetchall()
                if not rows:
                    break
                for rowid, message_id, body, count, sent_at in rows:
                    after = (sent_at, rowid)
                    if count >= self.max_receives:
                        conn.execute(
                            "INSERT OR REPLACE INTO dead_letters SELECT id, queue, body,"
                            " receive_count, ? FROM messages WHERE rowid = ?",
                            (now, rowid),
                        )
                        conn.execute("DELETE FROM messages WHERE rowid = ?", (rowid,))
                        continue
                    receipt = f"{message_id}:{uuid.uuid4().hex}"
                    conn.execute(
                        "UPDATE messages SET receive_count = ?, receipt = ?, visible_at = ?"
                        " WHERE rowid = ?",
                        (count + 1, receipt, now + hide_s, rowid),
                    )
                    out.append(Message(message_id, receipt, json.loads(body), count + 1))
            (next_visible_at,) = conn.execute(
                "SELECT MIN(visible_at) FROM messages WHERE queue = ? AND visible_at > ?",
                (self.name, now),
            ).fetchone()
        return out, next_visible_at

    def delete(self, receipt: str) -> None:
        """Delete the message if ``receipt`` is its latest; otherwise do nothing."""
        with self._db.connection() as conn:
            conn.execute(
                "DELETE FROM messages WHERE id = ? AND queue = ? AND receipt = ?",
                (receipt.split(":", 1)[0], self.name, receipt),
            )

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        """Make the message visible ``visibility_s`` from now if ``receipt`` is its latest."""
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE messages SET visible_at = ? WHERE id = ? AND queue = ? AND receipt = ?",
                (self._clock() + visibility_s, receipt.split(":", 1)[0], self.name, receipt),
            )
        self._bell.ring()

    def dead_letters(self) -> list[Message]:
        """Messages that exhausted their receives, in the order they died (receipt ``""``)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, body, receive_count FROM dead_letters WHERE queue = ?"
                " ORDER BY failed_at, rowid",
                (self.name,),
            ).fetchall()
        return [
            Message(message_id, "", json.loads(body), count) for message_id, body, count in rows
        ]

    def redrive_dead_letters(self) -> int:
        """Send every dead letter back to the queue (receive count 0); return how many moved."""
        with self._db.transaction() as conn:
            now = self._clock()
            moved = conn.execute(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at)"
                " SELECT id, queue, body, ?, ? FROM dead_letters WHERE queue = ?"
                " ORDER BY failed_at, rowid",
                (now, now, self.name),
            ).rowcount
            conn.execute("DELETE FROM dead_letters WHERE queue = ?", (self.name,))
        self._bell.ring()
        return moved

    def stats(self) -> dict[str, float]:
        """Counts of visible, in-flight and dead messages and the oldest live message's age."""
        with self._db.connection() as conn:
            now = self._clock()
            visible, in_flight, oldest, dead = conn.execute(
                "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0),"
                " MIN(sent_at), (SELECT COUNT(*) FROM dead_letters WHERE queue = ?)"
                " FROM messages WHERE queue = ?",
                (now, now, self.name, self.name),
            ).fetchone()
        age = 0.0 if oldest is None else max(now - oldest, 0.0)
        return {"visible": visible, "in_flight": in_flight, "dead": dead, "oldest_age_s": age}

    def close(self) -> None:
        """Close every thread's connection."""
        self._db.close()

    def __enter__(self) -> SqliteQueue:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
