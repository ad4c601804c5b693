"""Similar-image lookups in the local store: the pHash band index against a scan of every hash.

Usage: ``python benchmarks/similar.py [--images 100000] [--queries 300]`` (part of ``make bench``).

Fills a fresh ``SqliteMetadataStore`` with ``--images`` processed records through ``create``
(random 64-bit pHashes, plus for each query hash three planted neighbours 2, 5 and 9 bits away,
their flipped bits spread over all four bands - the case a plain band match misses), then times
``similar(hash, r, 20)`` for each radius against the fastest scan there is: every hash read from
the band table's first band and compared in Python. Both must return the same ids; the
benchmark fails otherwise. Appends a "Similar images" section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from imgpipe.adapters.local.sqlite_metadata_store import SqliteMetadataStore
from imgpipe.keys import new_id, raw_key
from imgpipe.model import ImageRecord, utc_iso
from imgpipe.similarity import distance, probes
from serving import append_report

RADII = (4, 10, 12)
PLANTED = (2, 5, 9)
LIMIT = 20
T = TypeVar("T")


def _spread(phash: int, flips: int, rng: random.Random) -> int:
    """``phash`` with ``flips`` bits flipped, as evenly over the four bands as they go."""
    mask = 0
    for k in range(flips):
        band = k % 4
        while True:
            bit = band * 16 + rng.randrange(16)
            if not mask >> bit & 1:
                break
        mask |= 1 << bit
    return phash ^ mask


def _fill(store: SqliteMetadataStore, images: int, queries: list[int], rng: random.Random) -> float:
    hashes = [rng.getrandbits(64) for _ in range(images - len(queries) * len(PLANTED))]
    hashes += [_spread(q, d, rng) for q in queries for d in PLANTED]
    rng.shuffle(hashes)
    start, t0 = datetime(2026, 1, 1, tzinfo=UTC), time.perf_counter()
    for n, phash in enumerate(hashes):
        image_id = new_id()
        store.create(ImageRecord(
            id=image_id, status="processed", raw_key=raw_key(image_id),
            created_at=utc_iso(start + timedelta(seconds=n)),
            metadata={"phash": f"{phash:016x}"}))  # fmt: skip
    return time.perf_counter() - t0


def _scan(store: SqliteMetadataStore, phash: str, radius: int) -> list[str]:
    with store._db.connection() as conn:  # the baseline reads the raw table
        rows = conn.execute("SELECT image_id, phash FROM image_bands WHERE band = 0").fetchall()
    near = sorted((d, image_id) for image_id, h in rows if (d := distance(h, phash)) <= radius)
    return [image_id for _, image_id in near]


def _timed(runs: list[float], call: Callable[..., T], *args: object) -> T:
    t0 = time.perf_counter()
    result = call(*args)
    runs.append(time.perf_counter() - t0)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)
    rng = random.Random(20261202)
    queries = [rng.getrandbits(64) for _ in range(args.queries)]
    with (
        tempfile.TemporaryDirectory(prefix="imgpipe-similar-") as tmp,
        SqliteMetadataStore(Path(tmp) / "imgpipe.db") as store,
    ):
        fill_s = _fill(store, args.images, queries, rng)
        print(f"{args.images} records in {fill_s:.1f} s", file=sys.stderr)
        rows = []
        for radius in RADII:
            indexed: list[float] = []
            scanned: list[float] = []
            hits = 0
            for query in queries:
                phash = f"{query:016x}"
                got = _timed(indexed, store.similar, phash, radius, LIMIT)
                want = _timed(scanned, _scan, store, phash, radius)
                ids = [s.record.id for s in got]
                if ids != want[:LIMIT]:
                    raise SystemExit(f"r={radius}: the index found {ids}, the scan {want}")
                hits += len(ids)
            rows.append((radius, len(probes("0" * 16, radius)), hits / len(queries),
                         indexed, scanned))  # fmt: skip
    lines = ["", "## Similar images", "",
             f"`python benchmarks/similar.py` on {datetime.now(UTC):%Y-%m-%d}: "
             f"{args.images:,} processed records with random pHashes in a fresh local store "
             f"(written through `create` at {args.images / fill_s:,.0f} records/s, band rows "
             f"included), {args.queries} query hashes with neighbours planted 2, 5 and 9 bits "
             "away across all four bands. `similar(hash, r, 20)` against a scan of every hash "
             "(the band table read once, distances in Python); both return the same ids for "
             "every query.", "",
             "| radius r | probes | found / query | index p50 ms | index p99 ms "
             "| scan p50 ms | speed-up |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for radius, probe_count, per_query, indexed, scanned in rows:
        p99 = statistics.quantiles(indexed, n=100)[98] * 1000
        p50, scan = statistics.median(indexed) * 1000, statistics.median(scanned) * 1000
        lines.append(f"| {radius} | {probe_count} | {per_query:.1f} | {p50:.2f} | {p99:.2f} | "
                     f"{scan:.1f} | {scan / p50:.0f}x |")  # fmt: skip
    append_report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
