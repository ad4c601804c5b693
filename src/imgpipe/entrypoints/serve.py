"""``imgpipe serve``: the local server, its workers and housekeeping, in one process tree."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

from imgpipe.bootstrap import LocalApp, build_local
from imgpipe.entrypoints.server import make_server
from imgpipe.entrypoints.worker import WorkerPool
from imgpipe.errors import ConfigError
from imgpipe.logs import configure_logging
from imgpipe.settings import Settings

__all__ = ["run_server"]

log = logging.getLogger("imgpipe.serve")

_HOUSEKEEPING_S = 2.0
_RECONCILE_EVERY = 30  # housekeeping rounds (about a minute)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _start_webhooks(
    app: LocalApp, settings: Settings, stopping: threading.Event
) -> threading.Thread | None:
    """The thread that delivers the queued webhook events, when any URL is configured."""
    if app.webhooks is None:
        return None
    from imgpipe.adapters.local.webhooks import WebhookDeliverer  # noqa: PLC0415 - httpx

    hooks = settings.webhooks
    deliverer = WebhookDeliverer(app.webhooks, hooks.urls, hooks.secret, hooks.timeout_s,
                                 hooks.backoff_s)  # fmt: skip

    def deliver() -> None:
        try:
            while not stopping.is_set():
                try:
                    deliverer.deliver(wait_s=1.0)
                except Exception:  # a bad round must not end the deliveries
                    log.exception("webhook deliveries failed")
                    stopping.wait(_HOUSEKEEPING_S)
        finally:
            deliverer.close()

    thread = threading.Thread(target=deliver, name="webhooks", daemon=True)
    thread.start()
    return thread


def run_server(host: str, port: int, data_dir: Path, workers: int, public_url: str | None,
               config: Path | None, settings: Settings, token: str | None = None,
               oidc_issuer: str | None = None,
               oidc_client_id: str | None = None) -> None:  # fmt: skip
    """Serve until SIGINT/SIGTERM; then stop accepting, let workers finish, and exit.

    A non-loopback ``host`` needs an access ``token`` or an OpenID provider: a LAN bind must
    not expose DELETE and uploads to everyone on the network."""
    if not _loopback(host) and not (token or oidc_issuer):
        raise ConfigError(
            f"refusing to serve on {host} without sign-in: set --token (IMGPIPE_API_TOKEN) or "
            "--oidc-issuer (or bind 127.0.0.1)"
        )
    configure_logging()
    port = port or _free_port(host)
    base_url = (public_url or f"http://{host}:{port}").rstrip("/")
    app = build_local(data_dir, settings, base_url=base_url)
    server = make_server(app, host, port, token, oidc_issuer, oidc_client_id)
    swept = app.blobs.sweep_temp_files()  # nothing is in flight before the workers start
    recovered = app.service.reconcile(older_than_s=0)
    pool = WorkerPool(data_dir, config, workers, settings.limits.timeout_s, app.queue)
    pool.start()
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # uvicorn handles the signal (graceful shutdown) and re-raises it once it has stopped:
        # this handler then only records it, so the cleanup below still runs.
        log.info("stopping", extra={"signal": signal.Signals(signum).name})

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def housekeeping() -> None:
        rounds = 0
        while not stopping.wait(_HOUSEKEEPING_S):
            rounds += 1
            try:
                pool.check()
                app.service.sweep_dead_letters()
                if rounds % _RECONCILE_EVERY == 0:
                    app.service.reconcile(orphans_only=True)
            except Exception:  # housekeeping must outlive any single failure
                log.exception("housekeeping failed")

    keeper = threading.Thread(target=housekeeping, name="housekeeping", daemon=True)
    keeper.start()
    courier = _start_webhooks(app, settings, stopping)
    log.info("serving", extra={"url": base_url, "data_dir": str(data_dir), "workers": workers,
                               "recovered": recovered, "swept_temp_files": swept,
                               "token": bool(token), "oidc_issuer": oidc_issuer,
                               "webhooks": len(settings.webhooks.urls)})  # fmt: skip
    print(
        f"imgpipe is serving on {base_url}  (dashboard: {base_url}/dashboard, "
        f"API docs: {base_url}/docs)",
        flush=True,
    )
    try:
        server.run()
    finally:
        stopping.set()
        pool.stop(grace_s=settings.limits.timeout_s)
        keeper.join(timeout=5)
        if courier is not None:
            courier.join(timeout=settings.webhooks.timeout_s + 2)
        app.close()
        log.info("stopped")
