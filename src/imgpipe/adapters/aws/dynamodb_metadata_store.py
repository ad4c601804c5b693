"""``MetadataStore`` in one DynamoDB table, laid out as ``dynamodb_table`` describes.

A write is read-modify-write - the record is one JSON attribute - made safe by a ``version``
counter: ``update`` reads the record (consistently), checks ``expected``, and writes on
condition that the version is still the one it read. That is stricter than a condition on the
status alone, which would let two writers that both expect ``processing`` silently drop each
other's changes. When the condition fails it reads again: a record whose status has left
``expected`` is a ``ConflictError``, a record that has gone is a ``NotFoundError``, anything
else is written again. Tag items change in the same ``TransactWriteItems`` as the record (at
most 100 actions: far more than the ~30 tags a record gets), so they never disagree with it;
``list(tag=...)`` still checks each against its record with a consistent ``BatchGetItem``.

GSI reads are eventually consistent: a record may reach ``list`` and the duplicate lookup a
moment after ``create`` or ``update`` return (``get`` is always consistent).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgpipe.adapters.aws._errors import error_code, translated
from imgpipe.adapters.aws.dynamodb_table import (
    ALL,
    BY_SHA256,
    BY_STATUS,
    INDEXES,
    NEWEST,
    SHARDS,
    band_key,
    band_keys,
    created_id,
    image_item,
    image_key,
    record_of,
    tag_key,
    tag_names,
)
from imgpipe.cursors import decode_cursor, encode_cursor
from imgpipe.errors import ConflictError, InternalError, NotFoundError
from imgpipe.model import ImageRecord, Page, Status, refusal
from imgpipe.similarity import Matches, Similar, distance, indexed_phash, probes, ranked

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    # ``list`` is also a method of the store; these aliases keep annotations unambiguous.
    _Actions = list[TransactWriteItemTypeDef]
    _Records = list[ImageRecord]

__all__ = ["DynamoDbMetadataStore"]  # the layout lives in dynamodb_table

_ATTEMPTS = 8  # optimistic-lock rounds before a hot record is reported as a conflict
_BATCH_GET_MAX = 100
# Band queries of one similarity lookup in flight at once (botocore's pool holds 10 connections).
_PROBES_IN_FLIGHT = 8
_LOST = frozenset({"ConditionalCheckFailed", "ConditionalCheckFailedException"})
_BUSY = frozenset({"TransactionConflict", "TransactionConflictException"})


class _Lost(Exception):
    """The record's version changed between our read and our conditional write."""


class DynamoDbMetadataStore:
    """Image records in the DynamoDB table ``table`` (laid out as ``dynamodb_table`` describes).

    Needs ``dynamodb:GetItem``, ``PutItem``, ``DeleteItem``, ``BatchGetItem``, ``Query`` (table
    and indexes) and ``ConditionCheckItem`` on the table; ``TransactWriteItems`` is authorised
    by the actions inside it.
    """

    def __init__(
        self, dynamodb_client: DynamoDBClient, table: str, grant_ttl_s: int | None = None
    ) -> None:
        """``grant_ttl_s``: seconds after its creation an unused upload grant is deleted by the
        table's TTL (``None``: never)."""
        self._db = dynamodb_client
        self.table = table
        self.grant_ttl_s = grant_ttl_s

    def create(self, record: ImageRecord) -> None:
        actions: _Actions = [{"Put": {
            "TableName": self.table, "Item": image_item(record, 1, self.grant_ttl_s),
            "ConditionExpression": "attribute_not_exists(pk)"}}]  # fmt: skip
        actions += [self._put_tag(name, record) for name in tag_names(record)]
        actions += self._band_changes({}, band_keys(record), record.id)
        try:
            self._commit(actions, f"create image {record.id}")
        except _Lost as exc:
            raise ConflictError(f"image {record.id} already exists") from exc

    def get(self, image_id: str) -> ImageRecord | None:
        found = self._read(image_id)
        return found[0] if found else None

    def update(
        self,
        image_id: str,
        expected: frozenset[Status],
        changes: Mapping[str, Any],
        if_generation: int | None = None,
    ) -> ImageRecord:
        for _ in range(_ATTEMPTS):
            found = self._read(image_id)
            if found is None:
                raise NotFoundError(f"no image {image_id}")
            current, version = found
            if reason := refusal(current, expected, if_generation):
                raise ConflictError(reason)
            updated = replace(current, **changes)
            actions = [self._put_image(updated, version)]
            removed, added = tag_names(current), tag_names(updated)
            if current.created_at == updated.created_at:  # else every tag item's key moves
                removed, added = removed - added, added - removed
            actions += [self._delete_tag(name, current) for name in sorted(removed)]
            actions += [self._put_tag(name, updated) for name in sorted(added)]
            actions += self._band_changes(band_keys(current), band_keys(updated), image_id)
            try:
                self._commit(actions, f"update image {image_id}")
            except _Lost:
                continue  # written meanwhile: judge the new version against ``expected``
            return updated
        raise ConflictError(f"image {image_id} kept changing; gave up after {_ATTEMPTS} tries")

    def list(
        self,
        status: Status | None = None,
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        before = created_id(*decode_cursor(cursor)) if cursor is not None else None
        if tag is not None:
            records = self._tagged(tag, status, before, limit + 1)
        elif status is not None:
            records = self._merged(BY_STATUS, status, before, limit + 1)
        else:
            records = self._merged(NEWEST, ALL, before, limit + 1)
        items = records[:limit]
        more = len(records) > limit
        return Page(items, encode_cursor(items[-1].created_at, items[-1].id) if more else None)

    def find_processed_by_sha256(self, sha256: str) -> ImageRecord | None:
        found = self._indexed(BY_SHA256, "processed_sha256", sha256, None, 1, newest_first=False)
        return found[0] if found else None

    def similar(self, phash: str, max_distance: int, limit: int) -> Matches:
        def band(probe: tuple[int, str]) -> list[tuple[str, str]]:
            items = self._query(None, "pk", f"PHASH#{probe[0]}#{probe[1]}", "sk", None, 1000)
            return [(item["image_id"]["S"], item["phash"]["S"]) for item in items]

        hits: dict[str, int] = {}
        with ThreadPoolExecutor(_PROBES_IN_FLIGHT, thread_name_prefix="similar") as pool:
            for found in pool.map(band, probes(phash, max_distance)):
                for image_id, candidate in found:
                    if (d := distance(candidate, phash)) <= max_distance:
                        hits[image_id] = d
        # Band items change in the records' transactions, but the reads above are not one
        # snapshot: a record is kept only if, read consistently, it is still that close.
        matches: Matches = []
        for record in self._batch_get(sorted(hits)).values():
            current = indexed_phash(record)
            if current is not None and (d := distance(current, phash)) <= max_distance:
                matches.append(Similar(record, d))
        return ranked(matches, limit)

    def delete(self, image_id: str) -> None:
        for _ in range(_ATTEMPTS):
            found = self._read(image_id)
            if found is None:
                return
            record, version = found
            actions: _Actions = [{"Delete": {
                "TableName": self.table, "Key": image_key(image_id),
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}}}}]  # fmt: skip
            actions += [self._delete_tag(name, record) for name in sorted(tag_names(record))]
            actions += self._band_changes(band_keys(record), {}, image_id)
            try:
                self._commit(actions, f"delete image {image_id}")
            except _Lost:
                continue
            return
        raise ConflictError(f"image {image_id} kept changing; gave up after {_ATTEMPTS} tries")

    # -- reads ------------------------------------------------------------------------------

    def _read(self, image_id: str) -> tuple[ImageRecord, int] | None:
        with translated(f"DynamoDB get image {image_id} from {self.table}"):
            item = self._db.get_item(TableName=self.table, Key=image_key(image_id),
                                     ConsistentRead=True).get("Item")  # fmt: skip
        if item is None:
            return None
        return record_of(item), int(item["version"]["N"])

    def _query(
        self, index: str | None, hash_name: str, hash_value: str, sort_name: str,
        before: str | None, page_size: int, newest_first: bool = True,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Items of one partition in sort-key order (descending by default), page by page."""
        condition, names = "#h = :h", {"#h": hash_name}
        values: dict[str, Any] = {":h": {"S": hash_value}}
        if before is not None:  # DynamoDB refuses names and values the expression does not use
            condition += " AND #s < :before"
            names["#s"], values[":before"] = sort_name, {"S": before}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
            "Limit": page_size,
        }
        if index is not None:
            kwargs["IndexName"] = index
        while True:
            with translated(f"DynamoDB query {index or 'table'} of {self.table}"):
                page = self._db.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _indexed(
        self, index: str, hash_name: str, hash_value: str, before: str | None, count: int,
        newest_first: bool = True,
    ) -> _Records:  # fmt: skip
        records: _Records = []
        for item in self._query(index, hash_name, hash_value, "created_id", before, count,
                                newest_first):  # fmt: skip
            records.append(record_of(item))
            if len(records) == count:
                break
        return records

    def _merged(self, index: str, value: str, before: str | None, count: int) -> _Records:
        """The newest ``count`` records across the index's shards (``value#0..SHARDS-1``)."""
        hash_name = INDEXES[index][0]
        page = max(2, math.ceil(count / SHARDS) + 1)  # most pages need one query a shard
        shards = [self._query(index, hash_name, f"{value}#{n}", "created_id", before, page)
                  for n in range(SHARDS)]  # fmt: skip
        newest = heapq.merge(*shards, key=lambda item: item["created_id"]["S"], reverse=True)
        return [record_of(item) for item in itertools.islice(newest, count)]

    def _tagged(self, tag: str, status: Status | None, before: str | None, count: int) -> _Records:
        records: _Records = []
        batch: list[tuple[str, str]] = []  # (image_id, sort key) of a page of tag items

        def flush() -> None:
            found = self._batch_get([image_id for image_id, _ in batch])
            for image_id, position in batch:
                record = found.get(image_id)
                if (record is None or tag not in tag_names(record)
                        or created_id(record.created_at, record.id) != position
                        or (status is not None and record.status != status)):  # fmt: skip
                    continue  # stale tag item (a write in flight) or filtered out
                records.append(record)
            batch.clear()

        for item in self._query(None, "pk", f"TAG#{tag}", "sk", before, count):
            batch.append((item["image_id"]["S"], item["sk"]["S"]))
            if len(batch) == count:
                flush()
                if len(records) >= count:
                    break
        if batch:
            flush()
        return records[:count]

    def _batch_get(self, image_ids: Sequence[str]) -> dict[str, ImageRecord]:
        found: dict[str, ImageRecord] = {}
        for start in range(0, len(image_ids), _BATCH_GET_MAX):
            keys = [image_key(i) for i in dict.fromkeys(image_ids[start : start + _BATCH_GET_MAX])]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(_ATTEMPTS):
                with translated(f"DynamoDB batch get from {self.table}"):
                    response = self._db.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    record = record_of(item)
                    found[record.id] = record
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # throttled: back off before the rest
            else:
                raise InternalError(f"DynamoDB batch get from {self.table} stayed throttled")
        return found

    # -- writes -----------------------------------------------------------------------------

    def _put_image(self, record: ImageRecord, version: int) -> TransactWriteItemTypeDef:
        item = image_item(record, version + 1, self.grant_ttl_s)
        return {"Put": {"TableName": self.table, "Item": item,
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(version)}}}}  # fmt: skip

    def _put_tag(self, tag: str, record: ImageRecord) -> TransactWriteItemTypeDef:
        item = {**tag_key(tag, record), "image_id": {"S": record.id}}
        return {"Put": {"TableName": self.table, "Item": item}}

    def _delete_tag(self, tag: str, record: ImageRecord) -> TransactWriteItemTypeDef:
        return {"Delete": {"TableName": self.table, "Key": tag_key(tag, record)}}

    def _band_changes(
        self, old: Mapping[tuple[int, str], str], new: Mapping[tuple[int, str], str],
        image_id: str,
    ) -> _Actions:  # fmt: skip
        """Band-item writes that take a record's index from ``old`` to ``new``."""
        if old == new:
            return []
        actions: _Actions = [
            {"Delete": {"TableName": self.table, "Key": band_key(b, v, image_id)}}
            for b, v in sorted(old.keys() - new.keys())
        ]
        for (b, v), phash in sorted(new.items()):
            item = {**band_key(b, v, image_id), "image_id": {"S": image_id},
                    "phash": {"S": phash}}  # fmt: skip
            actions.append({"Put": {"TableName": self.table, "Item": item}})
        return actions

    def _commit(self, actions: _Actions, doing: str) -> None:
        """Write ``actions`` atomically (the first is the record's); ``_Lost`` when its
        condition fails. A write colliding with another transaction is retried."""
        for attempt in range(_ATTEMPTS):
            with translated(f"DynamoDB {doing} in {self.table}"):
                try:
                    self._write(actions)
                except ClientError as exc:
                    code, reasons = error_code(exc), _cancellation_reasons(exc)
                    if code in _LOST or (reasons and reasons[0] in _LOST):
                        raise _Lost from exc  # only the record's action has a condition
                    busy = code in _BUSY or not _BUSY.isdisjoint(reasons)
                    if not busy or attempt == _ATTEMPTS - 1:
                        raise
                else:
                    return
            time.sleep(min(0.02 * 2**attempt, 0.5))  # another transaction holds an item

    def _write(self, actions: _Actions) -> None:
        """One action as a plain write (half the cost of a transaction), several as one."""
        if len(actions) == 1 and "Put" in actions[0]:
            self._db.put_item(**actions[0]["Put"])
        elif len(actions) == 1 and "Delete" in actions[0]:
            self._db.delete_item(**actions[0]["Delete"])
        else:
            self._db.transact_write_items(TransactItems=actions)


def _cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-action codes of a cancelled transaction (``"None"`` for the innocent ones)."""
    reasons: Any = exc.response.get("CancellationReasons", [])
    return [str(reason.get("Code", "")) for reason in reasons]
