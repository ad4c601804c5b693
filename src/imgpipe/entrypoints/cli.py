"""The ``imgpipe`` command: batch processing, inspection, a health check of the engine, the
local service, and uploads to a running one (local or AWS)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from imgpipe import __version__
from imgpipe.errors import ConfigError, ImgpipeError, RejectedError
from imgpipe.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from rich.console import Console
    from rich.table import Table

    from imgpipe.batch import BatchSummary

# rich, pebble and the batch runner are imported by the commands that use them, so that
# ``imgpipe --help`` and ``imgpipe serve`` start without them.

__all__ = ["main"]

_config_option = click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings file (default: $IMGPIPE_CONFIG, else built-in defaults).",
)


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("imgpipe-data"),
    show_default=True,
    help="Where originals, renditions, records and the queue live.",
)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return Settings.load(config, **overrides)
    except ImgpipeError as exc:
        raise click.UsageError(exc.message) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgpipe")
def main() -> None:
    """imgpipe - validate, resize, describe and tag images."""


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: renditions and metadata.json go to OUT/<id>/.",
)
@_config_option
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: number of CPUs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input on stdout.")
@click.option(
    "--keep-gps/--no-keep-gps",
    default=None,
    help="Decode GPS coordinates into the metadata (default: off, only has_gps).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds one image may take before its worker is stopped (default 60).",
)
def process(
    inputs: tuple[Path, ...],
    out_dir: Path,
    config: Path | None,
    jobs: int | None,
    as_json: bool,
    keep_gps: bool | None,
    timeout: float | None,
) -> None:
    """Process image files and folders (recursively) into renditions + metadata.

    Exit status: 0 when every input was processed or cleanly rejected, 70 when an input failed
    inside imgpipe, 75 when one timed out.
    """
    from rich.console import Console  # noqa: PLC0415 - see the imports

    from imgpipe.batch import collect_inputs, run_batch  # noqa: PLC0415

    settings = _settings(config, keep_gps=keep_gps, timeout_s=timeout)
    sources = collect_inputs(inputs)
    err = Console(stderr=True)
    started, cpu_started = time.perf_counter(), os.times()
    with _progress(err, len(sources)) as advance:

        def on_result(result: dict[str, Any]) -> None:
            if as_json:
                click.echo(json.dumps(result, ensure_ascii=False))
            else:  # above the bar, when there is one
                err.print(_describe(result, out_dir), markup=False, highlight=False,
                          soft_wrap=True)  # fmt: skip
            advance()

        summary = run_batch(sources, out_dir, settings, jobs or os.cpu_count() or 1, on_result)
    elapsed = time.perf_counter() - started
    cpu = sum(os.times()[i] - cpu_started[i] for i in range(4))
    err.print(_summary_table(summary, elapsed, cpu))
    sys.exit(summary.exit_code)


@contextlib.contextmanager
def _progress(console: Console, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on a terminal (``rich.progress`` loads only then); elsewhere nothing."""
    if not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import (  # noqa: PLC0415 - see the imports
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("processing", total=total)
        yield lambda: bar.advance(task)


def _describe(result: dict[str, Any], out_dir: Path) -> str:
    if result["status"] == "processed":
        md = result["metadata"]
        return (
            f"processed {result['source']}: {md['width']}x{md['height']} {md['format']} -> "
            f"{out_dir / result['id']}/ ({len(result['renditions'])} files)"
        )
    error = result["error"]
    return f"{result['status']} {result['source']}: {error['code']} - {error['message']}"


def _summary_table(summary: BatchSummary, elapsed: float, cpu: float) -> Table:
    from rich.table import Table  # noqa: PLC0415 - see the imports

    table = Table(title="imgpipe process", show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("processed", str(summary.processed))
    for code, count in sorted(summary.rejected.items()):
        table.add_row(f"rejected: {code}", str(count))
    for code, count in sorted(summary.failed.items()):
        table.add_row(f"failed: {code}", str(count), style="red")
    rate = summary.megapixels / elapsed if elapsed else 0.0
    table.add_row("megapixels", f"{summary.megapixels:.1f}")
    table.add_row("wall time", f"{elapsed:.2f} s ({rate:.1f} MP/s)")
    table.add_row("worker CPU time", f"{cpu:.2f} s")
    return table


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_config_option
def inspect(file: Path, config: Path | None) -> None:
    """Validate FILE from its headers alone and print what imgpipe sees.

    Exit status: 0 when acceptable, else the rejection's code (65 for bad image data).
    """
    from imgpipe.core.validation import inspect as inspect_header  # noqa: PLC0415 - libvips on use

    settings = _settings(config)
    try:
        with file.open("rb") as handle:
            data = handle.read(settings.limits.max_bytes + 1)
        info = inspect_header(data, settings.limits)
    except ImgpipeError as exc:
        click.echo(json.dumps({"source": str(file), "status": "rejected", "error": exc.to_dict()}))
        sys.exit(exc.exit_code)
    width, height = info.display_size
    click.echo(
        json.dumps(
            {
                "source": str(file),
                "status": "ok",
                "format": info.format.value,
                "width": width,
                "height": height,
                "stored_width": info.width,
                "stored_height": info.height,
                "orientation": info.orientation,
                "frames": info.frames,
                "bit_depth": info.bit_depth,
                "has_alpha": info.has_alpha,
            }
        )
    )


@main.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(config: Path | None, as_json: bool) -> None:
    """Report the image engine (libvips, loaders, HEIC/AVIF support) and the limits in force."""
    from imgpipe.core.doctor import report  # noqa: PLC0415 - libvips on use

    settings = _settings(config)
    data = report(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console  # noqa: PLC0415 - see the imports
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    table = Table(title=f"imgpipe {__version__}", show_header=False)
    for key in ("python", "libvips", "pyvips", "pillow", "pillow_heif"):
        table.add_row(key, str(data[key]))
    for name, ok in data["formats"].items():
        table.add_row(f"decode {name}", "yes" if ok else "[red]NO[/red]")
    for name, ok in data["encoders"].items():
        table.add_row(f"encode {name}", "yes" if ok else "[red]NO[/red]")
    for key, value in data["settings"]["limits"].items():
        table.add_row(f"limit {key}", f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("keep_gps", str(data["settings"]["keep_gps"]))
    console.print(table)
    if not all(data["formats"].values()):
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to bind (0: any free port).",
)
@_data_dir_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: number of CPUs).",
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL clients use to reach this server (default: http://HOST:PORT).",
)
@click.option(
    "--token",
    envvar="IMGPIPE_API_TOKEN",
    default=None,
    help="Access token clients send as 'Authorization: Bearer <token>' (env IMGPIPE_API_TOKEN); "
    "required to bind a non-loopback address, unless --oidc-issuer is set.",
)
@click.option(
    "--oidc-issuer",
    envvar="IMGPIPE_OIDC_ISSUER",
    default=None,
    help="OpenID provider whose access tokens (JWTs) the API accepts; the dashboard signs in "
    "there with PKCE (env IMGPIPE_OIDC_ISSUER).",
)
@click.option(
    "--oidc-client-id",
    envvar="IMGPIPE_OIDC_CLIENT_ID",
    default=None,
    help="The dashboard's (public) client id at --oidc-issuer; the tokens' audience "
    "(env IMGPIPE_OIDC_CLIENT_ID).",
)
@_config_option
def serve(host: str, port: int, data_dir: Path, workers: int | None, public_url: str | None,
          token: str | None, oidc_issuer: str | None, oidc_client_id: str | None,
          config: Path | None) -> None:  # fmt: skip
    """Run the HTTP API (uvicorn) and the processing workers (the embedded, no-cloud default).

    Stops cleanly on SIGINT/SIGTERM: workers finish their current image first. Limits (request
    deadline, concurrency cap, backlog, keep-alive) come from the [service] settings.
    """
    from imgpipe.entrypoints.serve import run_server  # noqa: PLC0415 - only serve needs uvicorn

    settings = _settings(config)
    try:
        run_server(host, port, data_dir, workers or os.cpu_count() or 1, public_url, config,
                   settings, token, oidc_issuer, oidc_client_id)  # fmt: skip
    except ConfigError as exc:
        raise click.UsageError(exc.message) from exc


@main.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--url", envvar="IMGPIPE_URL", required=True,
              help="The API's base URL: http://127.0.0.1:8080, or the stack's ApiUrl "
                   "(env IMGPIPE_URL).")  # fmt: skip
@click.option("--token", envvar="IMGPIPE_API_TOKEN", default=None,
              help="Sent as 'Authorization: Bearer <token>' (env IMGPIPE_API_TOKEN).")  # fmt: skip
@click.option("--wait", is_flag=True, help="Wait until each image is processed or refused.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds --wait waits for one image.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def upload(files: tuple[Path, ...], url: str, token: str | None, wait: bool, timeout: float,
           as_json: bool) -> None:  # fmt: skip
    """Upload FILES to a running imgpipe (directly up to 4 MiB, larger ones through an upload
    form), one at a time, and print each image's id - with --wait, its final status.

    Exit status: 0 when every file was accepted (with --wait: processed); else the code of the
    last refusal - 65 for a rejected image, 69 when the server cannot be reached, 75 on a
    timeout, 77 without the right token.
    """
    from imgpipe.client import Client  # noqa: PLC0415 - httpx only for this command

    status = 0
    with Client(url, token) as client:
        for path in files:
            result: dict[str, Any] = {"source": str(path)}
            try:
                accepted = client.upload(path)
                result.update(id=accepted.id, status=accepted.status)
                if wait:
                    image = client.wait(accepted.id, timeout)
                    result.update(status=image.status, width=image.width, height=image.height,
                                  renditions=[r.url for r in image.renditions])  # fmt: skip
                    if image.error is not None:
                        result["error"] = image.error.to_dict()
                        status = image.error.exit_code
            except ImgpipeError as exc:  # refused at upload, or the server is out of reach
                refused = "rejected" if isinstance(exc, RejectedError) else "error"
                result.update(status=refused, error=exc.to_dict())
                status = exc.exit_code
            click.echo(json.dumps(result) if as_json else _uploaded(result))
    sys.exit(status)


def _uploaded(result: dict[str, Any]) -> str:
    if "error" in result:
        error = result["error"]
        return f"{result['status']} {result['source']}: {error['code']} - {error['message']}"
    size = f" {result['width']}x{result['height']}" if result.get("width") else ""
    return f"{result['status']} {result['source']}: {result['id']}{size}"


@main.command()
@click.argument("image_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Reprocess every image.")
@_data_dir_option
@_config_option
def reprocess(image_ids: tuple[str, ...], everything: bool, data_dir: Path,
              config: Path | None) -> None:  # fmt: skip
    """Queue images for processing again (e.g. after the rendition presets changed).

    A running `imgpipe serve` on the same --data-dir picks the jobs up.
    """
    from imgpipe.bootstrap import build_local  # noqa: PLC0415 - SQLite stores on use

    if not image_ids and not everything:
        raise click.UsageError("name image ids or pass --all")
    app = build_local(data_dir, _settings(config))
    try:
        ids = list(image_ids)
        if everything:
            cursor = None
            while True:
                page = app.service.list(limit=200, cursor=cursor)
                ids.extend(r.id for r in page.items)
                if (cursor := page.next_cursor) is None:
                    break
        failed = 0
        for image_id in ids:
            try:
                app.service.reprocess(image_id)
                click.echo(f"queued {image_id}")
            except ImgpipeError as exc:
                failed += 1
                click.echo(f"skipped {image_id}: {exc.code} - {exc.message}", err=True)
    finally:
        app.close()
    sys.exit(1 if failed else 0)
