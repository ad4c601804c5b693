"""A Python client of the imgpipe HTTP API (local ``imgpipe serve`` or the AWS stack), on httpx.

::

    from imgpipe.client import Client

    with Client("http://127.0.0.1:8080", token=None) as imgpipe:
        accepted = imgpipe.upload("photo.jpg")        # direct or via an upload form, by size
        image = imgpipe.wait(accepted.id, timeout=60)  # polls with backoff until terminal
        print(image.status, image.width, image.height, [r.url for r in image.renditions])
        for other in imgpipe.similar(image.id, max_distance=8):
            print(other.distance, other.image.id)
        for listed in imgpipe.list(tag="landscape"):   # every page, lazily
            ...
        imgpipe.delete(image.id)

Every refusal is the server's own typed error (``imgpipe.errors``: ``UnsupportedTypeError``,
``NotFoundError``, ``ConflictError`` ...) with its ``code`` and message; a server that cannot be
reached is ``UnavailableError``. A 503 ``busy`` is retried (after ``Retry-After``, at most
``retries`` times) before it is raised. Results are frozen dataclasses; ``Image.raw`` keeps the
whole JSON record.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from imgpipe.core.formats import sniff
from imgpipe.errors import (
    ImgpipeError,
    InternalError,
    ProcessingTimeoutError,
    UnavailableError,
    UploadPolicyError,
    error_for_code,
)
from imgpipe.model import Tag

__all__ = ["Accepted", "Client", "Image", "NearDuplicate", "Rendition", "SimilarImage", "Tag"]

_TERMINAL = frozenset({"processed", "rejected", "failed"})
# The API's direct-upload cap (settings.service.direct_max_bytes); a server with a smaller one
# answers 413 and the upload goes through a form instead.
DIRECT_MAX_BYTES = 4 * 1024 * 1024
_BUSY_WAIT_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """An image the server took: processing is queued (``status`` ``pending``)."""

    id: str
    status: str


@dataclass(frozen=True, slots=True)
class Rendition:
    name: str
    format: str
    width: int
    height: int
    bytes: int
    url: str  # absolute: on the CDN, or this API's (signed) rendition route


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    id: str  # the closest older image with a near-identical perceptual hash
    distance: int


@dataclass(frozen=True, slots=True)
class Image:
    """One image's record, as ``GET /images/{id}`` shows it."""

    id: str
    status: str
    created_at: str
    filename: str | None = None
    content_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    processed_at: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    renditions: tuple[Rendition, ...] = ()
    tags: tuple[Tag, ...] = ()
    duplicate_of: str | None = None
    near_duplicate_of: NearDuplicate | None = None
    uploaded_by: str | None = None
    error: ImgpipeError | None = None  # why it was rejected or failed
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.status in _TERMINAL

    def rendition(self, name: str, fmt: str = "jpeg") -> Rendition | None:
        return next((r for r in self.renditions if (r.name, r.format) == (name, fmt)), None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base_url: str) -> Image:
        error = data.get("error")
        near = data.get("near_duplicate_of")
        return cls(
            id=data["id"], status=data["status"], created_at=data["created_at"],
            filename=data.get("filename"), content_type=data.get("content_type"),
            bytes=data.get("bytes"), sha256=data.get("sha256"),
            processed_at=data.get("processed_at"), width=data.get("width"),
            height=data.get("height"), format=data.get("format"),
            metadata=data.get("metadata") or {},
            renditions=tuple(
                Rendition(r["name"], r["format"], r["width"], r["height"], r["bytes"],
                          urljoin(base_url, r["url"]))
                for r in data.get("renditions") or ()),
            tags=tuple(Tag(t["name"], t["confidence"], t["source"])
                       for t in data.get("tags") or ()),
            duplicate_of=data.get("duplicate_of"),
            near_duplicate_of=NearDuplicate(near["id"], near["distance"]) if near else None,
            uploaded_by=data.get("uploaded_by"),
            error=error_for_code(error["code"], error["message"]) if error else None,
            raw=data,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimilarImage:
    distance: int  # bits of the 64-bit perceptual hash that differ
    image: Image


_Similars = list[SimilarImage]  # (``Client.list`` shadows the builtin inside the class)


class Client:
    """The imgpipe API at ``base_url`` (``http://127.0.0.1:8080``, or the stack's ``ApiUrl``).

    ``token`` is sent as ``Authorization: Bearer`` (the ``--token`` of ``imgpipe serve``, or a
    Cognito access token); ``timeout`` applies to each request; ``transport`` is httpx's (tests
    may pass one). Use it as a context manager, or call ``close``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        direct_max_bytes: int = DIRECT_MAX_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.retries, self.direct_max_bytes = retries, direct_max_bytes
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                  headers={"Accept": "application/json"})  # fmt: skip

    # -- images -------------------------------------------------------------------------------

    def upload(self, source: str | Path | bytes, filename: str | None = None) -> Accepted:
        """Upload a file (a path) or bytes: up to ``direct_max_bytes`` in one ``POST /images``,
        larger through ``POST /uploads`` and its form (posted to S3 on AWS). ``filename`` is
        what the record shows (default: the path's name)."""
        if isinstance(source, bytes):
            data = source
        else:
            path = Path(source)
            data, filename = path.read_bytes(), filename or path.name
        if len(data) <= self.direct_max_bytes:
            try:
                return self._direct(data, filename)
            except ImgpipeError as exc:
                if exc.code != "too_large_bytes" or "/uploads" not in exc.message:
                    raise
        return self._via_form(data, filename)

    def wait(self, image_id: str, timeout: float = 60.0) -> Image:
        """The image once it is processed, rejected or failed (see ``Image.error``), polling
        with backoff (0.1 s growing to 2 s); ``ProcessingTimeoutError`` after ``timeout``."""
        deadline, delay = time.monotonic() + timeout, 0.1
        while True:
            image = self.get(image_id)
            if image.done:
                return image
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessingTimeoutError(
                    f"image {image_id} is still {image.status} after {timeout:g} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 1.6, 2.0)

    def get(self, image_id: str) -> Image:
        return self._image(self._call("GET", f"images/{_segment(image_id)}").json())

    def list(
        self, status: str | None = None, tag: str | None = None, page_size: int = 100
    ) -> Iterator[Image]:
        """Every image, newest first (optionally one status or tag), fetched a page at a time
        as the iteration goes."""
        cursor: str | None = None
        while True:
            query = {"limit": page_size, "status": status, "tag": tag, "cursor": cursor}
            page = self._call("GET", "images", params=_present(query)).json()
            for item in page["items"]:
                yield self._image(item)
            if (cursor := page.get("next_cursor")) is None:
                return

    def similar(self, image_id: str, max_distance: int = 10, limit: int = 20) -> _Similars:
        """Processed images whose perceptual hash is within ``max_distance`` bits, closest
        first; ``ConflictError`` while the image is not processed."""
        params = {"max_distance": max_distance, "limit": limit}
        body = self._call("GET", f"images/{_segment(image_id)}/similar", params=params).json()
        return [SimilarImage(i["distance"], self._image(i["image"])) for i in body["items"]]

    def delete(self, image_id: str) -> None:
        """Delete the image, its original and renditions (idempotent)."""
        self._call("DELETE", f"images/{_segment(image_id)}")

    def reprocess(self, image_id: str) -> Accepted:
        body = self._call("POST", f"images/{_segment(image_id)}/reprocess").json()
        return Accepted(body["id"], body["status"])

    def set_focal_point(self, image_id: str, x: int, y: int) -> Accepted:
        """Make (``x``, ``y``) - display pixels - the point the image's cover crops keep; they
        are rendered again (``wait`` for it)."""
        path = f"images/{_segment(image_id)}/focal-point"
        body = self._call("PUT", path, json={"x": x, "y": y}).json()
        return Accepted(body["id"], body["status"])

    def health(self) -> Mapping[str, Any]:
        body: Mapping[str, Any] = self._call("GET", "health").json()
        return body

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _direct(self, data: bytes, filename: str | None) -> Accepted:
        reply = self._call("POST", "images", params=_present({"filename": filename}),
                           content=data,
                           headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        body = reply.json()
        return Accepted(body["id"], body["status"])

    def _via_form(self, data: bytes, filename: str | None) -> Accepted:
        content_type = sniff(data).mime  # the form is signed for one exact type
        request = {"content_type": content_type, "bytes": len(data)}
        grant = self._call("POST", "uploads", json=_present({**request, "filename": filename}))
        ticket = grant.json()
        form = ticket["upload"]
        try:
            # No Authorization header: the signed form is the credential (S3 refuses a second).
            reply = self._send(
                "POST",
                urljoin(self.base_url, form["url"]),
                {},
                data=form["fields"],
                files={"file": (filename or "upload", data, content_type)},
            )
        except ImgpipeError:
            self._forget(ticket["id"])
            raise
        if reply.status_code >= 300:
            self._forget(ticket["id"])
            raise _form_error(reply)
        return Accepted(ticket["id"], "pending")

    def _forget(self, image_id: str) -> None:
        """Give a granted record back after its form failed (best effort)."""
        with contextlib.suppress(ImgpipeError):
            self.delete(image_id)

    def _image(self, data: Mapping[str, Any]) -> Image:
        return Image.from_json(data, self.base_url)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        reply = self._send(method, self.base_url + path, self._auth, **kwargs)
        if reply.status_code >= 400:
            raise _api_error(reply)
        return reply

    def _send(
        self, method: str, url: str, auth: Mapping[str, str], **kwargs: Any
    ) -> httpx.Response:
        """One request with the ``auth`` headers, retried while the server answers 503."""
        merged = {**auth, **kwargs.pop("headers", {})}
        for attempt in range(self.retries + 1):
            try:
                reply = self._http.request(method, url, headers=merged, **kwargs)
            except httpx.TransportError as exc:
                raise UnavailableError(f"{method} {url}: {exc or type(exc).__name__}") from exc
            if reply.status_code != 503 or attempt == self.retries:
                return reply
            time.sleep(_retry_after(reply, attempt))
        raise AssertionError("unreachable")  # pragma: no cover


def _segment(image_id: str) -> str:
    return quote(image_id, safe="")


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _retry_after(reply: httpx.Response, attempt: int) -> float:
    try:
        wait = float(reply.headers.get("retry-after", ""))
    except ValueError:
        wait = 0.2 * 2**attempt
    return min(max(wait, 0.0), _BUSY_WAIT_MAX_S)


def _api_error(reply: httpx.Response) -> ImgpipeError:
    """The typed error of an imgpipe error body (``{"error": {"code", "message"}}``)."""
    try:
        error = reply.json()["error"]
        return error_for_code(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return InternalError(f"the server answered {reply.status_code} without an error body")


def _form_error(reply: httpx.Response) -> ImgpipeError:
    """The error of a refused upload form: the local server's JSON, or S3's XML."""
    if "json" in reply.headers.get("content-type", ""):
        return _api_error(reply)
    if reply.status_code in (400, 403):
        return UploadPolicyError(f"the upload form was refused ({reply.status_code}): "
                                 f"{reply.text[:300]}")  # fmt: skip
    return InternalError(f"the upload form's target answered {reply.status_code}")
