"""The fuzzer of ``make fuzz`` (benchmarks/fuzz.py): its mutations, a short campaign in one
long-lived worker, and the regressions it found, replayed from their recipes."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import fixtures as F  # noqa: E402
import fuzz  # noqa: E402 - a tool script, imported by path
from imgpipe.core.bmff import declared_sizes  # noqa: E402

REGRESSIONS = json.loads((REPO / "tests" / "fuzz_regressions.json").read_text())


def _seed(name: str) -> bytes:
    return fuzz.SEEDS[name]()


def test_mutations_are_replayable_and_do_what_they_say() -> None:
    data = bytes(range(16))
    assert fuzz.apply(data, [["flip", 0, 0]], _seed)[0] == 1
    assert fuzz.apply(data, [["byte", 17, 0xFF]], _seed)[1] == 0xFF  # positions wrap
    assert fuzz.apply(data, [["int", 2, 0xFFFF, 2, "big"]], _seed)[2:4] == b"\xff\xff"
    assert fuzz.apply(data, [["insert", 4, "aabb"]], _seed)[4:6] == b"\xaa\xbb"
    assert len(fuzz.apply(data, [["delete", 4, 4]], _seed)) == 12
    assert len(fuzz.apply(data, [["duplicate", 0, 4]], _seed)) == 20
    assert fuzz.apply(data, [["truncate", 5]], _seed) == data[:5]
    assert fuzz.apply(data, [["truncate", 0], ["flip", 3, 1]], _seed) == b""
    rng_a, rng_b = random.Random(3), random.Random(3)
    names = sorted(fuzz.SEEDS)
    assert fuzz.choose_mutations(rng_a, 100, names) == fuzz.choose_mutations(rng_b, 100, names)


def test_png_crcs_are_fixed_so_mutations_reach_the_decoder() -> None:
    png = bytearray(F.png((8, 8)))
    png[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    fixed = fuzz.apply(bytes(png), [["png_crc"]], _seed)
    assert fixed != bytes(png)
    assert fuzz.apply(fixed, [["png_crc"]], _seed) == fixed


def test_a_short_campaign_finds_nothing_and_checks_good_files_between_mutants() -> None:
    """300 mutants in one long-lived worker: 0 internal, timeouts, crashes or poisoned files."""
    tally = fuzz.fuzz(mutants=300, seed=20261202, timeout_s=60, good_every=10)
    assert tally.mutants == 300
    assert tally.good_runs == 30
    assert tally.findings == []
    assert tally.outcomes["processed"] > 0
    assert sum(n for k, n in tally.outcomes.items() if k.startswith("rejected:")) > 0


@pytest.mark.parametrize("recipe", REGRESSIONS, ids=[r["found"] for r in REGRESSIONS])
def test_a_found_input_ends_as_expected(recipe: dict[str, Any]) -> None:
    """Each recipe rebuilds its mutant from the generated seed. If the seed's bytes changed
    (another encoder version), the mutant is a different file: then it must still end as a
    typed outcome, never internal."""
    seed = _seed(recipe["seed"])
    mutant = fuzz.apply(seed, recipe["mutations"], _seed)
    status, code, _ = fuzz.run_one(mutant)
    assert status in ("processed", "rejected"), code
    if hashlib.sha256(seed).hexdigest() == recipe["seed_sha256"]:
        assert f"{status}:{code}" == recipe["expect"]


def test_every_ispe_an_avif_declares_is_read() -> None:
    assert declared_sizes(F.avif((96, 72))) == [(96, 72)]
    assert declared_sizes(F.heif_bomb(F.avif((96, 72)))) == [(0x4000_0060, 72)]
    avif = F.avif((96, 72))
    for cut in range(0, len(avif), 7):  # every truncation: a partial answer, never an exception
        declared_sizes(avif[:cut])
