"""Service throughput and latency vs the batch CLI, on the same photos.

Usage: ``python benchmarks/service_bench.py [FOLDER] [--copies N]`` (default folder:
``../shared/corpus/photos/large``). It starts a real ``imgpipe serve`` on 127.0.0.1 with a
throw-away data dir, then measures:

1. sustained images/s: every photo uploaded ``--copies`` times (each copy made unique by bytes
   appended after the JPEG end marker, so duplicate detection does not skip work), from the first
   upload until the last image is terminal;
2. the batch CLI (``imgpipe process``) on the same unique copies with ``--jobs 1`` and ``--jobs W``,
   images/s, and the scaling between them;
3. latency: the photo closest to 12 MP uploaded alone, 10 times, time from the POST until GET
   shows ``processed`` (p50 and max).

Both faces use the same number of worker processes. Results are printed and appended to
BENCHMARKS.md under "Service".
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from serving import REPO, Serve, append_report

DEFAULT_DIR = REPO.parent / "shared" / "corpus" / "photos" / "large"
POLL_S = 0.02


def _unique(data: bytes) -> bytes:
    return data + b"imgpipe-bench" + secrets.token_bytes(16)


def _upload(client: httpx.Client, url: str, name: str, data: bytes) -> str:
    if len(data) <= 4 * 1024 * 1024:
        response = client.post(f"{url}/images", files={"file": (name, data, "image/jpeg")})
        response.raise_for_status()
        return str(response.json()["id"])
    ticket = client.post(f"{url}/uploads", json={"filename": name, "content_type": "image/jpeg",
                                                 "bytes": len(data)}).json()  # fmt: skip
    form = ticket["upload"]
    client.post(form["url"], data=form["fields"],
                files={"file": (name, data, "image/jpeg")}).raise_for_status()  # fmt: skip
    return str(ticket["id"])


def _statuses(client: httpx.Client, url: str) -> dict[str, str]:
    """Every image's status, from the list route (one request per page of 200)."""
    found: dict[str, str] = {}
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{url}/images", params=params).json()
        found.update((item["id"], item["status"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _wait(client: httpx.Client, url: str, ids: list[str], deadline_s: float = 600) -> None:
    """Until every id is terminal. One image: its record every 20 ms. Many: the list every
    100 ms - polling each record would load the API process that shares the CPUs."""
    pending, deadline = set(ids), time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        if len(pending) == 1:
            (image_id,) = pending
            statuses = {image_id: client.get(f"{url}/images/{image_id}").json()["status"]}
        else:
            statuses = _statuses(client, url)
        pending = {i for i in pending if statuses.get(i) not in {"processed", "rejected", "failed"}}
        time.sleep(POLL_S if len(pending) <= 1 else 0.1)
    if pending:
        raise SystemExit(f"{len(pending)} images never finished")


def _megapixels(path: Path) -> float:
    with Image.open(path) as image:
        return image.width * image.height / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not photos:
        raise SystemExit(f"no JPEG photos in {args.folder}")
    payloads = [(p.name, _unique(p.read_bytes())) for p in photos for _ in range(args.copies)]
    with tempfile.TemporaryDirectory() as tmp:
        serve = Serve(args.workers).start()
        url = serve.url
        try:
            with httpx.Client(timeout=60) as client:
                started = time.perf_counter()
                ids = [_upload(client, url, name, data) for name, data in payloads]
                _wait(client, url, ids)
                service_rate = len(ids) / (time.perf_counter() - started)
                target = min(photos, key=lambda p: abs(_megapixels(p) - 12))
                latencies = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    one = _upload(client, url, target.name, _unique(target.read_bytes()))
                    _wait(client, url, [one])
                    latencies.append(time.perf_counter() - t0)
        finally:
            serve.stop()
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for i, (name, data) in enumerate(payloads):
            (inputs / f"{i:03d}-{name}").write_bytes(data)
        cli_rates = {}
        for jobs in sorted({1, args.workers}):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "imgpipe", "process", str(inputs), "--out",
                            str(Path(tmp) / f"out-{jobs}"), "--jobs", str(jobs)],
                           check=True, capture_output=True)  # fmt: skip
            cli_rates[jobs] = len(payloads) / (time.perf_counter() - t0)
        cli_rate = cli_rates[args.workers]
    p50 = statistics.median(latencies)
    lines = [
        "",
        "## Service",
        "",
        f"`python benchmarks/service_bench.py` on {time.strftime('%Y-%m-%d')}: {len(photos)} "
        f"photos x {args.copies} unique copies, {args.workers} worker processes, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| service sustained throughput (upload -> processed) | {service_rate:.2f} images/s |",
        *(
            f"| batch CLI (`imgpipe process --jobs {jobs}`) | {rate:.2f} images/s |"
            for jobs, rate in cli_rates.items()
        ),
        f"| CLI scaling, --jobs {args.workers} / --jobs 1 | {cli_rate / cli_rates[1]:.2f}x |",
        f"| service / CLI | {service_rate / cli_rate:.2f}x |",
        f"| upload -> processed, {target.name} ({_megapixels(target):.1f} MP), p50 of 10 "
        f"| {p50 * 1000:.0f} ms (max {max(latencies) * 1000:.0f} ms) |",
    ]
    append_report(lines)


if __name__ == "__main__":
    main()
