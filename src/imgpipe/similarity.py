"""Similar images by perceptual hash: the band index every metadata store keeps.

A record's 64-bit pHash (``metadata["phash"]``, 16 hex digits) is cut into ``BANDS`` (4) bands of
16 bits, each indexed on its own (a SQLite row, a DynamoDB item). A lookup within Hamming
distance ``r`` does not scan: it reads only the band values that ``probes`` lists and checks the
exact distance of what they hold. The probes follow multi-index hashing (Norouzi, Punjani and
Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012): write
``r = BANDS*q + a`` with ``0 <= a < BANDS``; two hashes within ``r`` agree within ``q`` bits on
one of the first ``a + 1`` bands, or within ``q - 1`` bits on one of the others (if not, they
would differ in at least ``(a+1)(q+1) + (BANDS-a-1)q = r + 1`` bits). So the lookup is exact -
every record within ``r`` is found - and reads, per ``r``:

    r        0  1  2  3  4   5   6   7   8    9    10   11   12
    probes   1  2  3  4  20  36  52  68  188  308  428  548  1108

With uniformly spread hashes a band value holds ``N / 65536`` records, so at 100,000 images the
default ``r = 10`` checks about 650 candidates (benchmarks/similar.py measures it).

No imports of ours beyond the model: the stores, the service and the API share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

from imgpipe.model import ImageRecord

__all__ = [
    "BANDS",
    "DEFAULT_DISTANCE",
    "MAX_DISTANCE",
    "Matches",
    "Similar",
    "bands",
    "check_distance",
    "distance",
    "indexed_phash",
    "probes",
    "ranked",
]

BANDS, BAND_BITS = 4, 16
_BAND_HEX = BAND_BITS // 4
# The default search radius: re-encodes, resizes and light edits of one photo are within ~10 of
# 64 bits; two unrelated photos differ in ~32 +/- 4.
DEFAULT_DISTANCE = 10
# The largest radius a lookup may ask for (1,108 probes; beyond it "similar" means little).
MAX_DISTANCE = 12
_PHASH = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class Similar:
    """A record found by a similarity lookup, ``distance`` bits from the probe hash."""

    record: ImageRecord
    distance: int


# What a lookup returns (an alias: the stores' own ``list`` method shadows the builtin there).
Matches = list[Similar]


def indexed_phash(record: ImageRecord) -> str | None:
    """The hash a record is indexed under: its pHash while it is ``processed``, else ``None``
    (only processed images are similar to anything)."""
    phash = record.metadata.get("phash") if record.status == "processed" else None
    return phash if isinstance(phash, str) and _PHASH.fullmatch(phash) else None


def bands(phash: str) -> tuple[str, ...]:
    """The ``BANDS`` band values of a hash (4 hex digits each), in band order."""
    return tuple(phash[i * _BAND_HEX : (i + 1) * _BAND_HEX] for i in range(BANDS))


def distance(a: str, b: str) -> int:
    """Hamming distance between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def probes(phash: str, max_distance: int) -> list[tuple[int, str]]:
    """The ``(band, value)`` pairs whose records include every hash within ``max_distance`` of
    ``phash`` (see the module docstring); ``ValueError`` outside ``0..MAX_DISTANCE``."""
    check_distance(max_distance)
    q, a = divmod(max_distance, BANDS)
    found: list[tuple[int, str]] = []
    for band, value in enumerate(bands(phash)):
        radius = q if band <= a else q - 1
        found += [(band, f"{v:04x}") for v in _neighbours(int(value, 16), radius)]
    return found


def check_distance(max_distance: int) -> None:
    """``ValueError`` unless ``max_distance`` is a radius a lookup may ask for."""
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be in 0..{MAX_DISTANCE}, not {max_distance}")


def ranked(found: Matches, limit: int) -> Matches:
    """Closest first, then oldest (``created_at``, ``id``): the order every store returns."""
    order = sorted(found, key=lambda s: (s.distance, s.record.created_at, s.record.id))
    return order[:limit]


def _neighbours(value: int, radius: int) -> list[int]:
    """Every ``BAND_BITS``-bit value within ``radius`` bits of ``value`` (none for < 0)."""
    out = []
    for flips in range(radius + 1):
        for bits in combinations(range(BAND_BITS), flips):
            mask = 0
            for bit in bits:
                mask |= 1 << bit
            out.append(value ^ mask)
    return out
