"""What users run, side by side: the imgpipe CLI as shipped against naive Pillow, sharp and the
engine's floor, on the same photos and the same spec (``make bench``; this is the headline).

Usage: ``python benchmarks/peers.py [FOLDER] [--reps 5]`` (default folder:
``../shared/corpus/photos/large``). Spec: 2048 / 1024 / 320 px wide (never upscaled) x JPEG q85
+ WebP q80, EXIF orientation applied. Each engine is one whole process tree per repetition, its
own start-up included, CPU seconds and peak RSS from ``os.wait4`` (the tree: a process and every
descendant it reaped); engines interleaved within each repetition:

- ``imgpipe process --jobs 1`` as shipped (defaults: validation, metadata, fingerprints, tags,
  files and metadata.json out; libvips with its default threads);
- ``imgpipe core, one process``: ``core.pipeline.process`` in a loop (diagnostic);
- ``floor``: a bare pyvips script - decode at scale, cascade, six encodes (WebP effort 2);
- ``naive Pillow``: the usual tutorial;
- ``sharp`` (from npm, into ``benchmarks/.sharp``; skipped with a note without ``node``/``npm``):
  the way its docs show (WebP effort 4, its default) and tuned (WebP effort 2, like imgpipe).

Writes BENCHMARKS.md afresh with this section first; the other benchmarks append to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "peers"
DEFAULT_DIR = REPO.parent / "shared" / "corpus" / "photos" / "large"
SHARP_DIR = REPO / "benchmarks" / ".sharp"
SHARP_PIN = "sharp@0.35.5"
PY = sys.executable
IMGPIPE = str(Path(PY).with_name("imgpipe"))


@dataclass
class Run:
    cpu_s: float
    wall_s: float
    rss_mib: float
    bytes: dict[str, int]


# An engine is the command line that renders PHOTOS into OUT.
Engine = Callable[[str, list[str]], list[str]]


def _script(*prefix: str) -> Engine:
    return lambda out, photos: [*prefix, out, *photos]


def _engines(sharp: bool) -> dict[str, Engine]:
    engines: dict[str, Engine] = {
        "imgpipe process (CLI as shipped)":
            lambda out, photos: [IMGPIPE, "process", *photos, "--out", out, "--jobs", "1"],
        "imgpipe core, one process": _script(PY, str(HERE / "core_in_process.py")),
        "floor (bare pyvips)": _script(PY, str(HERE / "floor.py")),
        "naive Pillow": _script(PY, str(HERE / "pillow_naive.py")),
    }  # fmt: skip
    if sharp:
        script = str(HERE / "sharp_renditions.mjs")
        engines["sharp, as its docs show (WebP effort 4)"] = _script("node", script, "4")
        engines["sharp tuned (WebP effort 2)"] = _script("node", script, "2")
    return engines


def _install_sharp() -> str | None:
    """sharp into benchmarks/.sharp; None when it is there, else why it cannot be."""
    if not (shutil.which("node") and shutil.which("npm")):
        return "node/npm not found: the sharp rows are skipped"
    if not (SHARP_DIR / "node_modules" / "sharp").is_dir():
        SHARP_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                               "--prefix", str(SHARP_DIR), SHARP_PIN],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            return (
                f"npm install {SHARP_PIN} failed: the sharp rows are skipped ({done.stderr[-200:]})"
            )
    return None


def _run(engine: Engine, photos: list[Path], folder: Path) -> Run:
    out = Path(tempfile.mkdtemp(dir=folder))
    argv = engine(str(out), [str(p) for p in photos])
    if argv[0] == "node":  # ESM resolves packages from the script's folder up (no NODE_PATH)
        link = HERE / "node_modules"
        if not link.is_symlink():
            link.symlink_to(SHARP_DIR / "node_modules")
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:3]} failed: {stderr[-500:]}")
    sizes: dict[str, int] = defaultdict(int)
    for file in out.rglob("*"):
        if file.suffix in (".jpg", ".webp"):
            sizes[file.suffix[1:]] += file.stat().st_size
    shutil.rmtree(out)
    return Run(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, dict(sizes))


def _spread(values: list[float], digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f} "
            f"[{min(values):.{digits}f} - {max(values):.{digits}f}]")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    # Five: with three, one busy spell on this shared machine moved a median by 10 %.
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    photos = sorted(args.folder.glob("*.jpg"))
    if not photos:
        print(f"no JPEG photos in {args.folder}; nothing to compare", file=sys.stderr)
        return 0
    sharp_note = _install_sharp()
    engines = _engines(sharp_note is None)
    runs: dict[str, list[Run]] = defaultdict(list)
    load_before, started = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imgpipe-peers-") as folder:
        for rep in range(args.reps):
            for label, engine in engines.items():
                runs[label].append(_run(engine, photos, Path(folder)))
                run = runs[label][-1]
                print(f"rep {rep + 1}: {label}: {len(photos) / run.cpu_s:.2f} img/CPU-s, "
                      f"{run.rss_mib:.0f} MiB", file=sys.stderr, flush=True)  # fmt: skip
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()

    def speed(label: str) -> list[float]:
        return [len(photos) / r.cpu_s for r in runs[label]]

    def rss(label: str) -> list[float]:
        return [r.rss_mib for r in runs[label]]

    cli, pillow, floor = ("imgpipe process (CLI as shipped)", "naive Pillow",
                          "floor (bare pyvips)")  # fmt: skip
    tuned = "sharp tuned (WebP effort 2)"
    lines = [
        "# Benchmarks",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench`; do not edit by hand.",
        "",
        "## What users run, side by side",
        "",
        f"`benchmarks/peers.py`: {len(photos)} photos of `{args.folder}`, spec 2048 / 1024 / 320 px"
        " wide x JPEG q85 + WebP q80; each engine one whole process tree per repetition, start-up "
        f"included, CPU from `wait4`; {args.reps} interleaved repetitions, median [min - max]. "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, {elapsed:.0f} s in all.",
        "",
        "| engine | images per CPU-second | x naive Pillow | peak RSS MiB | x Pillow's RSS | "
        "JPEG bytes | WebP bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    base_speed, base_rss = statistics.median(speed(pillow)), statistics.median(rss(pillow))
    for label in engines:
        out = runs[label][0].bytes
        lines.append(
            f"| {label} | {_spread(speed(label))} | "
            f"{statistics.median(speed(label)) / base_speed:.2f}x | {_spread(rss(label), 0)} | "
            f"{statistics.median(rss(label)) / base_rss:.2f}x | {out.get('jpg', 0):,} | "
            f"{out.get('webp', 0):,} |")  # fmt: skip
    if sharp_note:
        lines += ["", f"- {sharp_note}"]
    cli_speed = statistics.median(speed(cli))
    goals = [("CLI images per CPU-second >= 90 % of the floor's",
              cli_speed / statistics.median(speed(floor)), 0.90)]  # fmt: skip
    if tuned in runs:
        goals.append(("CLI >= 1.8x sharp tuned", cli_speed / statistics.median(speed(tuned)), 1.8))
    goals.append(("CLI peak RSS <= 0.6x naive Pillow's",
                  statistics.median(rss(cli)) / base_rss, 0.6))  # fmt: skip
    for fmt in ("jpg", "webp"):
        ratio = runs[cli][0].bytes.get(fmt, 0) / max(1, runs[pillow][0].bytes.get(fmt, 0))
        goals.append((f"CLI {fmt.upper()} bytes within ±5 % of naive Pillow's", ratio, None))
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    for text, value, target in goals:
        if target is None:
            met = abs(value - 1) <= 0.05
        elif "RSS" in text:
            met = value <= target
        else:
            met = value >= target
        lines.append(f"| {text} | {value:.2f} | {'yes' if met else 'no'} |")
    lines.append("")
    for peer in (floor, tuned) if tuned in runs else (floor,):
        paired = [c / f for c, f in zip(speed(cli), speed(peer), strict=True)]
        lines.append(f"- Paired per-repetition CLI / {peer.split(' (')[0]} speed (each ratio from "
                     f"one repetition): median {statistics.median(paired):.2f} ("
                     + ", ".join(f"{p:.2f}" for p in paired) + ").")  # fmt: skip
    report = "\n".join(lines) + "\n"
    print(report)
    (REPO / "BENCHMARKS.md").write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
