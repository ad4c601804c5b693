"""A seeded mutation fuzzer over validate -> decode -> render -> describe (``make fuzz``).

Usage: ``python benchmarks/fuzz.py [--mutants 10000] [--seed 1] [--timeout-s 20]``.

Seeds are generated in code (``tests/fixtures.py``): every accepted format, stills and
animations, with and without metadata. Each mutant is one to four mutations of one seed (bit
flips, interesting bytes, boundary integers over size fields, inserted, deleted and duplicated
ranges, truncation, a splice with another seed; then, half the time, every PNG chunk CRC fixed
so that the mutation reaches the decoder instead of the checksum), chosen by a
``random.Random(seed)``: the same seed gives the same mutants on the same library versions.

Mutants run through ``imgpipe.core.pipeline.process`` - what the CLI, the service worker and the
Lambda processor all run - in ONE long-lived worker process, with a known-good file after every
``--good-every`` mutants. Findings are:

- ``internal``: anything but a typed rejection (``ImgpipeError`` with a rejection code);
- ``timeout``: a mutant that ran past ``--timeout-s`` (the worker is replaced);
- ``crash``: the worker died (a segfault in a decoder, say);
- ``poisoned``: a good file whose outcome (status and the sha256 of every rendition's bytes)
  differs from what a fresh worker made of it - state left behind by an earlier mutant.

Every finding is written as a *recipe* (the seed's generator and the mutations, never the bytes)
to ``--findings`` (default ``test-artifacts/fuzz-findings.json``); move a recipe into
``tests/fuzz_regressions.json`` to keep it as a regression test (``tests/unit/
test_fuzz_regressions.py`` rebuilds and runs each one). The summary goes to ``FUZZ.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pebble import ProcessExpired, ProcessPool  # noqa: E402

import fixtures as F  # noqa: E402 - the project's image generators live with the tests

# -- seeds ------------------------------------------------------------------------------------

SMALL = (96, 72)
SEEDS: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: F.jpeg(SMALL),
    "jpeg_exif": F.camera_jpeg,
    "jpeg_cmyk": F.cmyk_jpeg,
    "jpeg_p3": F.p3_jpeg,
    "jpeg_grey": F.grey_jpeg,
    "jpeg_noisy": lambda: F.noisy_jpeg(SMALL),
    "jpeg_oriented6": lambda: F.oriented(6),
    "png": lambda: F.png(SMALL),
    "png_rgba": F.rgba_png,
    "png_palette": F.palette_png,
    "png_grey16": F.grey16_png,
    "png_metadata": F.png_with_metadata,
    "apng": F.apng,
    "gif": lambda: F.gif(SMALL),
    "gif_animated": lambda: F.animated_gif(3, SMALL),
    "webp": lambda: F.webp(SMALL),
    "webp_animated": lambda: F.animated_webp(3, SMALL),
    "webp_metadata": F.webp_with_metadata,
    "avif": lambda: F.avif(SMALL),
    "avif_animated": lambda: F.animated_avif(2, SMALL),
    "heic": lambda: F.heic(SMALL),
    "tiff_lzw": F.tiff,
    "tiff_jpeg": F.tiff_jpeg_compressed,
}
GOOD = ("jpeg_exif", "png_rgba", "webp", "avif", "heic")

# -- mutations --------------------------------------------------------------------------------

_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
_INTERESTING_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                     0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)  # fmt: skip
Mutation = list[Any]  # [operation, *arguments]: JSON-friendly, replayable


def choose_mutations(rng: random.Random, size: int, seeds: Sequence[str]) -> list[Mutation]:
    """One to four mutations for a seed of ``size`` bytes (positions taken from ``rng``)."""
    chosen: list[Mutation] = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        at = rng.randrange(max(1, size))
        kind = rng.choices(
            ("flip", "byte", "int", "insert", "delete", "duplicate", "truncate", "splice"),
            weights=(30, 20, 20, 8, 8, 6, 4, 4),
        )[0]
        if kind == "flip":
            chosen.append(["flip", at, rng.randrange(8)])
        elif kind == "byte":
            chosen.append(["byte", at, rng.choice(_INTERESTING_BYTES)])
        elif kind == "int":
            chosen.append(["int", at, rng.choice(_INTERESTING_INTS), rng.choice((2, 4)),
                           rng.choice(("big", "little"))])  # fmt: skip
        elif kind == "insert":
            chosen.append(["insert", at, rng.randbytes(rng.choice((1, 4, 16, 64))).hex()])
        elif kind == "delete":
            chosen.append(["delete", at, rng.choice((1, 4, 16, 256))])
        elif kind == "duplicate":
            chosen.append(["duplicate", at, rng.choice((4, 16, 256, 1024))])
        elif kind == "truncate":
            chosen.append(["truncate", at])
        else:
            chosen.append(["splice", at, rng.choice(seeds), rng.random()])
    if rng.random() < 0.5:
        chosen.append(["png_crc"])  # past the CRC check, so the mutation reaches the decoder
    return chosen


def apply(data: bytes, mutations: Sequence[Mutation], seed_bytes: Callable[[str], bytes]) -> bytes:
    """``data`` with ``mutations`` applied in order (positions wrap to the current length)."""
    out = bytearray(data)
    for operation, *args in mutations:
        at = args[0] % max(1, len(out)) if args else 0
        if operation in ("flip", "byte") and not out:
            continue  # an earlier mutation left nothing to change
        if operation == "flip":
            out[at] ^= 1 << args[1]
        elif operation == "byte":
            out[at] = args[1]
        elif operation == "int":
            value, width, order = args[1], args[2], args[3]
            out[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, order)
        elif operation == "insert":
            out[at:at] = bytes.fromhex(args[1])
        elif operation == "delete":
            del out[at : at + args[1]]
        elif operation == "duplicate":
            out[at:at] = out[at : at + args[1]]
        elif operation == "truncate":
            del out[at:]
        elif operation == "splice":
            other = seed_bytes(args[1])
            out[at:] = other[int(len(other) * args[2]) :]
        elif operation == "png_crc":
            _fix_png_crcs(out)
        else:
            raise ValueError(f"unknown mutation {operation!r}")
    return bytes(out)


def _fix_png_crcs(data: bytearray) -> None:
    """Recompute every PNG chunk's CRC in place (a no-op for anything that is not PNG)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return
    at = 8
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        end = at + 8 + length
        if end + 4 > len(data):
            return
        data[end : end + 4] = zlib.crc32(data[at + 4 : end]).to_bytes(4, "big")
        at = end + 4


# -- the worker ---------------------------------------------------------------------------------


def run_one(data: bytes) -> tuple[str, str, str]:
    """(status, code, digest) of ``data`` through the core pipeline, in the worker process."""
    from imgpipe.core.pipeline import process  # noqa: PLC0415 - libvips only in the worker
    from imgpipe.errors import ImgpipeError, RejectedError  # noqa: PLC0415
    from imgpipe.settings import Settings  # noqa: PLC0415

    try:
        processed = process(data, Settings())
    except RejectedError as exc:
        return "rejected", exc.code, ""
    except ImgpipeError as exc:
        return "internal", f"{exc.code}: {exc}"[:300], ""
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer is looking for
        return "internal", f"{type(exc).__name__}: {exc}"[:300], ""
    digest = hashlib.sha256()
    for rendition in processed.renditions:
        digest.update(rendition.filename.encode() + hashlib.sha256(rendition.data).digest())
    return "processed", "", digest.hexdigest()


@dataclass
class Tally:
    mutants: int = 0
    good_runs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_seed: dict[str, Counter[str]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    slowest_s: float = 0.0


class Worker:
    """One long-lived worker process (replaced only after a timeout or a crash)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.pool: Any = ProcessPool(max_workers=1, context=_spawn())  # pebble is untyped

    def run(self, data: bytes) -> tuple[str, str, str]:
        future = self.pool.schedule(run_one, args=(data,), timeout=self.timeout_s)
        try:
            result: tuple[str, str, str] = future.result()
        except FutureTimeout:
            return "timeout", f"over {self.timeout_s:g} s", ""
        except ProcessExpired as exc:
            return "crash", f"worker died with exit code {exc.exitcode}", ""
        return result

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def _spawn() -> Any:
    import multiprocessing  # noqa: PLC0415

    return multiprocessing.get_context("spawn")


def fuzz(mutants: int, seed: int, timeout_s: float, good_every: int) -> Tally:
    rng = random.Random(seed)
    cache: dict[str, bytes] = {}

    def seed_bytes(name: str) -> bytes:
        if name not in cache:
            cache[name] = SEEDS[name]()
        return cache[name]

    names = sorted(SEEDS)
    fresh = Worker(timeout_s)
    expected = {name: fresh.run(seed_bytes(name)) for name in GOOD}
    fresh.close()
    for name, outcome in expected.items():
        if outcome[0] != "processed":
            raise SystemExit(f"the good seed {name} does not process: {outcome}")

    tally, worker, started = Tally(), Worker(timeout_s), time.perf_counter()
    try:
        for number in range(mutants):
            name = rng.choice(names)
            mutations = choose_mutations(rng, len(seed_bytes(name)), names)
            data = apply(seed_bytes(name), mutations, seed_bytes)
            began = time.perf_counter()
            status, code, _ = worker.run(data)
            tally.slowest_s = max(tally.slowest_s, time.perf_counter() - began)
            tally.mutants += 1
            label = f"{status}:{code}" if status == "rejected" else status
            tally.outcomes[label] += 1
            tally.by_seed.setdefault(name, Counter())[status] += 1
            if status in ("internal", "timeout", "crash"):
                tally.findings.append({"kind": status, "seed": name, "mutations": mutations,
                                       "detail": code, "mutant": number,
                                       "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
            if (number + 1) % good_every == 0:
                good = GOOD[(number // good_every) % len(GOOD)]
                tally.good_runs += 1
                outcome = worker.run(seed_bytes(good))
                if outcome != expected[good]:
                    tally.findings.append({"kind": "poisoned", "seed": good, "mutations": [],
                                           "detail": f"{outcome} != {expected[good]}",
                                           "after_mutant": number})  # fmt: skip
            if (number + 1) % 500 == 0:
                rate = (number + 1) / (time.perf_counter() - started)
                print(f"  {number + 1:,} mutants, {len(tally.findings)} findings, "
                      f"{rate:.0f}/s", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        worker.close()
    tally.seconds = time.perf_counter() - started
    return tally


# -- report -------------------------------------------------------------------------------------


def render_report(tally: Tally, args: argparse.Namespace) -> str:
    import PIL  # noqa: PLC0415
    import pyvips  # noqa: PLC0415

    kinds = Counter(f["kind"] for f in tally.findings)
    lines = [
        "# Fuzz: mutants through validate -> decode -> render -> describe",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/fuzz.py` "
        "(`make fuzz`); do not edit by hand.",
        "",
        f"- {tally.mutants:,} mutants of {len(SEEDS)} generated seeds (seed {args.seed}), "
        f"{tally.good_runs:,} known-good files interleaved, all in one long-lived worker; "
        f"{tally.seconds:.0f} s ({tally.mutants / max(tally.seconds, 1e-9):.0f} mutants/s), "
        f"slowest mutant {tally.slowest_s:.2f} s (timeout {args.timeout_s:g} s)",
        f"- Python {platform.python_version()}, Pillow {PIL.__version__}, pyvips "
        f"{pyvips.__version__} / libvips {pyvips.version(0)}.{pyvips.version(1)}."
        f"{pyvips.version(2)}, {os.cpu_count()} CPUs",
        "",
        "| finding | count | target |",
        "|---|---|---|",
        *(f"| {kind} | {kinds.get(kind, 0)} | 0 |"
          for kind in ("internal", "timeout", "crash", "poisoned")),
        "",
        "## Outcomes",
        "",
        "| outcome | mutants |",
        "|---|---|",
        *(f"| {label} | {count:,} |" for label, count in tally.outcomes.most_common()),
        "",
        "## By seed",
        "",
        "| seed | processed | rejected | findings |",
        "|---|---|---|---|",
        *(f"| {name} | {c['processed']:,} | {c['rejected']:,} | "
          f"{c['internal'] + c['timeout'] + c['crash']} |"
          for name, c in sorted(tally.by_seed.items())),
    ]  # fmt: skip
    if tally.findings:
        lines += ["", "## Findings", "", "| kind | seed | detail |", "|---|---|---|"]
        lines += [f"| {f['kind']} | {f['seed']} | {str(f['detail'])[:120]} |"
                  for f in tally.findings[:50]]  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=20.0)
    parser.add_argument("--good-every", type=int, default=10)
    parser.add_argument("--report", type=Path, default=REPO / "FUZZ.md")
    parser.add_argument("--findings", type=Path,
                        default=REPO / "test-artifacts" / "fuzz-findings.json")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    tally = fuzz(args.mutants, args.seed, args.timeout_s, args.good_every)
    report = render_report(tally, args)
    print(report)
    args.report.write_text(report)
    args.findings.parent.mkdir(parents=True, exist_ok=True)
    args.findings.write_text(json.dumps(tally.findings, indent=1) + "\n")
    print(f"wrote {args.report} and {len(tally.findings)} findings to {args.findings}",
          file=sys.stderr)  # fmt: skip
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
