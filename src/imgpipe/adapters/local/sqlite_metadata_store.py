"""``MetadataStore`` in one SQLite file (stdlib ``sqlite3``, WAL mode).

Each record is kept whole as JSON in ``images.doc``; the columns beside it (``status``,
``created_at``, ``sha256``) exist only to be indexed, and ``image_tags`` (with ``created_at``
copied in, so a tag's newest-first page is one index range) serves ``list(tag=...)``;
``image_bands`` is the pHash band index of ``imgpipe.similarity`` (``similar``). Writes run
in ``BEGIN IMMEDIATE`` transactions, which take the write lock up front: a conditional ``update``
reads and writes under that lock, the equivalent of a DynamoDB condition expression.

Connections and transactions come from ``_sqlite.Connections`` (one per thread, shared with the
queue). The schema is versioned with ``PRAGMA user_version``; see ``_MIGRATIONS``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from imgpipe.adapters.local._sqlite import Connections
from imgpipe.cursors import decode_cursor, encode_cursor
from imgpipe.errors import ConflictError, InternalError, NotFoundError
from imgpipe.model import ImageRecord, Page, Status, refusal
from imgpipe.similarity import Matches, Similar, bands, distance, indexed_phash, probes, ranked

__all__ = ["SqliteMetadataStore"]

# Step N brings the schema from version N-1 to N. Steps are append-only: never edit a shipped one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE images (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sha256 TEXT,
            doc TEXT NOT NULL
        )""",
        "CREATE INDEX images_newest ON images (created_at DESC, id DESC)",
        "CREATE INDEX images_status ON images (status, created_at, id)",
        "CREATE INDEX images_sha256 ON images (sha256, status, created_at, id)",
        """CREATE TABLE image_tags (
            tag TEXT NOT NULL,
            created_at TEXT NOT NULL,
            image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            PRIMARY KEY (tag, created_at, image_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX image_tags_image ON image_tags (image_id)",
    ),
    (
        # The pHash band index of imgpipe.similarity: one row per band of a processed record,
        # with the whole hash beside it so candidates are checked without reading their docs.
        """CREATE TABLE image_bands (
            band INTEGER NOT NULL,
            value TEXT NOT NULL,
            image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
            phash TEXT NOT NULL,
            PRIMARY KEY (band, value, image_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX image_bands_image ON image_bands (image_id)",
        # Index the records processed before this version (indexed_phash's rule, in SQL).
        """INSERT INTO image_bands (band, value, image_id, phash)
        SELECT b.band, substr(p.phash, b.band * 4 + 1, 4), p.id, p.phash
        FROM (SELECT id, json_extract(doc, '$.metadata.phash') AS phash
              FROM images WHERE status = 'processed') AS p,
             (SELECT 0 AS band UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) AS b
        WHERE typeof(p.phash) = 'text' AND length(p.phash) = 16
          AND NOT p.phash GLOB '*[^0-9a-f]*'""",
    ),
)
_BY_ID = "SELECT doc FROM images WHERE id = ?"
_OLDEST_PROCESSED = (
    "SELECT doc FROM images WHERE sha256 = ? AND status = 'processed'"
    " ORDER BY created_at, id LIMIT 1"
)


class SqliteMetadataStore:
    """Image records in the SQLite database at ``path`` (created and migrated on first use)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._db = Connections(path, f"metadata database {path}", busy_timeout_ms, (
            "PRAGMA synchronous = NORMAL",  # durable at checkpoints; safe with WAL
            "PRAGMA foreign_keys = ON"))  # fmt: skip
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def create(self, record: ImageRecord) -> None:
        with self._db.transaction() as conn:
            inserted = conn.execute(
                "INSERT INTO images (id, status, created_at, sha256, doc) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                _row(record),
            ).rowcount
            if not inserted:
                raise ConflictError(f"image {record.id} already exists")
            _write_tags(conn, record)
            _write_bands(conn, record)

    def get(self, image_id: str) -> ImageRecord | None:
        with self._db.connection() as conn:
            found = conn.execute(_BY_ID, (image_id,)).fetchone()
        return _record(found[0]) if found else None

    def update(
        self,
        image_id: str,
        expected: frozenset[Status],
        changes: Mapping[str, Any],
        if_generation: int | None = None,
    ) -> ImageRecord:
        with self._db.transaction() as conn:
            found = conn.execute(_BY_ID, (image_id,)).fetchone()
            if found is None:
                raise NotFoundError(f"no image {image_id}")
            current = _record(found[0])
            if reason := refusal(current, expected, if_generation):
                raise ConflictError(reason)
            updated = replace(current, **changes)
            conn.execute(
                "UPDATE images SET status = ?, created_at = ?, sha256 = ?, doc = ? WHERE id = ?",
                (*_row(updated)[1:], image_id),
            )
            if updated.tags != current.tags or updated.created_at != current.created_at:
                _write_tags(conn, updated)
            if indexed_phash(updated) != indexed_phash(current):
                _write_bands(conn, updated)
        return updated

    def list(
        self,
        status: Status | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        after = decode_cursor(cursor) if cursor is not None else None
        where: list[str] = []
        params: list[str] = []
        if tag is None:
            source, order = "images i", ("i.created_at", "i.id")
        else:
            source = "image_tags t JOIN images i ON i.id = t.image_id"
            order = ("t.created_at", "t.image_id")  # walks the tag's index, newest first
            where.append("t.tag = ?")
            params.append(tag)
        if status is not None:
            where.append("i.status = ?")
            params.append(status)
        if after is not None:
            where.append(f"({order[0]}, {order[1]}) < (?, ?)")
            params.extend(after)
        sql = (
            f"SELECT i.doc FROM {source}"  # noqa: S608 - only our own fragments; values are bound
            f"{' WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY {order[0]} DESC, {order[1]} DESC LIMIT ?"
        )
        with self._db.connection() as conn:
            rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        items = [_record(doc) for (doc,) in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    def find_processed_by_sha256(self, sha256: str) -> ImageRecord | None:
        with self._db.connection() as conn:
            found = conn.execute(_OLDEST_PROCESSED, (sha256,)).fetchone()
        return _record(found[0]) if found else None

    def similar(self, phash: str, max_distance: int, limit: int) -> Matches:
        by_band: dict[int, list[str]] = {}
        for band, value in probes(phash, max_distance):
            by_band.setdefault(band, []).append(value)
        # One query over the band index per band (each an index range per value); a record
        # found in several bands counts once.
        sql = "SELECT image_id, phash FROM image_bands WHERE band = ? AND value IN ({})"
        hits: dict[str, int] = {}
        with self._db.connection() as conn:
            for band, values in by_band.items():
                rows = conn.execute(sql.format(",".join("?" * len(values))), (band, *values))
                for image_id, candidate in rows:
                    if image_id not in hits and (d := distance(candidate, phash)) <= max_distance:
                        hits[image_id] = d
            if not hits:
                return []
            closest = sorted(hits, key=hits.__getitem__)
            # Ties on distance are broken by age, so read every record as close as the last
            # one kept (the band rows and the records are one transaction's writes).
            cut = hits[closest[min(limit, len(closest)) - 1]]
            wanted = [i for i in closest if hits[i] <= cut]
            docs = conn.execute(
                f"SELECT doc FROM images WHERE id IN ({','.join('?' * len(wanted))})",  # noqa: S608
                wanted,
            ).fetchall()
        found = (_record(doc) for (doc,) in docs)
        return ranked([Similar(record, hits[record.id]) for record in found], limit)

    def delete(self, image_id: str) -> None:
        with self._db.connection() as conn:  # one statement; tags go by ON DELETE CASCADE
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))

    def close(self) -> None:
        """Close every connection; the store reopens lazily if it is used again."""
        self._db.close()

    def __enter__(self) -> SqliteMetadataStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        """Bring the schema up to date; safe when several processes start at once, because the
        version is read and advanced inside one ``BEGIN IMMEDIATE`` transaction."""
        self._db.enable_wal()
        with self._db.transaction() as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise InternalError(
                    f"metadata database {self.path} has schema version {version}; this imgpipe "
                    f"knows only up to {len(_MIGRATIONS)} - upgrade imgpipe"
                )
            for step in _MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")


def _row(record: ImageRecord) -> tuple[str, str, str, str | None, str]:
    doc = json.dumps(record.to_dict(), separators=(",", ":"))
    return record.id, record.status, record.created_at, record.sha256, doc


def _record(doc: str) -> ImageRecord:
    return ImageRecord.from_dict(json.loads(doc))


def _write_bands(conn: sqlite3.Connection, record: ImageRecord) -> None:
    conn.execute("DELETE FROM image_bands WHERE image_id = ?", (record.id,))
    if (phash := indexed_phash(record)) is not None:
        conn.executemany(
            "INSERT INTO image_bands (band, value, image_id, phash) VALUES (?, ?, ?, ?)",
            [(band, value, record.id, phash) for band, value in enumerate(bands(phash))],
        )


def _write_tags(conn: sqlite3.Connection, record: ImageRecord) -> None:
    conn.execute("DELETE FROM image_tags WHERE image_id = ?", (record.id,))
    names = {tag["name"] for tag in record.tags}
    conn.executemany(
        "INSERT INTO image_tags (tag, created_at, image_id) VALUES (?, ?, ?)",
        [(name, record.created_at, record.id) for name in sorted(names)],
    )
