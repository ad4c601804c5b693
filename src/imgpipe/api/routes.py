"""The HTTP API, defined once as an ASGI application (FastAPI).

``build_api(service)`` returns the app. Locally ``imgpipe serve`` runs it on uvicorn; the Lambda
function runs the same app through Mangum (API Gateway HTTP API, payload v2). ``/openapi.json``
is generated from these definitions. Every error - ours, validation, unknown route or method,
and anything unexpected - is ``{"error": {"code", "message"}}`` with the status of its class.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from imgpipe import __version__
from imgpipe.api.bodies import read_body, read_form
from imgpipe.api.dashboard import register_dashboard
from imgpipe.api.identity import OidcClient, caller
from imgpipe.api.signing import UrlSigner
from imgpipe.core.formats import ACCEPTED_MIME_TYPES
from imgpipe.errors import (
    BadRequestError,
    EmptyError,
    ImgpipeError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
)
from imgpipe.etags import etag_matches
from imgpipe.keys import is_id
from imgpipe.model import ImageRecord
from imgpipe.service import ImageService
from imgpipe.similarity import DEFAULT_DISTANCE, MAX_DISTANCE

__all__ = ["AuthMode", "build_api", "error_response", "present"]

log = logging.getLogger("imgpipe.api")

JSON = "application/json"
_FILENAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
# How a browser proves who it is: nothing, the bearer token of ``imgpipe serve --token``, or
# an OpenID Connect sign-in (``imgpipe.api.identity``; Cognito on AWS).
AuthMode = Literal["none", "token", "oidc"]
StatusName = Literal["pending", "processing", "processed", "rejected", "failed"]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported_type"])
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class Links(BaseModel):
    self: str


class Accepted(BaseModel):
    id: str
    status: StatusName
    links: Links


class RenditionOut(BaseModel):
    name: str
    format: str
    width: int
    height: int
    bytes: int
    url: str


class TagOut(BaseModel):
    name: str
    confidence: float
    source: str


class NearDuplicate(BaseModel):
    id: str
    distance: int = Field(description="Bits of the 64-bit pHash that differ")


class ImageOut(BaseModel):
    id: str
    status: StatusName
    filename: str | None
    content_type: str | None
    bytes: int | None
    sha256: str | None
    created_at: str
    processed_at: str | None
    width: int | None
    height: int | None
    format: str | None
    metadata: dict[str, Any]
    renditions: list[RenditionOut]
    tags: list[TagOut]
    duplicate_of: str | None
    near_duplicate_of: NearDuplicate | None = Field(
        default=None, description="The closest older image with a near-identical pHash"
    )
    uploaded_by: str | None = Field(description="The uploader's subject (``sub``) when signed in")
    error: ErrorDetail | None
    links: Links


class ImageList(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None


class SimilarOut(BaseModel):
    distance: int = Field(description="Bits of the 64-bit pHash that differ")
    image: ImageOut


class SimilarList(BaseModel):
    items: list[SimilarOut]


class UploadRequest(BaseModel):
    """``bytes`` is also capped at ``max_bytes`` by ``_upload_request`` (the schema tells it)."""

    filename: str | None = Field(default=None, max_length=1024)
    content_type: str = Field(examples=["image/jpeg"],
                              json_schema_extra={"enum": list(ACCEPTED_MIME_TYPES)})  # fmt: skip
    bytes: int = Field(gt=0, strict=True)  # JSON true is not a size (lax mode reads it as 1)


class FocalPointIn(BaseModel):
    """A point of the processed image, in display pixels (after EXIF orientation)."""

    x: int = Field(ge=0, le=1_000_000, strict=True)
    y: int = Field(ge=0, le=1_000_000, strict=True)


class UploadForm(BaseModel):
    url: str
    method: Literal["POST"] = "POST"
    fields: dict[str, str]


class UploadOut(BaseModel):
    id: str
    upload: UploadForm
    expires_at: str
    links: Links


class Health(BaseModel):
    status: str
    version: str
    queue: dict[str, float]
    webhooks: dict[str, float] | None = Field(
        default=None, description="Webhook deliveries (visible, in_flight, dead) when configured"
    )


def error_response(error: ImgpipeError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error every face sends."""
    return JSONResponse({"error": error.to_dict()}, error.http_status, headers=headers)


def present(
    record: ImageRecord, signer: UrlSigner | None = None, cdn_url: str | None = None
) -> ImageOut:
    """The public view of a record: rendition URLs instead of storage keys - on the CDN
    (``<cdn_url>/processed/<id>/<file>?v=<etag>``: a new URL for new bytes, so it may be cached
    for good), else this API's rendition route, signed when the API needs a token, so that
    either loads in an ``<img>``."""
    base = f"/images/{record.id}"

    def url(rendition: dict[str, Any]) -> str:
        key = rendition["key"]
        if cdn_url is not None:
            return f"{cdn_url}/{key}?v={rendition.get('etag') or record.processed_at or ''}"
        path = f"{base}/renditions/{key.rsplit('/', 1)[1]}"
        return signer.sign(path) if signer is not None else path

    renditions = [
        RenditionOut(name=r["name"], format=r["format"], width=r["width"], height=r["height"],
                     bytes=r["bytes"], url=url(r))
        for r in record.renditions
    ]  # fmt: skip
    return ImageOut(
        id=record.id, status=record.status, filename=record.filename,
        content_type=record.content_type, bytes=record.bytes, sha256=record.sha256,
        created_at=record.created_at, processed_at=record.processed_at, width=record.width,
        height=record.height, format=record.format, metadata=record.metadata,
        renditions=renditions, tags=[TagOut(**t) for t in record.tags],
        duplicate_of=record.duplicate_of, uploaded_by=record.uploaded_by,
        near_duplicate_of=(NearDuplicate(**record.near_duplicate_of)
                           if record.near_duplicate_of else None),
        error=ErrorDetail(**record.error) if record.error else None, links=Links(self=base),
    )  # fmt: skip


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {400: "Malformed request", 401: "Missing or wrong access token",
                 404: "Unknown image or route", 405: "Method not allowed",
                 409: "The image is not in a state that allows this (e.g. not processed yet)",
                 408: "The body came too slowly", 413: "Too large", 415: "Unsupported type",
                 422: "Invalid parameters, or an image that is corrupt, truncated or too big",
                 500: "Internal error", 503: "Over the concurrency cap; retry"}  # fmt: skip
    return {s: {"description": described[s], "model": ErrorOut} for s in statuses}


_COMMON = (400, 401, 405, 422, 500, 503)


def _location(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "model": model,
            "headers": {"Location": {"description": "The image's URL",
                                     "schema": {"type": "string"}}}}  # fmt: skip


_IMAGE_TYPES = (*ACCEPTED_MIME_TYPES, "application/octet-stream")
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: raw bytes, or a multipart form with the file in 'file'.",
        "content": {
            **{t: {"schema": {"type": "string", "format": "binary", "minLength": 1}}
               for t in _IMAGE_TYPES},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary",
                                        "minLength": 1}}}},
        },
    }
}  # fmt: skip


def build_api(  # noqa: PLR0915 - the one route list
    service: ImageService,
    *,
    auth: AuthMode = "none",
    signer: UrlSigner | None = None,
    oidc: OidcClient | None = None,
    cdn_url: str | None = None,
) -> FastAPI:
    """The app with every route bound to ``service``.

    ``auth`` is what the dashboard must do to call the API (told by ``/dashboard/config.json``,
    with the provider's endpoints from ``oidc`` when it signs in); ``signer``, when given,
    signs the rendition URLs in every record; ``cdn_url`` points them at the CDN instead."""
    if (auth == "oidc") != (oidc is not None):
        raise ValueError("auth 'oidc' and an OidcClient go together")
    app = FastAPI(title="imgpipe", version=__version__, docs_url=None, redoc_url=None,
                  description="Upload images; get renditions, metadata and tags back.")  # fmt: skip
    limits = service.settings.service

    @app.exception_handler(ImgpipeError)
    async def _imgpipe_error(request: Request, exc: ImgpipeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', e.get('type'))}"
            for e in exc.errors()
        )
        return error_response(InvalidRequestError(problems or "invalid request"))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request)
            return error_response(MethodNotAllowedError(f"{request.method} is not allowed here"),
                                  headers={"Allow": ", ".join(allowed)})  # fmt: skip
        if exc.status_code == 404:
            return error_response(NotFoundError("no such route"))
        error = BadRequestError(str(exc.detail))
        return JSONResponse({"error": error.to_dict()}, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", exc_info=exc,
                  extra={"method": request.method, "path": request.url.path})  # fmt: skip
        return error_response(InternalError("internal error; see the server log"))

    def _image_id(image_id: str) -> str:
        if not is_id(image_id):
            raise NotFoundError(f"no image {image_id[:40]}")
        return image_id

    @app.post(
        "/images", status_code=202, summary="Upload an image (raw body or multipart field 'file'), "
        "at most 4 MiB", openapi_extra=_UPLOAD_BODY,
        responses={202: _location("Stored and queued", Accepted),
                   **_errors(*_COMMON, 408, 413, 415)},
    )  # fmt: skip
    async def upload_image(
        request: Request, filename: Annotated[str | None, Query(max_length=1024)] = None
    ) -> JSONResponse:
        cap, hint = limits.direct_max_bytes, "; use POST /uploads for larger files"
        deadline = limits.request_deadline_s
        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            form = await read_form(request, cap, deadline, hint)
            try:
                raw, filename = form.read_file(), filename or form.filename
            finally:
                form.close()
            if not raw:
                raise BadRequestError("the form has no 'file' part (or it is empty)")
        else:
            with await read_body(request, cap, deadline, hint) as body:
                raw = body.read()
        if not raw:
            raise EmptyError("the request body is empty; send the image bytes")
        record = await run_in_threadpool(service.upload, raw, filename, caller(request))
        return _accepted(record)

    @app.post(
        "/uploads", status_code=201,
        summary="Start a presigned-style upload for large files (S3 POST form shape)",
        responses={201: _location("Upload form granted", UploadOut),
                   **_errors(*_COMMON, 413, 415)},
    )  # fmt: skip
    def create_upload(request: UploadRequest, http: Request) -> JSONResponse:
        ticket = service.create_upload(request.filename, request.content_type, request.bytes,
                                       caller(http))  # fmt: skip
        post = ticket.upload
        out = UploadOut(id=ticket.id, upload=UploadForm(url=post.url, fields=post.fields),
                        expires_at=post.expires_at,
                        links=Links(self=f"/images/{ticket.id}"))  # fmt: skip
        return JSONResponse(out.model_dump(), 201, headers={"Location": f"/images/{ticket.id}"})

    @app.get("/images", summary="List images, newest first", responses=_errors(*_COMMON))
    def list_images(
        status: Annotated[StatusName | None, Query()] = None,
        tag: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> ImageList:
        try:
            page = service.list(status=status, tag=tag, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise InvalidRequestError("invalid cursor") from exc
        return ImageList(
            items=[present(r, signer, cdn_url) for r in page.items], next_cursor=page.next_cursor
        )

    @app.get("/images/{image_id}", summary="One image's record",
             responses=_errors(*_COMMON, 404))  # fmt: skip
    def get_image(image_id: str) -> ImageOut:
        return present(service.get(_image_id(image_id)), signer, cdn_url)

    @app.get("/images/{image_id}/similar",
             summary="Images whose perceptual hash is within max_distance bits, closest first",
             responses=_errors(*_COMMON, 404, 409))  # fmt: skip
    def similar_images(
        image_id: str,
        max_distance: Annotated[int, Query(ge=0, le=MAX_DISTANCE)] = DEFAULT_DISTANCE,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> SimilarList:
        found = service.similar(_image_id(image_id), max_distance, limit)
        return SimilarList(items=[SimilarOut(distance=s.distance,
                                             image=present(s.record, signer, cdn_url))
                                  for s in found])  # fmt: skip

    @app.get(
        "/images/{image_id}/renditions/{filename}",
        summary="A rendition's bytes (e.g. large.jpg, thumb.webp)", response_class=Response,
        responses={200: {"description": "Image bytes", "content": {
                            "image/*": {"schema": {"type": "string", "format": "binary"}}},
                         "headers": {"ETag": {"description": "Strong validator",
                                              "schema": {"type": "string"}}}},
                   302: {"description": "Redirect to the store's time-limited URL"},
                   304: {"description": "Not modified (If-None-Match matched)"},
                   **_errors(*_COMMON, 404)},
    )  # fmt: skip
    def get_rendition(request: Request, image_id: str, filename: str) -> Response:
        if not set(filename) <= _FILENAME_CHARS or filename.count(".") != 1:
            raise NotFoundError("no such rendition")
        delivery = service.rendition(_image_id(image_id), filename)
        headers = {"ETag": delivery.etag, "Cache-Control": "public, max-age=31536000, immutable",
                   "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'inline; filename="{image_id}-{filename}"'}  # fmt: skip
        if delivery.redirect is not None:
            # Presigned URLs expire: the redirect itself must not be cached for long.
            redirect = {"Location": delivery.redirect, "Cache-Control": "private, max-age=60"}
            return Response(status_code=302, headers=redirect)
        if etag_matches(request.headers.get("if-none-match"), delivery.etag):
            return Response(status_code=304, headers=headers)
        return Response(delivery.data, 200, headers=headers, media_type=delivery.content_type)

    @app.delete("/images/{image_id}", status_code=204, response_class=Response,
                summary="Delete an image, its original and renditions (idempotent)",
                responses={204: {"description": "Deleted, or there was nothing to delete"},
                           **_errors(*_COMMON)})  # fmt: skip
    def delete_image(image_id: str) -> Response:
        if is_id(image_id):
            service.delete(image_id)
        return Response(status_code=204)

    @app.post("/images/{image_id}/reprocess", status_code=202, summary="Process an image again",
              responses={202: _location("Queued", Accepted),
                         **_errors(*_COMMON, 404)})  # fmt: skip
    def reprocess_image(image_id: str) -> JSONResponse:
        record = service.reprocess(_image_id(image_id))
        return _accepted(record)

    @app.put("/images/{image_id}/focal-point", status_code=202,
             summary="Set the point cover crops keep (display pixels) and render them again",
             responses={202: _location("Queued", Accepted),
                        **_errors(*_COMMON, 404, 409)})  # fmt: skip
    def set_focal_point(image_id: str, point: FocalPointIn) -> JSONResponse:
        record = service.set_focal_point(_image_id(image_id), point.x, point.y)
        return _accepted(record)

    @app.get("/health", summary="Liveness and queue depth", responses=_errors(500, 503))
    def health() -> Health:
        stats = {k: float(v) for k, v in service.queue.stats().items()}
        deliveries = service.events.stats() if service.events is not None else None
        hooks = {k: float(v) for k, v in deliveries.items()} if deliveries is not None else None
        return Health(status="ok", version=__version__, queue=stats, webhooks=hooks)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
        return Response(docs_page(app), headers=headers, media_type="text/html; charset=utf-8")

    register_dashboard(app, {"auth": auth, **({"oidc": oidc.dashboard_config()} if oidc else {})})
    return app


def _accepted(record: ImageRecord) -> JSONResponse:
    """202 with the image's id, status and ``Location``: queued for processing."""
    out = Accepted(id=record.id, status=record.status, links=Links(self=f"/images/{record.id}"))
    return JSONResponse(out.model_dump(), 202, headers={"Location": f"/images/{record.id}"})


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own Allow names only one)."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def docs_page(app: FastAPI) -> str:
    """A self-contained page listing every operation (no CDN, no script)."""
    schema = app.openapi()
    rows = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = ", ".join(sorted(operation.get("responses", {})))
            rows.append(f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                        f"<td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(operation.get('summary', ''))}</td>"
                        f"<td>{html.escape(codes)}</td></tr>")  # fmt: skip
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>imgpipe API</title>"
        "<style>body{font:15px system-ui;margin:2em}td{padding:.3em .8em;"
        "border-bottom:1px solid #ddd}</style>"
        f"<h1>imgpipe API {html.escape(__version__)}</h1>"
        "<p>The machine-readable definition is <a href=/openapi.json>/openapi.json</a>.</p>"
        "<table><tr><th>method<th>path<th>what<th>statuses</tr>" + "".join(rows) + "</table>"
    )
