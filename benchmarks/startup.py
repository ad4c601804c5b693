"""Start-up as users meet it: import time of each face, and a fresh clone's time to serving.

Usage: ``python benchmarks/startup.py [--runs 9] [--skip-first-run]`` (part of ``make bench``).

1. Import time of each Lambda handler and of the CLI, in a fresh interpreter each run (median
   of ``--runs``): ``time.perf_counter()`` around the ``import`` - what Lambda's init phase
   spends before the first event, interpreter start excluded - and the wall time of a whole
   ``imgpipe --help``. Measured in the project's .venv (dev tools installed, this machine's
   Python), and in venvs holding only ``src/requirements.txt``, the imaging layer's
   requirements and a copy of imgpipe - what ``sam build`` packages - on the functions' runtime
   (python3.12, where it is on PATH), built with uv: one with the checked-hash bytecode that
   ``make sam-build`` adds, as Lambda gets it, and one without any, as a plain ``sam build``
   ships it (Lambda's /var/task is read-only: such a function compiles every module it imports
   on each cold start). Nothing writes bytecode while it is measured. For the API function
   also its first event (``api_cold_start.py``: the import, then ``GET /health`` through the
   handler against a moto server), which builds the app and its boto3 clients: the two
   together are its cold start.
2. First run: ``git clone`` of this repository into a temporary folder, then ``make run`` until
   ``GET /health`` answers, with uv's cache empty (a new machine; downloads included) and warm.

Appends a "Start-up" section to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
from moto.server import ThreadedMotoServer

from serving import REPO, append_report, free_port

UV = REPO / ".venv-tools" / "uv" / "bin" / "uv"
LAMBDA_VENVS = REPO / "benchmarks" / ".venv-lambda"
FACES = {
    "Lambda API handler": ("imgpipe.entrypoints.lambda_api", 0.3),
    "Lambda processor handler": ("imgpipe.entrypoints.lambda_processor", 0.6),
    "Lambda dead-letter handler": ("imgpipe.entrypoints.lambda_dlq", None),
    "CLI module": ("imgpipe.entrypoints.cli", None),
}
# Every probe: tracing off (the stack's default), and no bytecode written - Lambda's /var/task
# is read-only, so what a run compiles must not help the next.
_PROBE_ENV = {"POWERTOOLS_TRACE_DISABLED": "true", "PYTHONDONTWRITEBYTECODE": "1"}
_PROBE = ("import time; t = time.perf_counter(); import {module}; "
          "print(time.perf_counter() - t)")  # fmt: skip


def _median_import(python: Path, module: str, runs: int) -> float:
    env = {**os.environ, **_PROBE_ENV}
    times = []
    for _ in range(runs):
        probe = [str(python), "-c", _PROBE.format(module=module)]
        done = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
        times.append(float(done.stdout))
    return statistics.median(times)


@contextlib.contextmanager
def _jobs_queue() -> Iterator[dict[str, str]]:
    """A moto server with the API function's queues; the function's environment for it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}  # fmt: skip
        session = boto3.session.Session(aws["AWS_ACCESS_KEY_ID"], aws["AWS_SECRET_ACCESS_KEY"],
                                        region_name=aws["AWS_REGION"])  # fmt: skip
        sqs = session.client("sqs", endpoint_url=aws["AWS_ENDPOINT_URL"])
        yield {**aws, "IMGPIPE_RAW_BUCKET": "raw", "IMGPIPE_PROCESSED_BUCKET": "processed",
               "IMGPIPE_TABLE": "images", "IMGPIPE_TAGGER": "none",
               "IMGPIPE_QUEUE_URL": sqs.create_queue(QueueName="jobs")["QueueUrl"],
               "IMGPIPE_DLQ_URL": sqs.create_queue(QueueName="dead")["QueueUrl"]}  # fmt: skip
    finally:
        server.stop()


def _median_cold_start(python: Path, runs: int, aws: dict[str, str]) -> tuple[float, float]:
    """Medians of the API function's import and of its first event, each run a fresh process."""
    env = {**os.environ, **aws, **_PROBE_ENV}
    probe = [str(python), str(Path(__file__).with_name("api_cold_start.py"))]
    pairs = [tuple(map(float, subprocess.run(probe, env=env, capture_output=True, text=True,
                                             check=True).stdout.split()))
             for _ in range(runs)]  # fmt: skip
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def _median_help(python: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "imgpipe", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _version(python: Path) -> str:
    done = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def _lambda_python() -> str:
    """python3.12 (the functions' runtime) if one runs here, else this interpreter."""
    candidates = [
        shutil.which("python3.12"),
        *map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in filter(None, candidates):
        if (
            subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode
            == 0
        ):
            return candidate
    return sys.executable


def _lambda_venv(bytecode: bool) -> Path:
    """A venv holding what ``sam build`` packages - src/requirements.txt, the imaging layer's
    requirements, a copy of imgpipe - on python3.12 if available; with the bytecode that
    ``make sam-build`` compiles into the build (its own ``lambda-bytecode`` step), or with
    none."""
    interpreter = _lambda_python()
    venv = LAMBDA_VENVS / ("shipped" if bytecode else "no-bytecode")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([str(UV), "venv", "--quiet", "--python-preference", "only-system",
                        "--python", interpreter, str(venv)],
                       check=True)  # fmt: skip
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    # Every function's package and the processor's imaging layer (installed packages that a
    # handler does not import cost it nothing at start-up).
    requirements = [
        REPO / "src" / "requirements.txt",
        REPO / "layers" / "imaging" / "requirements.txt",
    ]
    install = [str(UV), "pip", "install", "--quiet"]
    subprocess.run([*install, *[f"--requirement={r}" for r in requirements]], check=True, env=env)
    # A copy, as sam build copies src/ (an editable install would share src/'s bytecode).
    subprocess.run([*install, "--no-deps", "--reinstall-package", "imgpipe", str(REPO)],
                   check=True, env=env)  # fmt: skip
    where = [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site = Path(subprocess.run(where, capture_output=True, text=True, check=True).stdout.strip())
    if bytecode:  # make sam-build's own step
        subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "lambda-bytecode",
                        f"BYTECODE_DIR={site}", f"LAMBDA_PYTHON={python}"],
                       check=True)  # fmt: skip
    else:
        for cache in list(site.rglob("__pycache__")):
            shutil.rmtree(cache)
    return python


def _time_to_serving(cold_cache: bool) -> tuple[float, str]:
    """Seconds from ``make run`` in a fresh clone until /health answers, and the venv's size."""
    with tempfile.TemporaryDirectory(prefix="imgpipe-first-run-") as folder:
        clone = Path(folder) / "imgpipe"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGPIPE_", "VIRTUAL_ENV"))}
        if cold_cache:  # nothing downloaded before: uv's cache and pip's (which installs uv)
            env["UV_CACHE_DIR"] = str(Path(folder) / "uv-cache")
            env["PIP_CACHE_DIR"] = str(Path(folder) / "pip-cache")
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        try:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"make run exited with {process.returncode}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1,
                                 trust_env=False).status_code == 200:  # fmt: skip
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - started > 600:
                    raise SystemExit("make run did not serve within 600 s")
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
        size = subprocess.run(["du", "-sh", str(clone / ".venv")], capture_output=True,
                              text=True, check=True).stdout.split()[0]  # fmt: skip
        return elapsed, size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--skip-first-run", action="store_true")
    args = parser.parse_args(argv)

    dev = REPO / ".venv" / "bin" / "python"
    shipped, bare = _lambda_venv(bytecode=True), _lambda_venv(bytecode=False)
    runtime = _version(shipped)
    envs = [(f".venv (dev tools too), Python {_version(dev)}", dev),
            (f"as `make sam-build` ships it (bytecode), Python {runtime}", shipped),
            (f"as plain `sam build` ships it (no bytecode), Python {runtime}", bare)]  # fmt: skip
    header = "| median of {} runs, each a fresh process | {} | goal |".format(
        args.runs, " | ".join(e for e, _ in envs)
    )
    lines = ["", "## Start-up", "",
             f"`python benchmarks/startup.py` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} "
             "CPUs; tracing off (the stack's default).", "",
             header, "|---|" + "---|" * len(envs) + "---|"]  # fmt: skip
    for label, (module, goal) in FACES.items():
        cells = [f"{_median_import(python, module, args.runs):.3f} s"
                 if python == dev or "lambda" in module else "not shipped"
                 for _, python in envs]  # fmt: skip
        print(label, cells, file=sys.stderr)
        lines.append(f"| {label} (`{module}`) | {' | '.join(cells)} | "
                     f"{f'<= {goal} s' if goal else ''} |")  # fmt: skip
    helps = [f"{_median_help(python, args.runs):.3f} s" if python == dev else "not shipped"
             for _, python in envs]  # fmt: skip
    lines.append(f"| `imgpipe --help`, whole process | {' | '.join(helps)} | <= 0.15 s |")
    with _jobs_queue() as aws:
        colds = [_median_cold_start(python, args.runs, aws) for _, python in envs]
    print("API cold start", colds, file=sys.stderr)
    lines += [f"| Lambda API, first event after the import (`GET /health`: app, boto3 clients, "
              f"one SQS call to moto) | {' | '.join(f'{first:.3f} s' for _, first in colds)} | |",
              f"| Lambda API cold start: import + first event | "
              f"{' | '.join(f'{sum(c):.3f} s' for c in colds)} | |"]  # fmt: skip
    if not args.skip_first_run:
        lines += ["", "| first run: fresh `git clone`, `make run` until `/health` answers | "
                  "seconds | .venv size |", "|---|---|---|"]  # fmt: skip
        for cold, label in ((True, "uv cache empty (new machine)"), (False, "uv cache warm")):
            seconds, size = _time_to_serving(cold)
            print(label, seconds, size, file=sys.stderr)
            lines.append(f"| {label} | {seconds:.1f} | {size} |")
    append_report(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
