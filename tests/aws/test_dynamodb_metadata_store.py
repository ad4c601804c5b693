"""The DynamoDB store's own promises: its table layout, tag items, locking and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

import aws_support
from imgpipe.adapters.aws.dynamodb_metadata_store import DynamoDbMetadataStore
from imgpipe.adapters.aws.dynamodb_table import EXPIRES, SHARDS, shard_of
from imgpipe.errors import ConflictError, InternalError
from imgpipe.model import ImageRecord, Status

pytestmark = pytest.mark.aws

PENDING: frozenset[Status] = frozenset({"pending"})
ANY_STATUS: frozenset[Status] = frozenset({"pending", "processing", "processed"})


def _id(n: int) -> str:
    return f"{n:028x}"


def _record(n: int, tags: tuple[str, ...] = (), **fields: Any) -> ImageRecord:
    return ImageRecord(
        id=_id(n),
        status=fields.pop("status", "pending"),
        raw_key=f"raw/{_id(n)}",
        created_at=fields.pop("created_at", f"2025-01-01T00:00:{n:02d}Z"),
        tags=[{"name": t, "confidence": 0.5, "source": "local"} for t in tags],
        **fields,
    )


@pytest.fixture
def db() -> Any:
    return aws_support.client("dynamodb")


@pytest.fixture
def store(db: Any) -> Iterator[DynamoDbMetadataStore]:
    with aws_support.make_table() as table:
        yield DynamoDbMetadataStore(db, table)


def _items(db: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the table by (pk, sk), attribute values unwrapped."""
    found = {}
    for page in db.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            plain = {k: next(iter(v.values())) for k, v in item.items()}
            found[plain["pk"], plain["sk"]] = plain
    return found


def test_record_and_tag_items_are_laid_out_as_documented(
    store: DynamoDbMetadataStore, db: Any
) -> None:
    """One IMG item with the indexed attributes, and one small TAG item per tag name."""
    record = _record(1, tags=("cat", "color:blue", "cat"), sha256="ab" * 32)
    store.create(record)
    items = _items(db, store.table)
    assert set(items) == {
        (f"IMG#{record.id}", "IMG"),
        ("TAG#cat", f"{record.created_at}#{record.id}"),
        ("TAG#color:blue", f"{record.created_at}#{record.id}"),
    }
    image = items[f"IMG#{record.id}", "IMG"]
    shard = shard_of(record.id)
    assert (image["status"], image["version"]) == ("pending", "1")
    assert (image["gsi_all"], image["status_shard"]) == (f"ALL#{shard}", f"pending#{shard}")
    assert image["created_id"] == f"{record.created_at}#{record.id}"
    assert "processed_sha256" not in image  # only processed records are in the sha256 index
    assert items["TAG#cat", f"{record.created_at}#{record.id}"]["image_id"] == record.id


def test_an_unused_upload_grant_carries_its_ttl_until_the_upload_arrives(db: Any) -> None:
    """A pending record with no bytes (a grant) gets ``expires`` = created + grant_ttl_s; the
    write that claims it (processing, bytes known) drops it, and so does a record that never
    was a grant (a direct upload has its bytes from the start)."""
    with aws_support.make_table() as table:
        store = DynamoDbMetadataStore(db, table, grant_ttl_s=3600)
        grant = _record(1)
        store.create(grant)
        created = datetime.fromisoformat(grant.created_at).timestamp()
        image = _items(db, table)[f"IMG#{grant.id}", "IMG"]
        assert int(image[EXPIRES]) == int(created) + 3600
        store.update(grant.id, PENDING, {"status": "processing", "bytes": 1234})
        assert EXPIRES not in _items(db, table)[f"IMG#{grant.id}", "IMG"]
        direct = replace(_record(2), bytes=99)
        store.create(direct)
        assert EXPIRES not in _items(db, table)[f"IMG#{direct.id}", "IMG"]


def test_list_pages_merge_every_shard_newest_first(store: DynamoDbMetadataStore) -> None:
    """40 records spread over the 8 shards of the list indexes come back newest first, each
    once, page by page, with and without a status filter."""
    records = [_record(n) for n in range(40)]
    assert len({shard_of(r.id) for r in records}) == SHARDS  # every shard holds some
    for record in records:
        store.create(record)
    processed = {_id(n) for n in range(0, 40, 3)}
    for image_id in processed:
        store.update(image_id, PENDING, {"status": "processed"})
    newest_first = [r.id for r in sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)]

    def walk(status: Status | None) -> list[str]:
        seen, cursor = [], None
        while True:
            page = store.list(status=status, limit=6, cursor=cursor)
            seen += [r.id for r in page.items]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    assert walk(None) == newest_first
    assert walk("processed") == [i for i in newest_first if i in processed]


def test_sha256_index_holds_only_processed_records(store: DynamoDbMetadataStore, db: Any) -> None:
    """processed_sha256 appears when a record becomes processed and goes when it leaves."""
    store.create(_record(1, sha256="cd" * 32))
    store.update(_id(1), PENDING, {"status": "processed"})
    assert _items(db, store.table)[f"IMG#{_id(1)}", "IMG"]["processed_sha256"] == "cd" * 32
    store.update(_id(1), ANY_STATUS, {"status": "pending"})
    assert "processed_sha256" not in _items(db, store.table)[f"IMG#{_id(1)}", "IMG"]
    assert store.find_processed_by_sha256("cd" * 32) is None


def test_tag_items_follow_updates_and_deletes(store: DynamoDbMetadataStore, db: Any) -> None:
    """Changing tags or created_at rewrites exactly the tag items; delete removes them all."""
    store.create(_record(1, tags=("a", "b")))
    store.update(_id(1), PENDING, {"tags": [{"name": "b"}, {"name": "c"}]})
    assert sorted(k for k in _items(db, store.table) if k[0].startswith("TAG#")) == [
        ("TAG#b", f"2025-01-01T00:00:01Z#{_id(1)}"),
        ("TAG#c", f"2025-01-01T00:00:01Z#{_id(1)}"),
    ]
    store.update(_id(1), PENDING, {"created_at": "2026-01-01T00:00:00Z"})
    assert sorted(k for k in _items(db, store.table) if k[0].startswith("TAG#")) == [
        ("TAG#b", f"2026-01-01T00:00:00Z#{_id(1)}"),
        ("TAG#c", f"2026-01-01T00:00:00Z#{_id(1)}"),
    ]
    assert [r.id for r in store.list(tag="c").items] == [_id(1)]
    store.delete(_id(1))
    assert _items(db, store.table) == {}


def test_stale_tag_items_are_not_listed(store: DynamoDbMetadataStore, db: Any) -> None:
    """A tag item left behind (a record without that tag, or no record) is skipped by list."""
    store.create(_record(1, tags=("cat",)))
    store.create(_record(2))
    for n in (2, 3):
        item = {"pk": {"S": "TAG#cat"}, "sk": {"S": f"2025-01-01T00:00:0{n}Z#{_id(n)}"},
                "image_id": {"S": _id(n)}}  # fmt: skip
        db.put_item(TableName=store.table, Item=item)
    page = store.list(tag="cat", limit=1)
    assert [r.id for r in page.items] == [_id(1)]
    assert page.next_cursor is None


def test_concurrent_updates_never_lose_each_others_changes(store: DynamoDbMetadataStore) -> None:
    """Writers that all pass the status check each keep their change (the version lock)."""
    store.create(_record(1))
    barrier = threading.Barrier(4)

    def write(field: str, value: int) -> None:
        barrier.wait()
        store.update(_id(1), PENDING, {field: value})

    fields = ("width", "height", "bytes", "processed_at")
    values = (640, 480, 1000, None)
    threads = [threading.Thread(target=write, args=fv) for fv in zip(fields, values, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = store.get(_id(1))
    assert record is not None
    assert (record.width, record.height, record.bytes) == (640, 480, 1000)


def test_delete_of_a_record_changing_underneath_still_deletes(
    store: DynamoDbMetadataStore,
) -> None:
    """delete retries when the record's version moves, and then removes record and tags."""
    store.create(_record(1, tags=("cat",)))
    store.update(_id(1), PENDING, {"tags": [{"name": "dog"}]})
    store.delete(_id(1))
    assert store.get(_id(1)) is None
    assert store.list(tag="dog").items == []


def test_list_rejects_a_limit_below_one(store: DynamoDbMetadataStore) -> None:
    """A page size below 1 raises ValueError rather than querying."""
    with pytest.raises(ValueError):
        store.list(limit=0)


def test_throttling_that_outlasts_retries_is_an_internal_error(
    store: DynamoDbMetadataStore,
) -> None:
    """A ProvisionedThroughputExceeded that botocore gives up on becomes InternalError."""
    with aws_support.FaultInjector() as faults:
        client = aws_support.client("dynamodb", url=faults.url, retries={"total_max_attempts": 2})
        throttled = DynamoDbMetadataStore(client, store.table)
        faults.fail("ProvisionedThroughputExceededException", times=2)
        with pytest.raises(InternalError, match="ProvisionedThroughputExceeded"):
            throttled.get(_id(1))
        assert faults.calls == 2
        faults.fail("ThrottlingException")  # one throttle: botocore's retry absorbs it
        throttled.create(_record(1))
        assert store.get(_id(1)) == _record(1)


def test_missing_table_is_an_internal_error(db: Any) -> None:
    """A table that does not exist is a deployment fault, reported as InternalError."""
    store = DynamoDbMetadataStore(db, aws_support.unique("gone"))
    with pytest.raises(InternalError, match="ResourceNotFound"):
        store.get(_id(1))
    with pytest.raises(InternalError, match="ResourceNotFound"):
        store.create(_record(1))


def test_create_conflict_with_tags_is_a_conflict(store: DynamoDbMetadataStore) -> None:
    """A second create of an id, even as a transaction with tag items, is ConflictError."""
    store.create(_record(1, tags=("cat",)))
    with pytest.raises(ConflictError):
        store.create(_record(1, tags=("dog",)))
    assert store.list(tag="dog").items == []
