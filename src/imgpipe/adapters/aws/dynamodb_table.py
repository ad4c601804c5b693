"""The DynamoDB table behind ``DynamoDbMetadataStore``: the key and indexes it reads (which
template.yaml's ``Table`` defines, checked by a drift test) and the shape of its items.

Single-table design, on-demand capacity. Items (``pk``, ``sk``)::

    IMG#<id>   IMG                  the record: doc (JSON string), version, status,
                                    status_shard, created_id, gsi_all, processed_sha256
                                    (sparse), expires (TTL, unused grants only)
    TAG#<tag>  <created_at>#<id>    one small item per tag name of a record: image_id
    PHASH#<band>#<value>  <id>      one item per pHash band of a processed record (4):
                                    image_id, phash - the band index of imgpipe.similarity

``created_id`` is ``<created_at>#<id>``; ISO 8601 times contain no character below ``#``, so
its text order is the (created_at, id) order of the cursors. Global secondary indexes, every
one sorted on ``created_id`` (read backwards for newest first, keyset-paged with
``created_id < cursor``), all projecting the whole item so a page needs no second read:

- ``by_status`` (``status_shard``, ``<status>#<n>``): ``list(status=...)``.
- ``newest`` (``gsi_all``, ``ALL#<n>``): the unfiltered list.
- ``processed_by_sha256`` (``processed_sha256``, present only while the record is
  ``processed``): sparse, so the duplicate lookup is one ``Limit=1`` query, oldest first.

The two list indexes are sharded: ``n`` is ``shard_of(id)``, one of ``SHARDS`` (8), and a page
is a lazy merge of the shards' newest-first queries (``heapq.merge``; each shard is read a
page at a time, only as far as the merge needs). A constant partition key would put every
write of the table through one index partition, which takes about 1,000 write units a second;
a record item is ~2.7 KB (a processed 12 MP photo: 3 units per index write) and is written ~3
times on its way to ``processed``, so one partition carries ~110 new images/s and the 8 shards
~900/s on each index - above the API's default throttle (50 requests/s) and the processor's
concurrency many times over. Reading a page costs 8 small queries instead of one.

An unused upload grant (``pending`` with no bytes: the client never posted its form) carries
``expires``, the table's TTL attribute, so DynamoDB deletes it a while after its form expired -
the AWS twin of the local ``reconcile``'s grant expiry. The first write after the upload arrives
(``processing``) drops the attribute. (An original with no record is never orphaned on AWS: its
S3 notification reaches the processor, which adopts it.)

``similar`` queries the band partitions ``imgpipe.similarity.probes`` lists (concurrently, 8 at
a time: 20 queries for the processor's near-duplicate check at distance 4, 428 for a lookup at
the default 10), then reads the records within the distance with a consistent ``BatchGetItem``.
Band items carry the whole hash, so candidates are checked before any record is read. A band
partition holds about ``N / 65536`` items: no hot partition until millions of images share a
value (only near-identical images do).

``list(tag=...)`` reads the tag's own partition (``TAG#<tag>``) newest first. The record is kept
whole as JSON in ``doc`` - no float/Decimal conversions, one attribute to read; the other
attributes exist to be indexed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from imgpipe.model import ImageRecord
from imgpipe.similarity import bands, indexed_phash

__all__ = [
    "BY_SHA256",
    "BY_STATUS",
    "EXPIRES",
    "INDEXES",
    "KEY",
    "NEWEST",
    "SHARDS",
    "band_key",
    "band_keys",
    "created_id",
    "image_item",
    "image_key",
    "record_of",
    "shard_of",
    "sharded",
    "tag_key",
    "tag_names",
]

BY_STATUS, NEWEST, BY_SHA256 = "by_status", "newest", "processed_by_sha256"
SHARDS = 8  # partitions of each list index (see above)
EXPIRES = "expires"  # the table's TTL attribute (template.yaml's TimeToLiveSpecification)
ALL = "ALL"
_IMAGE_SK = "IMG"


# The key and the indexes (hash, range) the store reads; template.yaml's Table defines them (a
# drift test compares), and the tests create their tables from the template.
KEY = ("pk", "sk")
INDEXES = {
    BY_STATUS: ("status_shard", "created_id"),
    NEWEST: ("gsi_all", "created_id"),
    BY_SHA256: ("processed_sha256", "created_id"),
}


def image_key(image_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"IMG#{image_id}"}, "sk": {"S": _IMAGE_SK}}


def tag_key(tag: str, record: ImageRecord) -> dict[str, Any]:
    return {"pk": {"S": f"TAG#{tag}"}, "sk": {"S": created_id(record.created_at, record.id)}}


def band_key(band: int, value: str, image_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"PHASH#{band}#{value}"}, "sk": {"S": image_id}}


def band_keys(record: ImageRecord) -> dict[tuple[int, str], str]:
    """The band items a record has - ``(band, value) -> phash`` - none unless it is
    ``processed`` with a pHash."""
    phash = indexed_phash(record)
    return {} if phash is None else dict.fromkeys(enumerate(bands(phash)), phash)


def created_id(created_at: str, image_id: str) -> str:
    return f"{created_at}#{image_id}"


def tag_names(record: ImageRecord) -> set[str]:
    return {str(t["name"]) for t in record.tags}


def image_item(record: ImageRecord, version: int, grant_ttl_s: int | None = None) -> dict[str, Any]:
    """The record's item at ``version``, with the attributes its indexes need, and - while it
    is an unused upload grant (pending, no bytes yet), when ``grant_ttl_s`` is given - the
    epoch second after which DynamoDB's TTL deletes it (``EXPIRES``)."""
    item: dict[str, Any] = {
        **image_key(record.id),
        "doc": {"S": json.dumps(record.to_dict(), separators=(",", ":"))},
        "version": {"N": str(version)},
        "status": {"S": record.status},
        "status_shard": {"S": sharded(record.status, record.id)},
        "created_id": {"S": created_id(record.created_at, record.id)},
        "gsi_all": {"S": sharded(ALL, record.id)},
    }
    if record.status == "processed" and record.sha256:
        item["processed_sha256"] = {"S": record.sha256}
    if grant_ttl_s is not None and record.status == "pending" and record.bytes is None:
        created = datetime.fromisoformat(record.created_at).timestamp()
        item[EXPIRES] = {"N": str(int(created) + grant_ttl_s)}
    return item


def shard_of(image_id: str) -> int:
    """The list-index shard of an image: stable, evenly spread over ``SHARDS``."""
    return int.from_bytes(hashlib.blake2b(image_id.encode(), digest_size=2).digest()) % SHARDS


def sharded(value: str, image_id: str) -> str:
    return f"{value}#{shard_of(image_id)}"


def record_of(item: Mapping[str, Any]) -> ImageRecord:
    return ImageRecord.from_dict(json.loads(item["doc"]["S"]))
