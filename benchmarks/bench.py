"""Benchmark the imgpipe core against a naive Pillow reference; write BENCHMARKS.md.

Usage: ``make bench`` or ``.venv/bin/python benchmarks/bench.py [FOLDER] [--reps N]
[--sweep-reps N] [--output PATH]``.
FOLDER defaults to ``../shared/corpus/photos/large`` (read in place, never copied).

Method
------
* Two engines turn every photo in FOLDER into 2048, 1024 and 320 px wide renditions (never
  upscaled, aspect kept, rounded half up), each as JPEG q85 and WebP q80:

  - ``ref``: the "usual AWS tutorial" - Pillow ``Image.open``, ``ImageOps.exif_transpose``,
    ``convert("RGB")``, then for each width a LANCZOS resize *from the full-size image* and
    ``save`` to a ``BytesIO`` as JPEG ``quality=85`` and WebP ``quality=80`` (Pillow defaults
    otherwise, e.g. WebP ``method=4``).
  - ``imgpipe``: ``imgpipe.core.pipeline.process(data, Settings())`` - default settings give the
    same renditions; it also validates, hashes, fingerprints and tags, and that time counts too.

* Every measurement runs in a fresh worker subprocess (this script with ``--worker``), one per
  engine per repetition, interleaved ``ref, imgpipe, ref, imgpipe, ...``. Both workers get
  ``VIPS_CONCURRENCY=1`` so libvips runs single-threaded like Pillow does; the machine is a small
  shared one and CPU time is the fair currency there.
* A worker reads all the photos into memory, imports its engine and warms it up on a tiny
  synthetic JPEG, then times one pass over the photos: CPU = user + sys from
  ``getrusage(RUSAGE_SELF)`` (all threads), wall = ``perf_counter``. Start-up and imports are
  excluded from the headline figure but reported separately (``RUSAGE_CHILDREN`` in the parent).
* Peak RSS is ``ru_maxrss`` of a separate worker that processes only the largest photo (by
  pixels), one per engine per repetition, also interleaved. It includes the interpreter and the
  engine's imports; the figure above the post-import baseline is shown as well.
* Output bytes are summed per format over all photos (they are deterministic; any difference
  between repetitions is reported), and rendition sizes are checked to match between engines.
* Figures are medians over repetitions with [min - max]; ratios are imgpipe / ref of the
  medians, and the paired per-repetition speed ratios are listed to show the noise.
* A WebP effort sweep (the ``Encoding.webp_effort`` knob, libwebp ``method`` 0..6) re-runs the
  imgpipe worker with ``Settings()`` changed only in that field, efforts 0..4, interleaved, and
  compares each with the reference medians above - the evidence for the default.

The script exits 0 when a goal is missed (it is a report); it exits 2 if it cannot run at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, ImageOps, features

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = REPO.parent / "shared" / "corpus" / "photos" / "large"
REPORT = REPO / "BENCHMARKS.md"
WIDTHS = (2048, 1024, 320)
JPEG_QUALITY, WEBP_QUALITY = 85, 80
ENGINES = ("ref", "imgpipe")
SWEEP_EFFORTS = (0, 1, 2, 3, 4)
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
WORKER_ENV = {"VIPS_CONCURRENCY": "1"}
WORKER_TIMEOUT_S = 900

# Goals: imgpipe / ref.
SPEED_GOAL = 2.5
BYTES_TOLERANCE = 0.05
RSS_GOAL = 0.6

# One encoded rendition as a worker reports it: (format, width, height, byte count).
Output = tuple[str, int, int, int]
Engine = Callable[[bytes], list[Output]]


# --------------------------------------------------------------------------------- worker side


def _reference_engine() -> tuple[Engine, dict[str, Any]]:
    """The naive Pillow pipeline: full decode, three LANCZOS resizes from full size, encode."""

    def run(data: bytes) -> list[Output]:
        image: Image.Image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)
        image = image.convert("RGB")
        outputs: list[Output] = []
        for width in WIDTHS:
            resized = image.resize(_fit_width(image.size, width), Image.Resampling.LANCZOS)
            for fmt, quality in (("JPEG", JPEG_QUALITY), ("WEBP", WEBP_QUALITY)):
                buffer = io.BytesIO()
                resized.save(buffer, fmt, quality=quality)
                outputs.append((fmt.lower(), *resized.size, buffer.tell()))
        return outputs

    return run, {}


def _imgpipe_engine(webp_effort: int | None = None) -> tuple[Engine, dict[str, Any]]:
    """``imgpipe.core.pipeline.process`` with default settings, or only ``webp_effort`` changed.

    Imported here, not at the top, so the reference worker never loads libvips, numpy or scipy.
    """
    import pyvips  # noqa: PLC0415

    from imgpipe.core.pipeline import process  # noqa: PLC0415
    from imgpipe.settings import Settings  # noqa: PLC0415

    settings = Settings()
    if webp_effort is not None:
        encoding = dataclasses.replace(settings.encoding, webp_effort=webp_effort)
        settings = dataclasses.replace(settings, encoding=encoding)

    def run(data: bytes) -> list[Output]:
        processed = process(data, settings)
        return [(r.format, r.width, r.height, len(r.data)) for r in processed.renditions]

    versions = {
        "pyvips": pyvips.__version__,
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "encoding": dataclasses.asdict(settings.encoding),
    }
    return run, versions


def _fit_width(size: tuple[int, int], width: int) -> tuple[int, int]:
    """Fit within ``width`` keeping the aspect ratio, never upscaling, rounding half up."""
    scale = min(1.0, width / size[0])
    return (max(1, math.floor(size[0] * scale + 0.5)), max(1, math.floor(size[1] * scale + 0.5)))


def _warm_up_jpeg() -> bytes:
    """A tiny synthetic photo so the first timed image does not pay one-off initialisation."""
    image = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L"),
            Image.radial_gradient("L"),
            Image.effect_noise((256, 256), 40),
        ],
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _engine(spec: str) -> tuple[Engine, dict[str, Any]]:
    """``ref``, ``imgpipe`` or ``imgpipe:<webp effort>``."""
    name, _, effort = spec.partition(":")
    if name == "ref":
        return _reference_engine()
    return _imgpipe_engine(int(effort) if effort else None)


def worker_main(engine_name: str, paths: Sequence[str]) -> int:
    """Run one engine over ``paths`` once and print a JSON result line on stdout."""
    photos = [Path(p).read_bytes() for p in paths]
    engine, info = _engine(engine_name)
    engine(_warm_up_jpeg())
    baseline_rss = _max_rss_kib()
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    outputs = [engine(data) for data in photos]
    cpu, wall = _cpu_seconds() - cpu0, time.perf_counter() - wall0
    result = {
        "engine": engine_name,
        "cpu_s": cpu,
        "wall_s": wall,
        "maxrss_kib": _max_rss_kib(),
        "baseline_rss_kib": baseline_rss,
        "outputs": outputs,
        "info": info,
    }
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------- parent side


@dataclass(frozen=True, slots=True)
class Run:
    """One worker process: what it measured about itself, plus its whole-process CPU."""

    engine: str
    cpu_s: float
    wall_s: float
    process_cpu_s: float
    maxrss_kib: int
    baseline_rss_kib: int
    outputs: list[list[Output]]
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Spread:
    """Median with min and max over repetitions."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_worker(engine: str, paths: Sequence[Path]) -> Run:
    """Start one worker subprocess and parse its result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine]
    env = {**os.environ, **WORKER_ENV}
    before = _children_cpu()
    proc = subprocess.run(
        [*command, *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=WORKER_TIMEOUT_S,
    )
    process_cpu = _children_cpu() - before
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{engine} worker failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return Run(
        engine=engine,
        cpu_s=raw["cpu_s"],
        wall_s=raw["wall_s"],
        process_cpu_s=process_cpu,
        maxrss_kib=raw["maxrss_kib"],
        baseline_rss_kib=raw["baseline_rss_kib"],
        outputs=[[(f, w, h, n) for f, w, h, n in image] for image in raw["outputs"]],
        info=raw["info"],
    )


def run_interleaved(
    paths: Sequence[Path], engines: Sequence[str], reps: int, label: str
) -> dict[str, list[Run]]:
    """``reps`` rounds of every engine in turn (ref, imgpipe, ref, ...), each in its own process."""
    runs: dict[str, list[Run]] = {e: [] for e in engines}
    for rep in range(1, reps + 1):
        for engine in engines:
            run = run_worker(engine, paths)
            runs[engine].append(run)
            _progress(f"{label} rep {rep}/{reps} {engine:10s} cpu {run.cpu_s:6.2f} s")
    return runs


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def find_photos(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def megapixels(path: Path) -> float:
    """Pixel count from the header only (orientation does not change it)."""
    with Image.open(path) as image:
        return image.width * image.height / 1e6


def bytes_by_format(run: Run) -> dict[str, int]:
    """Output bytes per format summed over all photos."""
    totals: dict[str, int] = {}
    for image in run.outputs:
        for fmt, _, _, size in image:
            totals[fmt] = totals.get(fmt, 0) + size
    return totals


def geometry(run: Run) -> list[list[tuple[str, int, int]]]:
    """Rendition formats and sizes per photo, order-independent, for the sanity check."""
    return [sorted((f, w, h) for f, w, h, _ in image) for image in run.outputs]


# --------------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything the report needs, computed from the runs."""

    photos: list[Path]
    total_mp: float
    largest: Path
    largest_mp: float
    speed: dict[str, list[Run]]
    memory: dict[str, list[Run]]
    sweep: dict[str, list[Run]]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    elapsed_s: float


def _fmt_spread(spread: Spread, digits: int = 2) -> str:
    return f"{spread.median:.{digits}f} [{spread.low:.{digits}f} - {spread.high:.{digits}f}]"


def _ratio(imgpipe: float, ref: float) -> float:
    return imgpipe / ref if ref else math.inf


def _speed_rows(f: Findings) -> list[tuple[str, Spread, Spread]]:
    n = len(f.photos)
    metrics: list[tuple[str, Callable[[Run], float]]] = [
        ("images per CPU-second", lambda r: n / r.cpu_s),
        ("source MP per CPU-second", lambda r: f.total_mp / r.cpu_s),
        ("CPU seconds per pass (user+sys)", lambda r: r.cpu_s),
        ("wall seconds per pass", lambda r: r.wall_s),
        ("process CPU s incl. start-up/imports", lambda r: r.process_cpu_s),
    ]
    rows: list[tuple[str, Spread, Spread]] = []
    for label, metric in metrics:
        ref, img = (Spread.of([metric(r) for r in f.speed[e]]) for e in ENGINES)
        rows.append((label, ref, img))
    return rows


def _rss_rows(f: Findings) -> list[tuple[str, Spread, Spread]]:
    def mib(kib: float) -> float:
        return kib / 1024

    peak = [Spread.of([mib(r.maxrss_kib) for r in f.memory[e]]) for e in ENGINES]
    above = [
        Spread.of([mib(r.maxrss_kib - r.baseline_rss_kib) for r in f.memory[e]]) for e in ENGINES
    ]
    return [
        (f"peak RSS MiB, largest photo alone ({f.largest.name})", peak[0], peak[1]),
        ("  of which above post-import baseline", above[0], above[1]),
    ]


def _bytes_table(f: Findings) -> tuple[list[str], dict[str, float], list[str]]:
    """Rows of output bytes per format, the per-format ratios, and any determinism warnings."""
    warnings: list[str] = []
    totals: dict[str, dict[str, int]] = {}
    for engine in ENGINES:
        seen = {json.dumps(bytes_by_format(r), sort_keys=True) for r in f.speed[engine]}
        if len(seen) > 1:
            warnings.append(f"{engine} output bytes differ between repetitions: {sorted(seen)}")
        totals[engine] = bytes_by_format(f.speed[engine][0])
    formats = sorted(set(totals["ref"]) | set(totals["imgpipe"]))
    rows, ratios = [], {}
    for fmt in [*formats, "total"]:
        ref = sum(totals["ref"].values()) if fmt == "total" else totals["ref"].get(fmt, 0)
        img = sum(totals["imgpipe"].values()) if fmt == "total" else totals["imgpipe"].get(fmt, 0)
        ratios[fmt] = _ratio(img, ref)
        rows.append(
            f"| output bytes, {fmt} (sum over all photos) | {ref:,} | {img:,} "
            f"| {ratios[fmt]:.3f} ({(ratios[fmt] - 1) * 100:+.1f} %) |"
        )
    return rows, ratios, warnings


def _goal(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _goal_rows(f: Findings, byte_ratios: dict[str, float]) -> list[str]:
    speed = _speed_rows(f)[0]
    speed_ratio = _ratio(speed[2].median, speed[1].median)
    rss = _rss_rows(f)[0]
    rss_ratio = _ratio(rss[2].median, rss[1].median)
    rows = [
        f"| images per CPU-second | >= {SPEED_GOAL:g}x ref | {speed_ratio:.2f}x "
        f"| {_goal(speed_ratio >= SPEED_GOAL)} |"
    ]
    for fmt, ratio in byte_ratios.items():
        if fmt != "total":
            rows.append(
                f"| output bytes, {fmt} | within +-{BYTES_TOLERANCE:.0%} of ref "
                f"| {(ratio - 1) * 100:+.1f} % | {_goal(abs(ratio - 1) <= BYTES_TOLERANCE)} |"
            )
    rows.append(
        f"| peak RSS, largest photo | <= {RSS_GOAL:g}x ref | {rss_ratio:.2f}x "
        f"| {_goal(rss_ratio <= RSS_GOAL)} |"
    )
    return rows


def _noise_rows(f: Findings) -> list[str]:
    rows = []
    for rep, (ref, img) in enumerate(zip(*(f.speed[e] for e in ENGINES), strict=True), 1):
        rows.append(
            f"| {rep} | {ref.cpu_s:.2f} | {img.cpu_s:.2f} | {ref.cpu_s / img.cpu_s:.2f}x "
            f"| {ref.wall_s:.2f} | {img.wall_s:.2f} |"
        )
    return rows


def _sweep_rows(f: Findings) -> list[str]:
    n = len(f.photos)
    ref_cpu = statistics.median(r.cpu_s for r in f.speed["ref"])
    ref_webp = bytes_by_format(f.speed["ref"][0]).get("webp", 0)
    default = f.speed["imgpipe"][0].info["encoding"]["webp_effort"]
    rows = []
    for spec, runs in f.sweep.items():
        effort = int(spec.partition(":")[2])
        cpu = Spread.of([r.cpu_s for r in runs])
        speed = ref_cpu / cpu.median
        webp = _ratio(bytes_by_format(runs[0]).get("webp", 0), ref_webp)
        ok = speed >= SPEED_GOAL and abs(webp - 1) <= BYTES_TOLERANCE
        rows.append(
            f"| {effort}{' (default)' if effort == default else ''} | {_fmt_spread(cpu)} "
            f"| {n / cpu.median:.2f} | {speed:.2f}x | {(webp - 1) * 100:+.1f} % "
            f"| {'yes' if ok else 'no'} |"
        )
    return rows


def _sweep_section(f: Findings) -> list[str]:
    if not f.sweep:
        return []
    reps = len(next(iter(f.sweep.values())))
    return [
        f"## WebP effort sweep (imgpipe, only `webp_effort` changed; {reps} interleaved reps)",
        "",
        "| webp_effort | CPU s per pass | images per CPU-s | vs ref | WebP bytes vs ref "
        "| meets speed + bytes goals |",
        "|---|---|---|---|---|---|",
        *_sweep_rows(f),
        "",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _machine_lines(f: Findings) -> list[str]:
    info = f.speed["imgpipe"][0].info
    pil = f"Pillow {PIL.__version__}"
    codecs = (
        f"libjpeg-turbo {features.version('libjpeg_turbo')}, libwebp {features.version('webp')}"
    )
    return [
        f"- nproc: {os.cpu_count()} ({_cpu_model()}); {platform.platform()}",
        f"- Python {platform.python_version()}; {pil} ({codecs}); "
        f"pyvips {info['pyvips']} / libvips {info['libvips']}",
        f"- imgpipe encoding defaults in force: `{info['encoding']}`",
        "- `VIPS_CONCURRENCY=1` was set for BOTH workers (libvips single-threaded, like Pillow), "
        "so CPU time compares like with like on this noisy shared 2-core machine.",
        f"- load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in f.load_before)}, "
        f"after: {' / '.join(f'{x:.2f}' for x in f.load_after)}; "
        f"benchmark wall time {f.elapsed_s:.0f} s",
    ]


def _metric_row(label: str, ref: Spread, img: Spread) -> str:
    ratio = _ratio(img.median, ref.median)
    return f"| {label} | {_fmt_spread(ref)} | {_fmt_spread(img)} | {ratio:.2f}x |"


def render_report(f: Findings) -> str:
    """The whole Markdown report (also printed to stdout)."""
    reps = len(f.speed["ref"])
    byte_rows, byte_ratios, warnings = _bytes_table(f)
    mismatch = geometry(f.speed["ref"][0]) != geometry(f.speed["imgpipe"][0])
    if mismatch:
        warnings.append("rendition sizes differ between the engines: the comparison is unfair")
    lines = [
        "## Diagnostic: the idealised in-process worker (imgpipe core vs naive Pillow)",
        "",
        f"`benchmarks/bench.py` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: one photo per fresh "
        "worker, `VIPS_CONCURRENCY=1`, imports excluded - an inner loop, not what users run "
        "(that is the table above).",
        "",
        "## Machine",
        "",
        *_machine_lines(f),
        "",
        "## Corpus",
        "",
        f"- `{f.photos[0].parent}`: {len(f.photos)} photos, {f.total_mp:.1f} MP in total; "
        f"largest `{f.largest.name}` ({f.largest_mp:.1f} MP)",
        f"- renditions per photo: widths {', '.join(map(str, WIDTHS))} (never upscaled) x "
        f"JPEG q{JPEG_QUALITY} + WebP q{WEBP_QUALITY}; sizes identical between engines: "
        f"{'NO' if mismatch else 'yes'}",
        "",
        f"## Results (median [min - max] over {reps} interleaved repetitions)",
        "",
        "| metric | ref (Pillow) | imgpipe | imgpipe / ref |",
        "|---|---|---|---|",
        *(_metric_row(*row) for row in _speed_rows(f)),
        *(_metric_row(*row) for row in _rss_rows(f)),
        *byte_rows,
        "",
        "## Goals",
        "",
        "| goal | target | measured (imgpipe / ref) | result |",
        "|---|---|---|---|",
        *_goal_rows(f, byte_ratios),
        "",
        "## Noise: CPU and wall seconds per repetition",
        "",
        "| rep | ref CPU s | imgpipe CPU s | speed-up | ref wall s | imgpipe wall s |",
        "|---|---|---|---|---|---|",
        *_noise_rows(f),
        "",
        *_sweep_section(f),
        *(f"**WARNING:** {w}\n" for w in warnings),
        "## Method",
        "",
        _method_text(),
    ]
    return "\n".join(lines) + "\n"


def _method_text() -> str:
    doc = __doc__ or ""
    return doc.split("Method\n------\n", 1)[-1].split("\nThe script exits", 1)[0].strip()


# --------------------------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="imgpipe core vs naive Pillow benchmark")
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (>= 3)")
    parser.add_argument(
        "--sweep-reps", type=int, default=3, help="WebP effort sweep repetitions (0: skip)"
    )
    parser.add_argument("--output", type=Path, default=REPORT, help="Markdown report path")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3")
    return args


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1], argv[2:])
    args = parse_args(argv)
    if not args.folder.is_dir() or not (photos := find_photos(args.folder)):
        print(f"bench: no photos found in {args.folder}", file=sys.stderr)
        return 2
    start, load_before = time.perf_counter(), os.getloadavg()
    sizes = {p: megapixels(p) for p in photos}
    largest = max(photos, key=sizes.__getitem__)
    speed = run_interleaved(photos, ENGINES, args.reps, "speed")
    memory = run_interleaved([largest], ENGINES, args.reps, "rss")
    efforts = [f"imgpipe:{e}" for e in SWEEP_EFFORTS]
    sweep = run_interleaved(photos, efforts, args.sweep_reps, "sweep") if args.sweep_reps else {}
    findings = Findings(
        photos=photos,
        total_mp=sum(sizes.values()),
        largest=largest,
        largest_mp=sizes[largest],
        speed=speed,
        memory=memory,
        sweep=sweep,
        load_before=load_before,
        load_after=os.getloadavg(),
        elapsed_s=time.perf_counter() - start,
    )
    report = render_report(findings)
    print(report)
    # A diagnostic section below the headline of benchmarks/peers.py: one heading level down.
    with args.output.open("a", encoding="utf-8") as out:
        out.write("\n" + report.replace("\n## ", "\n### "))
    _progress(f"report written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
