"""The local HTTP server: every request becomes the API Gateway HTTP API (v2) event the Lambda
function would get, and goes through the same route definitions (``imgpipe.api.routes``).

One extra route stands in for S3: ``POST /_uploads`` receives the presigned-style upload forms
that ``POST /uploads`` hands out, enforces their signed policy, and stores the object - which
announces itself to the queue exactly like an S3 ObjectCreated event.

Request bodies are bounded before they are read (``Content-Length`` is required and checked),
and every connection has a socket timeout, so a slow or endless upload cannot exhaust memory or
hold a thread forever.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgpipe.api.forms import FormReader
from imgpipe.api.routes import build_api, error_body
from imgpipe.bootstrap import LOCAL_UPLOAD_PATH, LocalApp
from imgpipe.errors import (
    BadRequestError,
    ImgpipeError,
    TooLargeBytesError,
    UploadPolicyError,
)
from imgpipe.keys import id_from_key

__all__ = ["LocalServer", "to_v2_event"]

log = logging.getLogger("imgpipe.server")

_SMALL_BODY = 1 << 20  # JSON requests
_FORM_OVERHEAD = 64 << 10  # multipart boundaries and headers around a direct upload
_CHUNK = 256 << 10
_SOCKET_TIMEOUT_S = 30
# What the resolver gets where Lambda would pass its context object.
_LOCAL_CONTEXT = cast(LambdaContext, SimpleNamespace(
    function_name="imgpipe-local", memory_limit_in_mb=0, aws_request_id="local",
    invoked_function_arn="arn:aws:lambda:local:000000000000:function:imgpipe-local"))  # fmt: skip


def to_v2_event(method: str, target: str, headers: dict[str, str], body: bytes,
                source_ip: str) -> dict[str, Any]:  # fmt: skip
    """An API Gateway HTTP API payload v2 event for one request (body always base64)."""
    path, _, query = target.partition("?")
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": params or None,
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": headers.get("host", "local"),
            "domainPrefix": "local", "requestId": uuid.uuid4().hex, "routeKey": "$default",
            "stage": "$default", "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    timeout = _SOCKET_TIMEOUT_S
    server_version = "imgpipe"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: requests are logged as structured lines by ``_dispatch``."""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        status = 500
        try:
            path = self.path.partition("?")[0]
            if path == LOCAL_UPLOAD_PATH and self.command == "POST":
                status = self._local_upload()
            else:
                status = self._resolve(path)
        except ImgpipeError as exc:
            # The body may be partly unread: never parse what is left as another request.
            self.close_connection = True
            status = self._send(exc.http_status, "application/json", error_body(exc).encode())
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            status = 499  # the client went away or stalled
        finally:
            log.info("request", extra={
                "method": self.command, "path": self.path.partition("?")[0], "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "client": self.client_address[0]})  # fmt: skip

    def _content_length(self, cap: int, hint: str = "") -> int:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise BadRequestError("send a Content-Length; chunked request bodies are refused")
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit():
            self.close_connection = True
            raise BadRequestError("invalid Content-Length")
        length = int(raw)
        if length > cap:
            self.close_connection = True  # the unread body makes the connection unusable
            raise TooLargeBytesError(f"request body of {length:,} bytes is over the "
                                     f"{cap:,} byte limit{hint}")  # fmt: skip
        return length

    def _read_exactly(self, length: int) -> bytes:
        chunks, remaining = [], length
        while remaining:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _resolve(self, path: str) -> int:
        settings = self.server.app.service.settings
        if path == "/images" and self.command == "POST":
            cap = settings.service.direct_max_bytes + _FORM_OVERHEAD
            hint = "; use POST /uploads for larger files"
        else:
            cap, hint = _SMALL_BODY, ""
        body = self._read_exactly(self._content_length(cap, hint))
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = to_v2_event(self.command, self.path, headers, body, self.client_address[0])
        with self.server.resolve_lock:
            result = self.server.resolver.resolve(event, _LOCAL_CONTEXT)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        content_type = "application/json"
        extra: dict[str, str] = {}
        for name, value in (result.get("headers") or {}).items():
            if name.lower() == "content-type":
                content_type = value
            else:
                extra[name] = value
        return self._send(int(result["statusCode"]), content_type, data, extra)

    def _local_upload(self) -> int:
        """Receive a presigned-style upload form, enforce its policy, store the object."""
        service = self.server.app.service
        max_bytes = service.settings.limits.max_bytes
        length = self._content_length(max_bytes + _FORM_OVERHEAD)
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.lower().startswith("multipart/form-data"):
            raise BadRequestError("upload forms must be multipart/form-data")
        reader = FormReader(content_type, max_bytes)
        remaining = length
        while remaining:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                raise ConnectionError("client closed the connection mid-upload")
            reader.feed(chunk)
            remaining -= len(chunk)
        form = reader.finish()
        try:
            grant = self.server.app.signer.verify(form.fields)
            if form.file is None:
                raise BadRequestError("the upload form has no 'file' part")
            grant.check_size(form.file_size)
            if self.server.app.blobs.head(grant.key) is not None:
                raise UploadPolicyError("this upload form has already been used")
            record = service.records.get(id_from_key(grant.key))
            if record is None:
                raise UploadPolicyError("this upload was cancelled or has expired")
            form.file.seek(0)
            self.server.app.blobs.put_stream(
                grant.key, cast(BinaryIO, form.file), grant.content_type,
                {"filename": record.filename or ""}, max_bytes)  # fmt: skip
        finally:
            form.close()
        service.object_created(grant.key)
        return self._send(HTTPStatus.NO_CONTENT, "application/json", b"")

    def _send(self, status: int, content_type: str, data: bytes,
              headers: dict[str, str] | None = None) -> int:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            data = b""
        else:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
        return status


class LocalServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one ``LocalApp`` and its API resolver."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: LocalApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.resolver: APIGatewayHttpResolver = build_api(app.service)
        # Powertools keeps the request it is resolving in shared state (the class attribute
        # ``current_event``, the resolver's ``context``), so requests go through one at a time.
        self.resolve_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"
