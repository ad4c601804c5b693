"""Soak a real ``imgpipe serve`` on 127.0.0.1 the way a team uses it (``make soak``).

Usage: ``python benchmarks/soak.py [--clients 50] [--seconds 300] [--modes mix,burst,slow]``.

Three modes, each against its own fresh server (own data dir, two workers, default settings):

- ``mix``: ``--clients`` clients, each with its own connection, for ``--seconds``: an operation,
  then a think time of 0.5-1.5 s. Operations: uploads (``--upload-share`` of them; of those
  ~90 % valid photos of 1-3 MP, one in ten over 4 MiB through ``POST /uploads`` and its form,
  ~5 % invalid - random bytes, text - and ~5 % hostile - truncated, a pixel bomb, the libheif
  poison), and reads: list, get, rendition. Every photo is unique (bytes after its end
  marker), so duplicate detection skips no work. After the run it drains, then checks
  conservation: every accepted upload terminal, none stuck, no id twice, no orphan file.
- ``burst``: ``--burst`` connections opened at once (two thirds list, one third upload).
- ``slow``: ``--slow-clients`` uploads that send one byte a second, while 20 normal clients
  read; their p95 is compared with 20 s of the same clients without the slow ones.

It reports p50/p95/p99 per route, 5xx, dropped connections (a connection closed or reset
without a response) and timeouts, upload -> processed latency (the records' own timestamps),
and the RSS of the server process and of its workers over time; it writes SOAK.md next to
BENCHMARKS.md, and ``docs/soak-latency.png`` and ``docs/soak-rss.png`` (matplotlib).
The load generator shares the machine's CPUs with the server: its numbers are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import fixtures as F  # noqa: E402 - the project's image generators live with the tests
from serving import HOST, Serve  # noqa: E402

TERMINAL = {"processed", "rejected", "failed"}
DIRECT_MAX = 4 * 1024 * 1024

# -- payloads ---------------------------------------------------------------------------------


def _photo(rng: np.random.Generator, size: tuple[int, int], quality: int) -> bytes:
    """A photo-like JPEG: smooth colour fields plus grain (compresses like a real photo)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        128 + 100 * np.sin(x / rng.uniform(60, 300) + rng.uniform(0, 6)),
        128 + 100 * np.cos(y / rng.uniform(60, 300) + rng.uniform(0, 6)),
        128 + 90 * np.sin((x + y) / rng.uniform(80, 400)),
    ], axis=-1)  # fmt: skip
    grain = rng.normal(0, 14 if quality < 95 else 40, base.shape)
    pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass
class Payloads:
    photos: list[bytes]
    large: list[bytes]  # over 4 MiB: through POST /uploads
    invalid: list[tuple[str, bytes]]
    hostile: list[tuple[str, bytes]]
    small: bytes

    @classmethod
    def make(cls) -> Payloads:
        rng = np.random.default_rng(7)
        sizes = [(1600, 1200), (2000, 1500), (1200, 1600), (2400, 1600), (1920, 1080)]
        photos = [_photo(rng, size, 85) for size in sizes]
        large = [_photo(rng, (2600, 2000), 97)]
        assert all(len(p) > DIRECT_MAX for p in large), [len(p) for p in large]
        invalid = [("noise.jpg", secrets.token_bytes(20_000)), ("notes.txt", b"hello " * 500)]
        hostile = [("truncated.jpg", photos[0][: len(photos[0]) // 3]),
                   ("bomb.png", F.png_bomb()), ("poison.avif", F.avif_poison())]  # fmt: skip
        return cls(photos, large, invalid, hostile, _photo(rng, (320, 240), 85))


def _unique(data: bytes) -> bytes:
    return data + b"imgpipe-soak" + secrets.token_bytes(16)


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the mode started
    route: str
    status: int  # 0: dropped, -1: timed out
    ms: float


@dataclass
class Run:
    mode: str
    samples: list[Sample] = field(default_factory=list)
    rss: list[tuple[float, float, float]] = field(default_factory=list)  # t, server, workers MiB
    accepted: set[str] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def record(self, route: str, status: int, began: float) -> None:
        now = time.monotonic()
        self.samples.append(Sample(now - self.started, route, status, (now - began) * 1000))


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _tree(root: int) -> tuple[float, float]:
    """RSS in MiB of ``root`` and of all its descendants (from /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry)] = int(line.split()[1]) / 1024
    below, stack = 0.0, list(children[root])
    while stack:
        pid = stack.pop()
        below += rss.get(pid, 0.0)
        stack.extend(children[pid])
    return rss.get(root, 0.0), below


async def _sample_rss(run: Run, pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        server, workers = _tree(pid)
        run.rss.append((time.monotonic() - run.started, server, workers))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)


# -- clients --------------------------------------------------------------------------------------


def _client(url: str, timeout_s: float = 90) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=timeout_s, trust_env=False,
                             limits=httpx.Limits(max_connections=1))  # fmt: skip


async def _call(run: Run, client: httpx.AsyncClient, route: str, method: str, url: str,
                **kwargs: Any) -> httpx.Response | None:  # fmt: skip
    began = time.monotonic()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        run.record(route, -1, began)
        return None
    except httpx.TransportError:
        run.record(route, 0, began)
        return None
    run.record(route, response.status_code, began)
    return response


class Known:
    """Ids the clients have seen, and rendition URLs of processed ones."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.renditions: list[str] = []


async def _upload(run: Run, client: httpx.AsyncClient, payloads: Payloads,
                  rng: random.Random) -> None:  # fmt: skip
    roll = rng.random()
    if roll < 0.05:
        name, data = rng.choice(payloads.invalid)
    elif roll < 0.10:
        name, data = rng.choice(payloads.hostile)
    elif roll < 0.19:
        await _presigned(run, client, _unique(rng.choice(payloads.large)))
        return
    else:
        name, data = "photo.jpg", _unique(rng.choice(payloads.photos))
    response = await _call(run, client, "POST /images", "POST", "/images",
                           params={"filename": name}, content=data,
                           headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    if response is not None and response.status_code == 202:
        run.accepted.add(response.json()["id"])


async def _presigned(run: Run, client: httpx.AsyncClient, data: bytes) -> None:
    body = {"filename": "large.jpg", "content_type": "image/jpeg", "bytes": len(data)}
    granted = await _call(run, client, "POST /uploads", "POST", "/uploads", json=body)
    if granted is None or granted.status_code != 201:
        return
    grant = granted.json()
    run.accepted.add(grant["id"])
    form = grant["upload"]
    await _call(run, client, "POST /_uploads", "POST", form["url"], data=form["fields"],
                files={"file": ("large.jpg", data, "image/jpeg")})  # fmt: skip


async def _read(run: Run, client: httpx.AsyncClient, known: Known, rng: random.Random,
                phase: str = "") -> None:  # fmt: skip
    """One read: a list, a record or a rendition; ``phase`` prefixes the route's label."""
    roll = rng.random()
    if roll < 0.34 or not known.ids:
        await _call(run, client, f"{phase}GET /images", "GET", "/images", params={"limit": 24})
    elif roll < 0.67 or not known.renditions:
        response = await _call(run, client, f"{phase}GET /images/{{id}}", "GET",
                               f"/images/{rng.choice(known.ids)}")  # fmt: skip
        if response is not None and response.status_code == 200:
            record = response.json()
            if record["status"] == "processed" and record["renditions"]:
                known.renditions.append(rng.choice(record["renditions"])["url"])
    else:
        await _call(run, client, f"{phase}GET rendition", "GET", rng.choice(known.renditions))


async def _mix_client(run: Run, url: str, payloads: Payloads, known: Known, until: float,
                      upload_share: float, seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    async with _client(url) as client:
        await asyncio.sleep(rng.uniform(0, 1.5))  # clients arrive spread over a second or two
        while time.monotonic() < until:
            if rng.random() < upload_share:
                before = set(run.accepted)
                await _upload(run, client, payloads, rng)
                known.ids.extend(run.accepted - before)
            else:
                await _read(run, client, known, rng)
            await asyncio.sleep(rng.uniform(0.5, 1.5))


async def _records(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with _client(url) as client:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/images", params=params)).json()
            found.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _drain_and_check(run: Run, serve: Serve, timeout_s: float) -> None:
    began, records = time.monotonic(), await _records(serve.url)
    while any(r["status"] not in TERMINAL for r in records):
        if time.monotonic() - began > timeout_s:
            break
        await asyncio.sleep(2)
        records = await _records(serve.url)
    ids = [r["id"] for r in records]
    by_id = {r["id"]: r for r in records}
    names = {p.name for p in (serve.data_dir / "blobs" / "raw").glob("*")}
    raw = {n for n in names if not n.endswith(".meta.json") and not n.startswith(".tmp-")}
    lone_sidecars = {n.removesuffix(".meta.json") for n in names if n.endswith(".meta.json")} - raw
    processed_dirs = {p.name for p in (serve.data_dir / "blobs" / "processed").glob("*")}
    temp = list((serve.data_dir / "blobs").rglob(".tmp-*"))
    latencies = [_when(r["processed_at"]) - _when(r["created_at"])
                 for r in records if r["status"] == "processed" and r["processed_at"]]  # fmt: skip
    run.notes.update({
        "drain_s": time.monotonic() - began,
        "records": len(records),
        "statuses": Counter(r["status"] for r in records),
        "accepted": len(run.accepted),
        "missing": len(run.accepted - set(by_id)),
        "stuck": sum(r["status"] not in TERMINAL for r in records),
        "duplicated_ids": len(ids) - len(set(ids)),
        "unaccounted_records": len(set(by_id) - run.accepted),
        "orphan_raw": len(raw - set(by_id)) + len(lone_sidecars),
        "orphan_processed": len(processed_dirs - {i for i, r in by_id.items()
                                                  if r["status"] == "processed"}),
        "temp_files": len(temp),
        "errors": Counter(r["error"]["code"] for r in records if r.get("error")),
        "latency_s": latencies,
    })  # fmt: skip


async def mix(args: argparse.Namespace, payloads: Payloads) -> Run:
    serve, run = Serve(args.workers).start(), Run("mix")
    assert serve.process is not None
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(run, serve.process.pid, stop))
    try:
        run.started = time.monotonic()
        until, known = run.started + args.seconds, Known()
        await asyncio.gather(*(
            _mix_client(run, serve.url, payloads, known, until, args.upload_share, seed)
            for seed in range(args.clients)))  # fmt: skip
        run.notes["load_s"] = time.monotonic() - run.started
        await _drain_and_check(run, serve, timeout_s=max(300, args.seconds))
    finally:
        stop.set()
        await sampler
        serve.stop()
    return run


async def burst(args: argparse.Namespace, payloads: Payloads) -> Run:
    serve, run = Serve(args.workers).start(), Run("burst")
    gate = asyncio.Event()

    async def one(number: int) -> None:
        async with _client(serve.url) as client:
            await gate.wait()
            if number % 3 == 2:
                response = await _call(run, client, "POST /images", "POST", "/images",
                                       content=_unique(payloads.small),
                                       headers={"Content-Type": "image/jpeg"})  # fmt: skip
                if response is not None and response.status_code == 202:
                    run.accepted.add(response.json()["id"])
            else:
                await _call(run, client, "GET /images", "GET", "/images", params={"limit": 24})

    try:
        tasks = [asyncio.create_task(one(n)) for n in range(args.burst)]
        await asyncio.sleep(0.5)
        run.started = time.monotonic()
        gate.set()
        await asyncio.gather(*tasks)
        await _drain_and_check(run, serve, timeout_s=300)
    finally:
        serve.stop()
    return run


async def _dribble(url: str, results: Counter[str], until: float) -> None:
    """A POST /images that sends one byte a second until the server answers or ``until``."""
    try:
        reader, writer = await asyncio.open_connection(HOST, int(url.rsplit(":", 1)[1]))
    except OSError:
        results["refused"] += 1
        return
    head = (f"POST /images HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/jpeg\r\n"
            "Content-Length: 100000\r\n\r\n")  # fmt: skip
    writer.write(head.encode())
    answer = b""
    try:
        while time.monotonic() < until:
            writer.write(b"\xff")
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(200), 1.0)
            except TimeoutError:
                continue
            break
    except (ConnectionError, OSError):
        results["reset"] += 1
        return
    finally:
        writer.close()
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
    results[status] += 1


async def slow(args: argparse.Namespace, payloads: Payloads) -> Run:
    serve, run = Serve(args.workers).start(), Run("slow")
    try:
        async with _client(serve.url) as seeding:
            for _ in range(10):
                response = await seeding.post("/images", content=_unique(payloads.small),
                                              headers={"Content-Type": "image/jpeg"})  # fmt: skip
                run.accepted.add(response.json()["id"])
        known = Known()
        known.ids.extend(run.accepted)
        await asyncio.sleep(3)
        run.started = time.monotonic()

        async def readers(phase: str, seconds: float) -> None:
            until = time.monotonic() + seconds

            async def reader(seed: int) -> None:
                rng = random.Random(seed)
                async with _client(serve.url) as client:
                    while time.monotonic() < until:
                        await _read(run, client, known, rng, f"{phase}: ")
                        await asyncio.sleep(rng.uniform(0.2, 0.6))

            await asyncio.gather(*(reader(s) for s in range(20)))

        await readers("alone", 20)
        outcomes: Counter[str] = Counter()
        until = time.monotonic() + args.slow_seconds
        dribblers = [asyncio.create_task(_dribble(serve.url, outcomes, until))
                     for _ in range(args.slow_clients)]  # fmt: skip
        await asyncio.sleep(1)
        await readers("with slow clients", args.slow_seconds - 5)
        await asyncio.gather(*dribblers)
        run.notes["slow_outcomes"] = outcomes
        await _drain_and_check(run, serve, timeout_s=120)
    finally:
        serve.stop()
    return run


# -- report ---------------------------------------------------------------------------------------


def _route_rows(run: Run) -> list[str]:
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for sample in run.samples:
        by_route[sample.route].append(sample)
    rows = ["| route | requests | p50 ms | p95 ms | p99 ms | 2xx/3xx | 4xx | 5xx | dropped | "
            "timed out |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for route, samples in sorted(by_route.items()):
        answered = [s.ms for s in samples if s.status > 0]
        status = Counter(s.status for s in samples)
        ok = sum(n for code, n in status.items() if 200 <= code < 400)
        client = sum(n for code, n in status.items() if 400 <= code < 500)
        server = sum(n for code, n in status.items() if code >= 500)
        rows.append(f"| {route} | {len(samples):,} | {_percentile(answered, 50):.0f} | "
                    f"{_percentile(answered, 95):.0f} | {_percentile(answered, 99):.0f} | "
                    f"{ok:,} | {client:,} | {server} | {status[0]} | {status[-1]} |")  # fmt: skip
    return rows


def _conservation_rows(run: Run) -> list[str]:
    n = run.notes
    if "records" not in n:
        return []
    latency = n["latency_s"]
    checks = [
        ("accepted uploads", n["accepted"], None),
        ("records after draining", n["records"], None),
        ("statuses", ", ".join(f"{k} {v}" for k, v in sorted(n["statuses"].items())), None),
        ("rejections and failures by code",
         ", ".join(f"{k} {v}" for k, v in sorted(n["errors"].items())) or "none", None),
        ("accepted but missing", n["missing"], 0),
        ("stuck (not terminal after draining)", n["stuck"], 0),
        ("ids listed twice", n["duplicated_ids"], 0),
        ("records nobody was given", n["unaccounted_records"], 0),
        ("orphan originals", n["orphan_raw"], 0),
        ("orphan rendition folders", n["orphan_processed"], 0),
        ("temp files left", n["temp_files"], 0),
        ("drain time after the load stopped", f"{n['drain_s']:.1f} s", None),
        ("upload -> processed p50 / p95 / max",
         f"{_percentile(latency, 50):.2f} / {_percentile(latency, 95):.2f} / "
         f"{max(latency, default=float('nan')):.2f} s", None),
    ]  # fmt: skip
    rows = ["| check | value | target |", "|---|---|---|"]
    for label, value, target in checks:
        verdict = "" if target is None else (" ✓" if value == target else " ✗")
        rows.append(f"| {label} | {value} | {'' if target is None else target}{verdict} |")
    return rows


def _rss_rows(run: Run) -> list[str]:
    if not run.rss:
        return []

    def at(second: float) -> tuple[float, float]:
        near = min(run.rss, key=lambda r: abs(r[0] - second))
        return near[1], near[2]

    marks = [m for m in (10, 60, 120, 180, 240, 300) if m <= run.notes.get("load_s", 0) + 1]
    rows = ["| after | server MiB | workers MiB |", "|---|---|---|"]
    rows += [f"| {m} s | {at(m)[0]:.0f} | {at(m)[1]:.0f} |" for m in marks]
    if len(marks) >= 2:
        first, last = at(60)[0], at(marks[-1])[0]
        rows.append(f"| server change, 60 s -> {marks[-1]} s | {100 * (last / first - 1):+.1f} % "
                    "| target within ±10 % |")  # fmt: skip
    return rows


def _plots(run: Run, folder: Path) -> list[str]:
    import matplotlib  # noqa: PLC0415 - only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    load_s = run.notes.get("load_s", max((s.at for s in run.samples), default=0))
    window, series = 10.0, defaultdict(list)
    for sample in run.samples:
        if sample.status > 0 and sample.at <= load_s:
            kind = "uploads" if sample.route.startswith("POST") else "reads"
            series[(kind, int(sample.at // window))].append(sample.ms)
    figure, axis = plt.subplots(figsize=(9, 4))
    for kind in ("reads", "uploads"):
        buckets = sorted(b for k, b in series if k == kind)
        times = [(b + 0.5) * window for b in buckets]
        for q, style in ((50, "-"), (95, "--")):
            axis.plot(times, [_percentile(series[(kind, b)], q) for b in buckets], style,
                      label=f"{kind} p{q}")  # fmt: skip
    axis.set(
        xlabel="seconds",
        ylabel="latency, ms (10 s windows)",
        yscale="log",
        title=f"imgpipe serve, {run.notes.get('clients')} clients: request latency",
    )
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / "soak-latency.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(9, 4))
    times = [r[0] for r in run.rss]
    axis.plot(times, [r[1] for r in run.rss], label="server (API) process")
    axis.plot(times, [r[2] for r in run.rss], label="workers (sum)")
    axis.axvline(load_s, color="grey", linestyle=":", label="load stops, draining")
    axis.set(xlabel="seconds", ylabel="RSS, MiB", title="imgpipe serve: memory over the soak")
    axis.set_ylim(bottom=0)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / "soak-rss.png", dpi=110)
    plt.close(figure)
    return ["![latency over time](docs/soak-latency.png)", "",
            "![RSS over time](docs/soak-rss.png)"]  # fmt: skip


def render_report(runs: dict[str, Run], args: argparse.Namespace, plots: list[str]) -> str:
    load = os.getloadavg()
    lines = [
        "# Soak: imgpipe serve under load",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/soak.py` "
        "(`make soak`); do not edit by hand.",
        "",
        f"- {os.cpu_count()} CPUs shared by the server, its {args.workers} workers and the "
        f"load generator; Python {platform.python_version()}; load average after "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        "- dropped = the connection closed or reset with no response; timed out = no response "
        "within 90 s",
    ]
    if "mix" in runs:
        run = runs["mix"]
        lines += ["", f"## Mixed load: {args.clients} clients for {args.seconds} s", "",
                  f"Uploads are {args.upload_share:.0%} of operations (of those ~81 % photos "
                  "of 1-3 MP, ~9 % over 4 MiB by the signed form, 5 % invalid, 5 % hostile); "
                  "each client thinks 0.5-1.5 s between operations.", "",
                  *_route_rows(run), "", "### Conservation after draining", "",
                  *_conservation_rows(run), "", "### Memory", "", *_rss_rows(run), "",
                  *plots]  # fmt: skip
    if "burst" in runs:
        lines += ["", f"## Burst: {args.burst} connections at once", "",
                  *_route_rows(runs["burst"]), "", *_conservation_rows(runs["burst"])]  # fmt: skip
    if "slow" in runs:
        run = runs["slow"]
        outcomes = run.notes.get("slow_outcomes", {})
        alone = [s.ms for s in run.samples if s.route.startswith("alone") and s.status > 0]
        crowded = [s.ms for s in run.samples
                   if s.route.startswith("with") and s.status > 0]  # fmt: skip
        lines += ["", f"## Slow clients: {args.slow_clients} uploads at 1 byte/s", "",
                  "20 readers for 20 s alone, then with the slow clients dribbling for "
                  f"{args.slow_seconds} s (the request deadline is 60 s).", "",
                  *_route_rows(run), "",
                  f"- readers' p95 alone {_percentile(alone, 95):.0f} ms, with the slow clients "
                  f"{_percentile(crowded, 95):.0f} ms",
                  "- the slow uploads ended: " + (", ".join(
                      f"{k} {v}" for k, v in sorted(outcomes.items())) or "n/a")]  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--upload-share", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--slow-clients", type=int, default=200)
    parser.add_argument("--slow-seconds", type=int, default=70)
    parser.add_argument("--modes", default="mix,burst,slow")
    parser.add_argument("--report", type=Path, default=REPO / "SOAK.md")
    parser.add_argument("--plots", type=Path, default=REPO / "docs")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> dict[str, Run]:
    payloads, runs = Payloads.make(), {}
    for mode in args.modes.split(","):
        print(f"soak: {mode} ...", file=sys.stderr, flush=True)
        runs[mode] = await {"mix": mix, "burst": burst, "slow": slow}[mode](args, payloads)
        runs[mode].notes["clients"] = args.clients
    return runs


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    runs = asyncio.run(_main(args))
    plots = _plots(runs["mix"], args.plots) if "mix" in runs else []
    report = render_report(runs, args, plots)
    print(report)
    args.report.write_text(report)
    bad = sum(s.status in (0, -1) or s.status >= 500 for r in runs.values() for s in r.samples)
    lost = sum(r.notes.get("missing", 0) + r.notes.get("stuck", 0) for r in runs.values())
    return 1 if bad or lost else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
