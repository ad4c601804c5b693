"""The local HTTP face: the one ASGI app (``imgpipe.api.routes``) on uvicorn, plus what S3 and
API Gateway do in front of it on AWS.

``POST /_uploads`` stands in for S3: it receives the presigned-style upload forms that
``POST /uploads`` hands out, enforces their signed policy while the body streams to disk, and
stores the object - which announces itself to the queue exactly like an S3 ObjectCreated event.

``Guard`` stands in for API Gateway's throttling and authorizer: past ``max_requests``
concurrent requests each new one gets a JSON 503 at once (never a dropped connection). With an
access token (``--token``) or an OpenID provider (``--oidc-issuer``: a JWT checked like API
Gateway's JWT authorizer, ``imgpipe.api.identity``), every request but the public ones must
carry ``Authorization: Bearer <token>`` - except rendition reads whose URL carries a valid
signature (``imgpipe.api.signing``), which is what lets the dashboard's ``<img>`` elements load
them.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from typing import Any, BinaryIO, cast

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from imgpipe.api.bodies import read_form
from imgpipe.api.identity import CLAIMS, JwtVerifier, OidcClient, discover
from imgpipe.api.routes import AuthMode, build_api, error_response
from imgpipe.api.signing import UrlSigner
from imgpipe.bootstrap import LOCAL_UPLOAD_PATH, LocalApp
from imgpipe.errors import BadRequestError, BusyError, ConfigError, UnauthorizedError

__all__ = ["Guard", "build_local_api", "make_server"]

log = logging.getLogger("imgpipe.server")

# Paths anyone may GET: the page and its files, the API description, liveness.
_PUBLIC_PREFIXES = ("/dashboard", "/docs", "/openapi.json", "/health")
_RENDITION = re.compile(r"/images/[^/]+/renditions/[^/]+")


class Guard:
    """ASGI middleware: a concurrency cap (JSON 503) and, with a static ``token`` or a JWT
    ``verifier``, a bearer check (JSON 401). ``signer`` admits signed rendition URLs."""

    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        token: str | None = None,
        verifier: JwtVerifier | None = None,
        signer: UrlSigner | None = None,
    ) -> None:
        if token and verifier:
            raise ValueError("a static token or an OpenID provider, not both")
        self.app, self.max_requests = app, max_requests
        self.token = token.encode() if token else None
        self.verifier, self.signer = verifier, signer
        self.active = 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def send_logged(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        app: ASGIApp = self.app
        if self.active >= self.max_requests:
            busy = BusyError(f"over {self.max_requests} requests in progress; retry shortly")
            app = error_response(busy, {"Retry-After": "1"})
        elif self.token is not None or self.verifier is not None:
            refused = await self._refusal(scope)
            if refused is not None:
                app = error_response(refused, {"WWW-Authenticate": 'Bearer realm="imgpipe"'})
        self.active += 1
        try:
            await app(scope, receive, send_logged)
        finally:
            self.active -= 1
            client = scope.get("client") or ("", 0)
            log.info("request", extra={
                "method": scope["method"], "path": scope["path"], "status": status or 499,
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "client": client[0]})  # fmt: skip

    def _open(self, scope: Scope) -> bool:
        """Whether the request needs no bearer: public pages, the signed upload form (its own
        credential, as with S3) and rendition reads with a valid URL signature."""
        path: str = scope["path"]
        reading = scope["method"] in ("GET", "HEAD")
        if reading and (path == "/" or path.startswith(_PUBLIC_PREFIXES)):
            return True
        if path == LOCAL_UPLOAD_PATH:
            return True
        return bool(reading and self.signer is not None and _RENDITION.fullmatch(path)
                    and self.signer.verify(path, scope["query_string"]))  # fmt: skip

    async def _refusal(self, scope: Scope) -> UnauthorizedError | None:
        """Why the request may not pass (``None``: it may); a verified JWT's claims are left
        in the scope for the routes (``identity.caller``)."""
        if self._open(scope):
            return None
        credential = next((value for name, value in scope["headers"]
                           if name == b"authorization"), b"")  # fmt: skip
        scheme, _, bearer = credential.partition(b" ")
        bearer = bearer.strip()
        if scheme.lower() != b"bearer" or not bearer:
            return UnauthorizedError("send Authorization: Bearer <token>")
        if self.verifier is None:
            accepted = hmac.compare_digest(bearer, cast(bytes, self.token))
            return None if accepted else UnauthorizedError("send Authorization: Bearer <token>")
        try:
            scope[CLAIMS] = await run_in_threadpool(self.verifier.verify, bearer.decode("latin-1"))
        except UnauthorizedError as refused:
            log.info("bearer refused", extra={"reason": refused.message, "path": scope["path"]})
            return refused
        return None


def build_local_api(
    app: LocalApp, token: str | None = None, oidc: OidcClient | None = None,
    signer: UrlSigner | None = None,
) -> FastAPI:  # fmt: skip
    """The API app plus the local stand-in for S3's form upload endpoint. With a ``token`` the
    dashboard asks for it; with ``oidc`` it signs in there. Rendition URLs are signed by
    ``signer``."""
    auth: AuthMode = "oidc" if oidc else "token" if token else "none"
    api = build_api(app.service, auth=auth, signer=signer, oidc=oidc)
    service, limits = app.service, app.service.settings

    @api.post(LOCAL_UPLOAD_PATH, status_code=204, include_in_schema=False)
    async def local_upload(request: Request) -> Response:
        """Receive a presigned-style upload form, enforce its policy, store the object."""
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise BadRequestError("upload forms must be multipart/form-data")
        form = await read_form(request, limits.limits.max_bytes,
                               limits.service.request_deadline_s)  # fmt: skip
        try:
            grant = app.signer.verify(form.fields)
            if form.file is None:
                raise BadRequestError("the upload form has no 'file' part")
            grant.check_size(form.file_size)
            record = await run_in_threadpool(service.claim_upload, grant.key)
            form.file.seek(0)
            await run_in_threadpool(
                app.blobs.put_stream, grant.key, cast(BinaryIO, form.file), grant.content_type,
                {"filename": record.filename or ""}, limits.limits.max_bytes)  # fmt: skip
        finally:
            form.close()
        await run_in_threadpool(service.object_created, grant.key)
        return Response(status_code=204)

    return api


def make_server(
    app: LocalApp, host: str, port: int, token: str | None, oidc_issuer: str | None = None,
    oidc_client_id: str | None = None,
) -> uvicorn.Server:  # fmt: skip
    """The guarded local API on uvicorn, configured from the settings: backlog, keep-alive, no
    access log of its own. With ``oidc_issuer`` (and its ``oidc_client_id``) requests need a
    JWT from that provider; its discovery document is read here, once."""
    limits = app.service.settings.service
    oidc, verifier = None, None
    # Renditions load in <img> without a bearer, so their URLs are signed: with a token, by a
    # key derived from it (a new token revokes every URL).
    signer = UrlSigner.from_token(token) if token else None
    if oidc_issuer:
        if token:
            raise ConfigError("use --token or --oidc-issuer, not both")
        if not oidc_client_id:
            raise ConfigError("--oidc-issuer needs --oidc-client-id (the dashboard's client)")
        oidc, jwks_uri = discover(oidc_issuer, oidc_client_id)
        verifier = JwtVerifier(oidc.issuer, oidc.client_id, jwks_uri)
        # Renditions load in <img> without a token: their URLs are signed with a key derived
        # from this data folder's secret (it stays across restarts, so URLs do too).
        signer = UrlSigner(app.signer.derive("rendition urls"))
    guarded = Guard(build_local_api(app, token, oidc, signer), limits.max_requests, token,
                    verifier, signer)  # fmt: skip
    config = uvicorn.Config(
        guarded, host=host, port=port, backlog=limits.backlog, http="h11",
        timeout_keep_alive=int(max(1, limits.keepalive_s)), lifespan="off", access_log=False,
        log_config=None, server_header=False, date_header=True,
        # A hard ceiling well above the Guard's cap: past it uvicorn itself answers 503.
        limit_concurrency=limits.max_requests * 4 + 64,
    )  # fmt: skip
    return uvicorn.Server(config)
