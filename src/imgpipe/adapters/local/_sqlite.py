"""What the SQLite adapters share: per-thread connections, explicit transactions, WAL, errors.

SQLite connections must not be used by two threads at once, and the local server serves
requests from a thread pool, so each thread gets its own connection to the file. Connections
run in autocommit mode (``isolation_level=None``): a write that must be atomic says so with
``transaction()``, a ``BEGIN IMMEDIATE`` that takes the write lock up front, so a read-then-write
never interleaves with another process's. Connections of threads that have ended are closed
when the next one opens; ``close()`` closes them all (using the file again reopens lazily).
Every ``sqlite3`` failure leaves as an ``InternalError`` that names the file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from imgpipe.errors import InternalError

__all__ = ["Connections"]

_RETRY_S = 0.02


class Connections:
    """This thread's connection to the SQLite file at ``path``, and transactions on it."""

    def __init__(
        self, path: Path, label: str, busy_timeout_ms: int, pragmas: Sequence[str] = ()
    ) -> None:
        """``label`` names the file in errors ("queue jobs at ..."); ``pragmas`` run on every
        new connection (``PRAGMA synchronous = FULL``, say)."""
        self.path, self.label = Path(path), label
        self.busy_timeout_ms, self.pragmas = busy_timeout_ms, tuple(pragmas)
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (autocommit: each statement is its own transaction)."""
        with self._errors():
            yield self._conn()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front; rolled back if the body raises."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:  # the body or the COMMIT failed
                    conn.execute("ROLLBACK")

    def enable_wal(self) -> None:
        """Switch the file to WAL (a property of the file, kept in it).

        Switching a brand-new file while other processes open it at the same moment fails with
        "database is locked" *without* waiting on busy_timeout, so this retries for as long as
        the busy timeout would have waited."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        with self.connection() as conn:
            while True:
                try:
                    mode: str = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                except sqlite3.OperationalError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(_RETRY_S)
                    continue
                if mode != "wal":
                    raise InternalError(f"{self.label} cannot use WAL (journal mode {mode})")
                return

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        thread = threading.current_thread()
        with self._lock:
            conn = self._connections.get(thread)
            if conn is not None:
                return conn
            for gone in [t for t in self._connections if not t.is_alive()]:
                self._connections.pop(gone).close()
            # check_same_thread=False only so close() may close it from another thread; each
            # connection is otherwise used by the thread that opened it.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)  # fmt: skip
            self._connections[thread] = conn
        for pragma in self.pragmas:
            conn.execute(pragma)
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate sqlite3 errors; ours (conflicts, not found) pass through untouched."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # primary code of extended codes
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise InternalError(
                    f"{self.label} stayed locked for more than {self.busy_timeout_ms} ms: "
                    "another process holds a long write"
                ) from exc
            raise InternalError(f"{self.label} failed: {exc}") from exc
