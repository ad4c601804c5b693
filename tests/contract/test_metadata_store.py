"""The ``MetadataStore`` contract, run against every adapter; then the SQLite adapter's promises."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import aws_support
from imgpipe.adapters.local.sqlite_metadata_store import SqliteMetadataStore
from imgpipe.errors import ConflictError, InternalError, NotFoundError
from imgpipe.model import ImageRecord, Status
from imgpipe.ports import MetadataStore
from imgpipe.testing import InMemoryMetadataStore


@contextmanager
def _memory(_: Path) -> Iterator[MetadataStore]:
    yield InMemoryMetadataStore()


@contextmanager
def _local(tmp: Path) -> Iterator[MetadataStore]:
    with SqliteMetadataStore(tmp / "imgpipe.db") as store:
        yield store


# One line per adapter.
_BACKENDS: dict[str, Callable[[Path], AbstractContextManager[MetadataStore]]] = {
    "memory": _memory,
    "local": _local,
    "aws": lambda _: aws_support.dynamodb_store(),  # a fresh table on the moto server
}


@pytest.fixture(params=aws_support.backend_params(_BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    with _BACKENDS[request.param](tmp_path) as built:
        yield built


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    with SqliteMetadataStore(tmp_path / "imgpipe.db") as built:
        yield built


def _id(n: int) -> str:
    return f"{n:028x}"


def _record(
    n: int,
    status: Status = "pending",
    created_at: str | None = None,
    tags: tuple[str, ...] = (),
    sha256: str | None = None,
) -> ImageRecord:
    return ImageRecord(
        id=_id(n),
        status=status,
        raw_key=f"raw/{_id(n)}",
        created_at=created_at or f"2025-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
        filename=f"photo-{n}.jpg",
        sha256=sha256,
        metadata={"camera": {"make": "Fujifilm"}, "exif": {"iso": 200}},
        tags=[{"name": t, "confidence": 0.875, "source": "local"} for t in tags],
    )


def _ids(store: MetadataStore, status: Status | None = None, tag: str | None = None) -> list[str]:
    """Every id the store lists with these filters, following cursors through all pages."""
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list(status=status, tag=tag, limit=7, cursor=cursor)
        seen.extend(r.id for r in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_create_then_get_returns_the_record(store: MetadataStore) -> None:
    """A created record comes back from get equal in every field."""
    record = _record(1, tags=("cat",), sha256="ab" * 32)
    store.create(record)
    assert store.get(record.id) == record


def test_get_unknown_is_none(store: MetadataStore) -> None:
    """get of an id never created is None."""
    assert store.get(_id(404)) is None


def test_create_existing_id_conflicts(store: MetadataStore) -> None:
    """A second create with the same id raises ConflictError and keeps the first record."""
    first = _record(1)
    store.create(first)
    with pytest.raises(ConflictError):
        store.create(_record(1, status="failed"))
    assert store.get(first.id) == first


def test_update_applies_changes_when_status_is_expected(store: MetadataStore) -> None:
    """update with a matching expected status applies the changes and returns the new record."""
    store.create(_record(1))
    thumb = {"name": "thumb", "format": "webp", "width": 320, "height": 213, "bytes": 9000}
    renditions = [{**thumb, "key": f"processed/{_id(1)}/thumb.webp"}]
    updated = store.update(
        _id(1),
        frozenset({"pending", "processing"}),
        {"status": "processed", "width": 6000, "renditions": renditions},
    )
    assert (updated.status, updated.width, updated.renditions) == ("processed", 6000, renditions)
    assert store.get(_id(1)) == updated


def test_update_conflicts_when_status_is_not_expected(store: MetadataStore) -> None:
    """update from a status not in expected raises ConflictError and changes nothing."""
    record = _record(1, status="processed")
    store.create(record)
    with pytest.raises(ConflictError):
        store.update(_id(1), frozenset({"pending"}), {"status": "processing"})
    assert store.get(_id(1)) == record


def test_update_if_generation_applies_only_to_that_generation(store: MetadataStore) -> None:
    """With ``if_generation``, a record on another generation conflicts and is unchanged; on
    that generation the update applies (the dead-letter rule of reprocess)."""
    store.create(_record(1))
    pending: frozenset[Status] = frozenset({"pending"})
    newer = store.update(_id(1), pending, {"generation": 2})
    with pytest.raises(ConflictError, match="generation"):
        store.update(_id(1), pending, {"status": "failed"}, if_generation=1)
    assert store.get(_id(1)) == newer
    failed = store.update(_id(1), pending, {"status": "failed"}, if_generation=2)
    assert (failed.status, failed.generation) == ("failed", 2)
    assert store.get(_id(1)) == failed


def test_update_unknown_raises_not_found(store: MetadataStore) -> None:
    """update of an id never created raises NotFoundError."""
    with pytest.raises(NotFoundError):
        store.update(_id(404), frozenset({"pending"}), {"status": "processing"})


def test_list_is_newest_first_with_id_breaking_ties(store: MetadataStore) -> None:
    """list orders by created_at descending, then by id descending."""
    store.create(_record(1, created_at="2025-01-01T00:00:00Z"))
    store.create(_record(3, created_at="2025-01-02T00:00:00Z"))
    store.create(_record(2, created_at="2025-01-02T00:00:00Z"))
    store.create(_record(4, created_at="2024-12-31T00:00:00Z"))
    assert [r.id for r in store.list().items] == [_id(3), _id(2), _id(1), _id(4)]


def test_pagination_visits_every_record_once(store: MetadataStore) -> None:
    """25 records at 7 a page come back as 7+7+7+4, in order, without duplicates or gaps."""
    for n in range(25):
        store.create(_record(n))
    sizes: list[int] = []
    cursor = None
    while True:
        page = store.list(limit=7, cursor=cursor)
        sizes.append(len(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [7, 7, 7, 4]
    assert _ids(store) == [_id(n) for n in reversed(range(25))]


def test_last_full_page_has_no_cursor(store: MetadataStore) -> None:
    """When the records end exactly at a page boundary the last page has no next cursor."""
    for n in range(14):
        store.create(_record(n))
    first = store.list(limit=7)
    assert first.next_cursor is not None
    second = store.list(limit=7, cursor=first.next_cursor)
    assert (len(second.items), second.next_cursor) == (7, None)


def test_records_created_behind_the_cursor_do_not_shift_pages(store: MetadataStore) -> None:
    """A cursor is a position, not an offset: newer records never repeat older ones."""
    for n in range(10, 20):
        store.create(_record(n))
    first = store.list(limit=5)
    store.create(_record(30))
    assert first.next_cursor is not None
    second = store.list(limit=5, cursor=first.next_cursor)
    assert [r.id for r in second.items] == [_id(n) for n in range(14, 9, -1)]


def test_list_filters_by_status(store: MetadataStore) -> None:
    """list(status=...) returns only records in that status, across pages."""
    statuses: list[Status] = ["pending", "processed", "failed"]
    for n in range(25):
        store.create(_record(n, status=statuses[n % 3]))
    expected = [_id(n) for n in reversed(range(25)) if n % 3 == 1]
    assert _ids(store, status="processed") == expected


def test_list_filters_by_tag(store: MetadataStore) -> None:
    """list(tag=...) returns only records carrying that tag, alone or with a status filter."""
    for n in range(25):
        tags = ("landscape", "color:blue") if n % 2 else ("portrait",)
        store.create(_record(n, status="processed" if n % 4 == 1 else "pending", tags=tags))
    assert _ids(store, tag="landscape") == [_id(n) for n in reversed(range(25)) if n % 2]
    assert _ids(store, tag="landscape", status="processed") == [
        _id(n) for n in reversed(range(25)) if n % 4 == 1
    ]
    assert _ids(store, tag="nothing") == []


def test_tag_filter_follows_updates_and_deletes(store: MetadataStore) -> None:
    """Tags added or removed by update, and records deleted, show in list(tag=...) at once."""
    store.create(_record(1, tags=("cat",)))
    store.create(_record(2))
    cat = {"name": "cat", "confidence": 1.0, "source": "local"}
    store.update(_id(2), frozenset({"pending"}), {"tags": [cat]})
    store.update(_id(1), frozenset({"pending"}), {"tags": []})
    assert _ids(store, tag="cat") == [_id(2)]
    store.delete(_id(2))
    assert _ids(store, tag="cat") == []


def test_invalid_cursor_is_rejected(store: MetadataStore) -> None:
    """A cursor the store did not make raises ValueError."""
    for bad in ("not a cursor", "WzEsMl0", "e30"):
        with pytest.raises(ValueError):
            store.list(cursor=bad)


def test_find_processed_by_sha256_returns_the_oldest_processed(store: MetadataStore) -> None:
    """Only processed records count, and the oldest of them wins."""
    sha = "cd" * 32
    store.create(_record(1, status="pending", sha256=sha))
    store.create(_record(2, status="processed", sha256=sha, created_at="2025-03-01T00:00:00Z"))
    store.create(_record(3, status="processed", sha256=sha, created_at="2025-02-01T00:00:00Z"))
    store.create(_record(4, status="processed", sha256="ef" * 32))
    found = store.find_processed_by_sha256(sha)
    assert found is not None
    assert found.id == _id(3)


def test_find_processed_by_sha256_none_without_a_processed_match(store: MetadataStore) -> None:
    """A hash seen only on unprocessed records, or never seen, finds nothing."""
    store.create(_record(1, status="failed", sha256="cd" * 32))
    assert store.find_processed_by_sha256("cd" * 32) is None
    assert store.find_processed_by_sha256("00" * 32) is None


def test_delete_is_idempotent(store: MetadataStore) -> None:
    """delete removes the record from get and list; deleting again or an unknown id is a no-op."""
    store.create(_record(1))
    store.create(_record(2))
    store.delete(_id(1))
    store.delete(_id(1))
    store.delete(_id(404))
    assert store.get(_id(1)) is None
    assert _ids(store) == [_id(2)]


def test_exactly_one_concurrent_claim_wins(store: MetadataStore) -> None:
    """Two threads racing pending -> processing: one gets the record, the other ConflictError."""

    def claim(image_id: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
        barrier.wait()
        try:
            store.update(image_id, frozenset({"pending"}), {"status": "processing"})
            outcomes.append("won")
        except ConflictError:
            outcomes.append("lost")

    for n in range(20):
        store.create(_record(n))
        barrier, outcomes = threading.Barrier(2), list[str]()
        args = (_id(n), barrier, outcomes)
        threads = [threading.Thread(target=claim, args=args) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["lost", "won"]
        record = store.get(_id(n))
        assert record is not None
        assert record.status == "processing"


_BASE_HASH = 0x9F3A_51C7_0E62_B48D


def _flipped(flips: int, salt: int = 0) -> str:
    """The base hash with ``flips`` bits flipped, spread round-robin over the four bands (the
    hard case for a band index: no band is left intact once ``flips >= 4``); ``salt`` rotates
    which bits, so that several hashes at one distance differ."""
    mask = 0
    for k in range(flips):
        band, offset = k % 4, (k // 4 + salt) % 16
        mask |= 1 << (63 - (band * 16 + offset))
    return f"{_BASE_HASH ^ mask:016x}"


def _hashed(
    n: int, phash: str, status: Status = "processed", created_at: str | None = None
) -> ImageRecord:
    record = _record(n, status=status, created_at=created_at)
    return replace(record, metadata={**record.metadata, "phash": phash})


def _similar(
    store: MetadataStore, phash: str, max_distance: int, limit: int = 100
) -> list[tuple[str, int]]:
    return [(s.record.id, s.distance) for s in store.similar(phash, max_distance, limit)]


def test_similar_finds_exactly_the_records_within_the_distance(store: MetadataStore) -> None:
    """Every processed record within max_distance is found - including hashes that share no
    band with the probe - and nothing beyond it, closest first."""
    base = _flipped(0)
    for d in range(15):  # one record at each distance 0..14
        store.create(_hashed(d, _flipped(d)))
    store.create(_hashed(100, f"{~_BASE_HASH & (2**64 - 1):016x}"))  # 64 bits away
    for max_distance in (0, 3, 4, 10, 12):
        expected = [(_id(d), d) for d in range(max_distance + 1)]
        assert _similar(store, base, max_distance) == expected, max_distance


def test_similar_orders_ties_oldest_first_and_honours_limit(store: MetadataStore) -> None:
    """At one distance the oldest record comes first; ``limit`` keeps the closest."""
    store.create(_hashed(1, _flipped(5, salt=1), created_at="2025-03-01T00:00:00Z"))
    store.create(_hashed(2, _flipped(5, salt=2), created_at="2025-01-01T00:00:00Z"))
    store.create(_hashed(3, _flipped(2), created_at="2025-05-01T00:00:00Z"))
    store.create(_hashed(4, _flipped(5, salt=3), created_at="2025-02-01T00:00:00Z"))
    assert _similar(store, _flipped(0), 8) == [(_id(3), 2), (_id(2), 5), (_id(4), 5), (_id(1), 5)]
    assert _similar(store, _flipped(0), 8, limit=2) == [(_id(3), 2), (_id(2), 5)]


def test_similar_sees_only_processed_records_and_follows_changes(store: MetadataStore) -> None:
    """A record is findable while processed, under its current hash; reprocessing, a new hash
    and deletion show at once."""
    store.create(_hashed(1, _flipped(1)))
    store.create(_hashed(2, _flipped(2), status="pending"))  # a hash but not processed
    assert _similar(store, _flipped(0), 4) == [(_id(1), 1)]

    store.update(_id(1), frozenset({"processed"}), {"status": "pending"})  # reprocess
    assert _similar(store, _flipped(0), 4) == []
    far = f"{_BASE_HASH ^ (2**64 - 1):016x}"
    store.update(_id(1), frozenset({"pending"}),
                 {"status": "processed", "metadata": {"phash": far}})  # fmt: skip
    assert _similar(store, _flipped(0), 12) == []
    assert _similar(store, far, 0) == [(_id(1), 0)]

    store.update(_id(2), frozenset({"pending"}), {"status": "processed"})
    assert _similar(store, _flipped(0), 4) == [(_id(2), 2)]
    store.delete(_id(2))
    assert _similar(store, _flipped(0), 4) == []


def test_similar_refuses_a_distance_out_of_range(store: MetadataStore) -> None:
    for bad in (-1, 13):
        with pytest.raises(ValueError, match="max_distance"):
            store.similar(_flipped(0), bad, 10)


# --- the SQLite adapter's own promises ---------------------------------------------------------


def test_sqlite_records_survive_a_new_instance(tmp_path: Path) -> None:
    """A store opened on an existing file sees everything written by the previous one."""
    record = _record(1, tags=("cat",), sha256="ab" * 32, status="processed")
    with SqliteMetadataStore(tmp_path / "imgpipe.db") as first:
        first.create(record)
    with SqliteMetadataStore(tmp_path / "imgpipe.db") as second:
        assert second.get(record.id) == record
        assert [r.id for r in second.list(tag="cat").items] == [record.id]
        assert second.find_processed_by_sha256("ab" * 32) == record


def test_sqlite_stores_starting_at_once_migrate_once(tmp_path: Path) -> None:
    """Several stores opening a fresh file together all succeed and share one schema."""
    path = tmp_path / "imgpipe.db"
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_and_write(n: int) -> None:
        barrier.wait()
        try:
            with SqliteMetadataStore(path) as store:
                store.create(_record(n))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with SqliteMetadataStore(path) as store:
        assert len(store.list().items) == 6
    with closing(sqlite3.connect(path)) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert (version, mode) == (2, "wal")


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database migrated by a newer imgpipe raises InternalError instead of being misread."""
    path = tmp_path / "imgpipe.db"
    SqliteMetadataStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(InternalError, match="schema version 99"):
        SqliteMetadataStore(path)


def test_sqlite_locked_database_becomes_internal_error(tmp_path: Path) -> None:
    """A write blocked past the busy timeout raises InternalError saying the database is locked."""
    path = tmp_path / "imgpipe.db"
    with SqliteMetadataStore(path, busy_timeout_ms=50) as store:
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(InternalError, match="locked"):
                store.create(_record(1))
            blocker.execute("ROLLBACK")
        finally:
            blocker.close()
        store.create(_record(1))
        assert store.get(_id(1)) is not None


def test_sqlite_close_releases_every_threads_connection(sqlite_store: SqliteMetadataStore) -> None:
    """close() closes connections opened by other threads, and the store still works after."""
    sqlite_store.create(_record(1))
    worker = threading.Thread(target=sqlite_store.get, args=(_id(1),))
    worker.start()
    worker.join()
    sqlite_store.close()
    assert sqlite_store.get(_id(1)) is not None


def test_sqlite_limit_below_one_is_rejected(sqlite_store: SqliteMetadataStore) -> None:
    """A page size below 1 raises ValueError (SQLite would read LIMIT -1 as no limit)."""
    with pytest.raises(ValueError):
        sqlite_store.list(limit=0)


def test_sqlite_migration_indexes_the_records_processed_before_it(tmp_path: Path) -> None:
    """A version-1 database (before the band index) opens with its processed records findable."""
    path = tmp_path / "imgpipe.db"
    processed, pending = _hashed(1, _flipped(3)), _hashed(2, _flipped(1), status="pending")
    with closing(sqlite3.connect(path)) as conn:
        for statement in _v1_schema():
            conn.execute(statement)
        for record in (processed, pending, _record(3, status="processed")):
            doc = json.dumps(record.to_dict())
            row = (record.id, record.status, record.created_at, record.sha256, doc)
            conn.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?)", row)
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    with SqliteMetadataStore(path) as store:
        assert _similar(store, _flipped(0), 12) == [(_id(1), 3)]


def _v1_schema() -> tuple[str, ...]:
    from imgpipe.adapters.local import sqlite_metadata_store  # noqa: PLC0415

    return sqlite_metadata_store._MIGRATIONS[0]
