"""What the SQLite adapters share."""

from __future__ import annotations

import sqlite3
import time

__all__ = ["enable_wal"]

_RETRY_S = 0.02


def enable_wal(conn: sqlite3.Connection, wait_s: float) -> str:
    """Switch the file to WAL and return the journal mode now in force.

    Switching a brand-new file while other processes open it at the same moment fails with
    "database is locked" *without* waiting on busy_timeout, so retry for as long as the busy
    timeout would have waited.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            mode: str = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_S)
        else:
            return mode
