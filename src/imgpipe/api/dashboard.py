"""The dashboard: static HTML, CSS and JavaScript shipped in ``imgpipe/dashboard/``, served by
the same resolver as the API (locally and from the Lambda function; no separate hosting).

``register_dashboard(app, config)`` adds ``GET /`` (a redirect), ``GET /dashboard`` (the page)
and ``GET /dashboard/<name>``: its assets, and ``config.json`` (how the page must authenticate).
The asset list is read once, with ``importlib.resources``, when the routes are registered: a
request can only name one of those files, so no path - encoded, dotted or otherwise - reaches
the file system.

Every response carries a strict Content-Security-Policy (scripts and styles from this origin
only, nothing inline), ``nosniff`` and ``no-referrer``. There is no build step, so file names
carry no content hash: responses are ``no-cache`` with a strong ETag, and a revalidation that
matches costs a 304 with no body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response

from imgpipe.errors import NotFoundError
from imgpipe.etags import content_etag, etag_matches

__all__ = ["content_policy", "register_dashboard"]

_INDEX = "index.html"
_CONFIG = "config.json"  # made from the app's settings, not a file
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
# img-src https: and connect-src https: are for AWS, where renditions redirect to presigned S3
# URLs (or come from the CDN) and large uploads post their form straight to the bucket. With an
# OpenID provider, its token endpoint's origin is added to connect-src (``content_policy``).
_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob: https:",
    "connect-src": "'self' https:",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}


def content_policy(config: dict[str, Any]) -> str:
    """The page's Content-Security-Policy: ``_POLICY``, plus the OpenID provider's token
    endpoint's origin in ``connect-src`` (the page posts the PKCE code exchange there)."""
    policy = dict(_POLICY)
    token_endpoint = (config.get("oidc") or {}).get("token_endpoint")
    if token_endpoint:
        parsed = urlsplit(token_endpoint)
        policy["connect-src"] += f" {parsed.scheme}://{parsed.netloc}"
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def _security_headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


@dataclass(frozen=True, slots=True)
class _Asset:
    content_type: str
    text: str
    etag: str


def _load(folder: Traversable) -> dict[str, _Asset]:
    """Every servable file directly in ``folder``, by name (no sub-folders, no dotfiles)."""
    assets = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and not entry.name.startswith(".") and suffix in _CONTENT_TYPES:
            assets[entry.name] = _asset(suffix, entry.read_bytes())
    return assets


def _asset(suffix: str, data: bytes) -> _Asset:
    return _Asset(_CONTENT_TYPES[suffix], data.decode("utf-8"), content_etag(data))


def register_dashboard(app: FastAPI, config: dict[str, Any]) -> None:
    """Serve the dashboard from ``app``: ``/`` redirects to ``/dashboard``, and
    ``/dashboard/config.json`` tells the page ``config`` (how to authenticate)."""
    assets = _load(files("imgpipe") / "dashboard")
    index = assets.pop(_INDEX)
    assets[_CONFIG] = _asset(".json", json.dumps(config, sort_keys=True).encode())
    security = _security_headers(content_policy(config))

    def _send(request: Request, asset: _Asset) -> Response:
        headers = {**security, "ETag": asset.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("if-none-match"), asset.etag):
            return Response(status_code=304, headers=headers)
        return Response(asset.text, 200, headers=headers, media_type=asset.content_type)

    def _redirect(location: str) -> Response:
        # Relative, so that it also holds behind an API Gateway stage prefix.
        headers = {"Location": location, **security}
        return Response(status_code=302, headers=headers, media_type="text/plain; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return _redirect("dashboard")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard(request: Request) -> Response:
        return _send(request, index)

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard_slash() -> Response:
        return _redirect("../dashboard")  # the page's relative asset URLs assume no slash

    @app.get("/dashboard/{name}", include_in_schema=False)
    def dashboard_asset(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            raise NotFoundError("no such dashboard file")
        return _send(request, asset)
