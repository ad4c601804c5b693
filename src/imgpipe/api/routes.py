"""The HTTP API, defined once with Powertools' event handler (API Gateway HTTP API, payload v2).

``build_api(service)`` returns the resolver; the Lambda function calls ``resolve(event, ctx)``
and the local server turns each HTTP request into the same v2 event. ``/openapi.json`` is
generated from these definitions. Errors are ``{"error": {"code", "message"}}`` with the status
carried by the error class.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, Field

from imgpipe import __version__
from imgpipe.api.dashboard import register_dashboard
from imgpipe.api.forms import parse_form_bytes
from imgpipe.errors import (
    BadRequestError,
    EmptyError,
    ImgpipeError,
    NotFoundError,
    TooLargeBytesError,
)
from imgpipe.keys import is_id
from imgpipe.model import ImageRecord
from imgpipe.service import ImageService

__all__ = ["build_api", "error_body", "present"]

JSON = "application/json"
_FILENAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
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
    error: ErrorDetail | None
    links: Links


class ImageList(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None


class UploadRequest(BaseModel):
    filename: str | None = Field(default=None, max_length=1024)
    content_type: str = Field(examples=["image/jpeg"])
    bytes: int = Field(gt=0)


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


def error_body(error: ImgpipeError) -> str:
    return json.dumps({"error": error.to_dict()})


def present(record: ImageRecord) -> ImageOut:
    """The public view of a record: rendition URLs instead of storage keys."""
    base = f"/images/{record.id}"
    renditions = [
        RenditionOut(name=r["name"], format=r["format"], width=r["width"], height=r["height"],
                     bytes=r["bytes"], url=f"{base}/renditions/{r['key'].rsplit('/', 1)[1]}")
        for r in record.renditions
    ]  # fmt: skip
    return ImageOut(
        id=record.id, status=record.status, filename=record.filename,
        content_type=record.content_type, bytes=record.bytes, sha256=record.sha256,
        created_at=record.created_at, processed_at=record.processed_at, width=record.width,
        height=record.height, format=record.format, metadata=record.metadata,
        renditions=renditions, tags=[TagOut(**t) for t in record.tags],
        duplicate_of=record.duplicate_of,
        error=ErrorDetail(**record.error) if record.error else None, links=Links(self=base),
    )  # fmt: skip


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match list (or ``*``)."""
    if not if_none_match:
        return False
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _errors(status: int, description: str) -> dict[int, Any]:
    return {status: {"description": description,
                     "content": {JSON: {"model": ErrorOut}}}}  # fmt: skip


def build_api(service: ImageService) -> APIGatewayHttpResolver:  # noqa: PLR0915 - the one route list
    """The resolver with every route bound to ``service``."""
    app = APIGatewayHttpResolver(enable_validation=True)
    # Routes that return bytes or HTML carry no return annotation: Powertools would otherwise
    # try to validate the body as JSON (hence their ``type: ignore[no-untyped-def]``).

    @app.exception_handler(ImgpipeError)  # type: ignore[untyped-decorator]
    def _imgpipe_error(exc: ImgpipeError) -> Response[str]:
        return Response(exc.http_status, JSON, error_body(exc))

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _validation_error(exc: RequestValidationError) -> Response[str]:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', e.get('type'))}"
            for e in exc.errors()
        )
        return Response(400, JSON, error_body(BadRequestError(problems or "invalid request")))

    @app.not_found
    def _not_found(exc: Exception) -> Response[str]:
        return Response(404, JSON, error_body(NotFoundError("no such route")))

    def _image_id(image_id: str) -> str:
        if not is_id(image_id):
            raise NotFoundError(f"no image {image_id[:40]}")
        return image_id

    @app.post(
        "/images",
        summary="Upload an image (raw body or multipart field 'file'), at most 4 MiB",
        responses={202: {"description": "Stored and queued",
                         "content": {JSON: {"model": Accepted}}},
                   **_errors(400, "Empty or malformed"), **_errors(413, "Too large"),
                   **_errors(415, "Unsupported type"),
                   **_errors(422, "Corrupt, truncated or too many pixels")},
    )  # fmt: skip
    def upload_image(filename: Annotated[str | None, Query(max_length=1024)] = None):  # type: ignore[no-untyped-def]
        event = app.current_event
        body = event.body or ""
        raw = base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")
        content_type = event.headers.get("content-type") or ""  # the boundary is case-sensitive
        if content_type.lower().startswith("multipart/form-data"):
            cap = service.settings.service.direct_max_bytes
            try:
                form = parse_form_bytes(raw, content_type, cap)
            except TooLargeBytesError as exc:
                raise TooLargeBytesError(
                    f"{exc.message}; use POST /uploads for larger files"
                ) from exc
            try:
                raw, filename = form.read_file(), filename or form.filename
            finally:
                form.close()
            if not raw:
                raise BadRequestError("the form has no 'file' part (or it is empty)")
        if not raw:
            raise EmptyError("the request body is empty; send the image bytes")
        record = service.upload(raw, filename)
        out = Accepted(id=record.id, status=record.status, links=Links(self=f"/images/{record.id}"))
        return Response(202, JSON, out.model_dump_json(),
                        headers={"Location": f"/images/{record.id}"})  # fmt: skip

    @app.post(
        "/uploads",
        summary="Start a presigned-style upload for large files (S3 POST form shape)",
        responses={201: {"description": "Upload form granted",
                         "content": {JSON: {"model": UploadOut}}},
                   **_errors(413, "Too large"), **_errors(415, "Unsupported type")},
    )  # fmt: skip
    def create_upload(request: UploadRequest) -> Response[UploadOut]:
        ticket = service.create_upload(request.filename, request.content_type, request.bytes)
        post = ticket.upload
        out = UploadOut(
            id=ticket.id,
            upload=UploadForm(url=post.url, fields=post.fields),
            expires_at=post.expires_at,
            links=Links(self=f"/images/{ticket.id}"),
        )
        return Response(201, JSON, out)

    @app.get("/images", summary="List images, newest first")
    def list_images(
        status: Annotated[StatusName | None, Query()] = None,
        tag: Annotated[str | None, Query(max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> ImageList:
        try:
            page = service.list(status=status, tag=tag, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise BadRequestError("invalid cursor") from exc
        return ImageList(items=[present(r) for r in page.items], next_cursor=page.next_cursor)

    @app.get("/images/<image_id>", summary="One image's record",
             responses={200: {"description": "The record", "content": {JSON: {"model": ImageOut}}},
                        **_errors(404, "Unknown id")})  # fmt: skip
    def get_image(image_id: str) -> ImageOut:
        return present(service.get(_image_id(image_id)))

    @app.get("/images/<image_id>/renditions/<filename>",
             summary="A rendition's bytes (e.g. large.jpg, thumb.webp)",
             responses={200: {"description": "Image bytes",
                              "content": {"image/*": {"schema": {"type": "string",
                                                                 "format": "binary"}}}},
                        **_errors(404, "Unknown image or rendition")})  # fmt: skip
    def get_rendition(image_id: str, filename: str):  # type: ignore[no-untyped-def]
        if not set(filename) <= _FILENAME_CHARS or filename.count(".") != 1:
            raise NotFoundError("no such rendition")
        delivery = service.rendition(_image_id(image_id), filename)
        headers = {"ETag": delivery.etag, "Cache-Control": "public, max-age=31536000, immutable",
                   "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'inline; filename="{image_id}-{filename}"'}  # fmt: skip
        if delivery.redirect is not None:
            # Presigned URLs expire: the redirect itself must not be cached for long.
            redirect = {"Location": delivery.redirect, "Cache-Control": "private, max-age=60"}
            return Response(302, None, "", headers=redirect)
        if _etag_matches(app.current_event.headers.get("if-none-match"), delivery.etag):
            return Response(304, delivery.content_type, b"", headers=headers)
        return Response(200, delivery.content_type, delivery.data, headers=headers)

    @app.delete("/images/<image_id>", summary="Delete an image, its original and renditions")
    def delete_image(image_id: str) -> Response[str]:
        if is_id(image_id):
            service.delete(image_id)
        return Response(204, None, "")

    @app.post("/images/<image_id>/reprocess", summary="Process an image again",
              responses={202: {"description": "Queued", "content": {JSON: {"model": Accepted}}},
                         **_errors(404, "Unknown id")})  # fmt: skip
    def reprocess_image(image_id: str) -> Response[Accepted]:
        record = service.reprocess(_image_id(image_id))
        out = Accepted(id=record.id, status=record.status, links=Links(self=f"/images/{record.id}"))
        return Response(202, JSON, out)

    @app.get("/health", summary="Liveness and queue depth")
    def health() -> Health:
        stats = {k: float(v) for k, v in service.queue.stats().items()}
        return Health(status="ok", version=__version__, queue=stats)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi():  # type: ignore[no-untyped-def]
        return Response(200, JSON, openapi_json(app))

    @app.get("/docs", include_in_schema=False)
    def docs():  # type: ignore[no-untyped-def]
        headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
        return Response(200, "text/html; charset=utf-8", docs_page(app), headers=headers)

    register_dashboard(app)
    return app


def openapi_json(app: APIGatewayHttpResolver) -> str:
    return app.get_openapi_json_schema(
        title="imgpipe", version=__version__,
        description="Upload images; get renditions, metadata and tags back.",
    )  # fmt: skip


def docs_page(app: APIGatewayHttpResolver) -> str:
    """A self-contained page listing every operation (no CDN, no script)."""
    schema = json.loads(openapi_json(app))
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
