"""Memory of one long-lived worker over a batch: RSS after 1, 10, 25, 50 and 100 images.

Usage: ``python benchmarks/worker_memory.py [FOLDER]`` (default ``../shared/corpus/photos/large``;
part of ``make bench``). One fresh process per variant runs ``core.pipeline.process`` - what
every face runs - over the folder's photos in turn, 100 images in all, with the photos read into
memory first (the baseline). Variants, interleaved twice:

- ``as shipped``: glibc malloc as ``core.vips._tune_malloc`` sets it - at most two arenas, and
  buffers under 32 MiB from the heap, with up to 128 MiB of it kept between images;
- ``arena cap only``: the two arenas, glibc's default mmap and trim thresholds - to show what
  keeping the heap is for (each image's buffers mapped, faulted in and zeroed again);
- ``glibc defaults``: no ``mallopt`` at all - to show what the cap is for (glibc gives threads
  that allocate at once arenas of their own, up to 8 per core, and freed pixel buffers stay
  cached in each).

Appends a "Memory in one worker" section to BENCHMARKS.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from serving import REPO, append_report

DEFAULT_DIR = REPO.parent / "shared" / "corpus" / "photos" / "large"
MARKS = (1, 10, 25, 50, 100)

_WORKER = r"""
import ctypes, json, resource, sys
from pathlib import Path
if sys.argv[2] != "shipped":  # only the parameters the variant keeps reach glibc
    real, keep = ctypes.CDLL, {"arenas": {-8}, "default": set()}[sys.argv[2]]
    class _Libc:
        def mallopt(self, parameter, value):
            return real("libc.so.6").mallopt(parameter, value) if parameter in keep else 1
    ctypes.CDLL = lambda name, *a, **k: _Libc() if name == "libc.so.6" else real(name, *a, **k)
    import imgpipe.core.vips
    ctypes.CDLL = real
from imgpipe.core.pipeline import process
from imgpipe.settings import Settings

def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmRSS"))

data = [p.read_bytes() for p in sorted(Path(sys.argv[1]).glob("*.jpg"))]
settings, out = Settings(), {"baseline": rss()}
before = resource.getrusage(resource.RUSAGE_SELF)
marks = [int(m) for m in sys.argv[3].split(",")]
for number in range(1, max(marks) + 1):
    process(data[(number - 1) % len(data)], settings)
    if number in marks:
        out[f"after {number}"] = rss()
out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
after = resource.getrusage(resource.RUSAGE_SELF)
out["cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
out["sys_s"] = after.ru_stime - before.ru_stime
out["faults"] = after.ru_minflt - before.ru_minflt
print(json.dumps(out))
"""


def _run(folder: Path, variant: str) -> dict[str, float]:
    marks = ",".join(map(str, MARKS))
    done = subprocess.run([sys.executable, "-c", _WORKER, str(folder), variant, marks],
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_DIR
    if not any(folder.glob("*.jpg")):
        print(f"no JPEG photos in {folder}; skipping the worker memory benchmark", file=sys.stderr)
        return 0
    variants = {"as shipped": "shipped", "arena cap only": "arenas", "glibc defaults": "default"}
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
    started = time.perf_counter()
    for _ in range(2):
        for label, variant in variants.items():
            runs[label].append(_run(folder, variant))
            print(label, runs[label][-1], file=sys.stderr)

    def median(label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[label])

    photos = len(list(folder.glob("*.jpg")))
    lines = ["", "## Memory in one worker", "",
             f"`python benchmarks/worker_memory.py` on {datetime.now(UTC):%Y-%m-%d}: 100 images "
             f"({photos} photos of `{folder.name}` in turn) through `core.pipeline.process` in one "
             "process, photos read into memory first; median of 2 interleaved runs, "
             f"{time.perf_counter() - started:.0f} s in all.", "",
             "| RSS MiB | baseline | " + " | ".join(f"after {m}" for m in MARKS)
             + " | peak | CPU s | of which system | page faults |",
             "|---|" + "---|" * (len(MARKS) + 5)]  # fmt: skip
    for label in variants:
        cells = [f"{median(label, key):.0f}" for key in ("baseline", *(f"after {m}" for m in MARKS),
                                                         "peak")]  # fmt: skip
        cells += [f"{median(label, 'cpu_s'):.1f}", f"{median(label, 'sys_s'):.1f}",
                  f"{median(label, 'faults'):,.0f}"]  # fmt: skip
        lines.append(f"| {label} | {' | '.join(cells)} |")
    append_report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
