"""The HTTP API app through Mangum, fed API Gateway HTTP API v2 events built by ``to_v2_event`` -
exactly what the Lambda function receives; no server, no sockets. Every error body is
``{"error": {"code", "message"}}``."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from mangum import Mangum

import fixtures as F
from imgpipe import __version__
from imgpipe.adapters.local.upload_signer import HmacUploadSigner
from imgpipe.api.routes import build_api
from imgpipe.core.tags import LocalTagger
from imgpipe.keys import new_id, raw_key
from imgpipe.ports import Tagger
from imgpipe.service import ImageService
from imgpipe.settings import RenditionSpec, Settings
from imgpipe.testing import (
    FixedTagger,
    InMemoryBlobStore,
    InMemoryMetadataStore,
    InMemoryQueue,
    ManualClock,
    to_v2_event,
)

DIRECT_CAP = 4 * 1024 * 1024
BOUNDARY = "imgpipe-test-boundary-0123"
BROWSER_BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
PRESETS = (RenditionSpec("thumb", 32, formats=("jpeg", "webp")),)
RECORD_FIELDS = {"id", "status", "filename", "content_type", "bytes", "sha256", "created_at",
                 "processed_at", "width", "height", "format", "metadata", "renditions", "tags",
                 "duplicate_of", "near_duplicate_of", "uploaded_by", "error",
                 "links"}  # fmt: skip


@dataclass
class Reply:
    """A v2 resolver result with the body decoded back to bytes."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        payload = self.json()
        assert set(payload) == {"error"}
        assert set(payload["error"]) == {"code", "message"}
        assert payload["error"]["message"]
        code: str = payload["error"]["code"]
        return code


@dataclass
class Api:
    """The route definitions bound to a service over in-memory fakes."""

    service: ImageService
    blobs: InMemoryBlobStore
    queue: InMemoryQueue
    signer: HmacUploadSigner
    clock: ManualClock
    resolver: Any = field(init=False)

    def __post_init__(self) -> None:
        self.resolver = Mangum(build_api(self.service), lifespan="off")

    def call(self, method: str, target: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        event = to_v2_event(method, target, {"host": "test", **(headers or {})}, body, "10.0.0.1")
        result = self.resolver(event, None)
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return Reply(int(result["statusCode"]), httpx.Headers(result.get("headers") or {}), data)

    def upload(self, data: bytes, filename: str = "photo.jpg") -> str:
        reply = self.call("POST", f"/images?filename={filename}", data,
                          {"content-type": "application/octet-stream"})  # fmt: skip
        assert reply.status == 202, reply.body
        image_id: str = reply.json()["id"]
        return image_id

    def run_worker(self) -> None:
        while messages := self.queue.receive(max_messages=10):
            for message in messages:
                self.service.handle_event(message.body)
                self.queue.delete(message.receipt)


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api() -> MakeApi:
    def make(tagger: Tagger | None = None) -> Api:
        clock = ManualClock()
        blobs, queue = InMemoryBlobStore(), InMemoryQueue(30.0, 5, clock)
        signer = HmacUploadSigner(b"k" * 32, "http://test/_uploads", clock=clock)
        service = ImageService(blobs, InMemoryMetadataStore(), queue, tagger or FixedTagger(),
                               signer, Settings(renditions=PRESETS))  # fmt: skip
        return Api(service, blobs, queue, signer, clock)

    return make


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()


@pytest.fixture
def processed(api: Api) -> str:
    """The id of one processed 120x80 JPEG."""
    image_id = api.upload(F.jpeg((120, 80)), "cat.jpg")
    api.run_worker()
    return image_id


def multipart(data: bytes, *, name: str = "file", filename: str = "cat.jpg",
              boundary: str = BOUNDARY) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A ``multipart/form-data`` body with one file part, and its Content-Type header."""
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


# --- POST /images ------------------------------------------------------------------------------


def test_post_raw_body_is_accepted_for_processing(api: Api) -> None:
    """Raw image bytes get a 202 with the new id, ``pending`` and a self link."""
    reply = api.call("POST", "/images?filename=cat.jpg", F.jpeg(), {"content-type": "image/jpeg"})

    assert reply.status == 202
    payload = reply.json()
    assert payload == {"id": payload["id"], "status": "pending",
                       "links": {"self": f"/images/{payload['id']}"}}  # fmt: skip
    assert reply.headers["Location"] == f"/images/{payload['id']}"
    record = api.service.get(payload["id"])
    assert (record.filename, record.content_type) == ("cat.jpg", "image/jpeg")
    assert api.blobs.get(raw_key(payload["id"])) == F.jpeg()


def test_post_multipart_file_field_is_accepted_for_processing(api: Api) -> None:
    """A form's ``file`` part is the image; its file name becomes the display name."""
    body, headers = multipart(F.png(), filename="dir/holiday.jpg")
    reply = api.call("POST", "/images", body, headers)

    assert reply.status == 202, reply.body
    assert reply.json()["status"] == "pending"
    record = api.service.get(reply.json()["id"])
    assert (record.filename, record.content_type) == ("holiday.jpg", "image/png")
    assert api.blobs.get(record.raw_key) == F.png()


def test_post_multipart_with_a_browser_style_boundary_is_accepted(api: Api) -> None:
    """A form whose boundary has upper-case letters (as browsers make them) is parsed."""
    body, headers = multipart(F.jpeg(), boundary=BROWSER_BOUNDARY)
    assert api.call("POST", "/images", body, headers).status == 202


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        pytest.param(b"", {}, 400, "empty", id="empty"),
        pytest.param(F.svg(), {"content-type": "image/svg+xml"}, 415, "unsupported_type",
                     id="svg"),
        pytest.param(F.jpeg()[:20], {}, 422, "truncated", id="truncated"),
        pytest.param(F.png_bomb(), {}, 422, "too_many_pixels", id="bomb"),
        pytest.param(b"\xff\xd8\xff" + bytes(DIRECT_CAP), {}, 413, "too_large_bytes",
                     id="over-4-mib"),
        pytest.param(b"abc", {"content-type": "multipart/form-data"}, 400, "bad_request",
                     id="multipart-without-boundary"),
        pytest.param(b"garbage", {"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
                     400, "bad_request", id="multipart-garbage"),
        pytest.param(*multipart(F.jpeg(), name="image"), 400, "bad_request",
                     id="multipart-wrong-field"),
        pytest.param(*multipart(b""), 400, "bad_request", id="multipart-empty-file"),
    ],
)  # fmt: skip
def test_post_images_refusals_are_typed_errors(
    api: Api, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    """Each refused upload gets its status and machine code, and nothing is stored."""
    reply = api.call("POST", "/images", body, headers)
    assert (reply.status, reply.error_code) == (status, code)
    assert list(api.blobs.list("")) == []


def test_post_over_4_mib_hints_at_presigned_uploads(api: Api) -> None:
    """The 413 for a large raw body tells the client to use POST /uploads."""
    reply = api.call("POST", "/images", b"\xff\xd8\xff" + bytes(DIRECT_CAP))
    assert reply.status == 413
    assert "/uploads" in reply.json()["error"]["message"]


def test_post_multipart_over_4_mib_hints_at_presigned_uploads(api: Api) -> None:
    """The 413 for a large form file also tells the client to use POST /uploads."""
    reply = api.call("POST", "/images", *multipart(b"\xff\xd8\xff" + bytes(DIRECT_CAP)))
    assert reply.status == 413
    assert "/uploads" in reply.json()["error"]["message"]


# --- POST /uploads -----------------------------------------------------------------------------


def _upload_request(**fields: Any) -> bytes:
    return json.dumps({"filename": "big.jpg", "content_type": "image/jpeg", "bytes": 10_000_000,
                       **fields}).encode()  # fmt: skip


def test_post_uploads_grants_a_signed_form(api: Api) -> None:
    """A 201 with the id, a POST form whose fields the signer accepts, and the expiry."""
    reply = api.call("POST", "/uploads", _upload_request(),
                     {"content-type": "application/json"})  # fmt: skip

    assert reply.status == 201, reply.body
    payload = reply.json()
    assert set(payload) == {"id", "upload", "expires_at", "links"}
    assert set(payload["upload"]) == {"url", "method", "fields"}
    assert payload["upload"]["method"] == "POST"
    assert payload["upload"]["url"] == "http://test/_uploads"
    grant = api.signer.verify(payload["upload"]["fields"])
    assert (grant.key, grant.content_type) == (raw_key(payload["id"]), "image/jpeg")
    assert payload["expires_at"] == "1970-01-01T00:31:40Z"
    assert api.service.get(payload["id"]).status == "pending"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"{not json", 422, "invalid_request", id="bad-json"),
        pytest.param(b"[]", 422, "invalid_request", id="not-an-object"),
        pytest.param(b"{}", 422, "invalid_request", id="missing-fields"),
        pytest.param(_upload_request(bytes=0), 422, "invalid_request", id="zero-bytes"),
        pytest.param(_upload_request(bytes="many"), 422, "invalid_request", id="bytes-not-int"),
        pytest.param(_upload_request(bytes=True), 422, "invalid_request", id="bytes-boolean"),
        pytest.param(_upload_request(bytes="1000"), 422, "invalid_request", id="bytes-string"),
        pytest.param(_upload_request(filename="x" * 2000), 422, "invalid_request", id="long-name"),
        pytest.param(_upload_request(content_type="image/svg+xml"), 415, "unsupported_type",
                     id="svg"),
        pytest.param(_upload_request(bytes=10**12), 413, "too_large_bytes", id="too-large"),
    ],
)  # fmt: skip
def test_post_uploads_refusals_are_typed_errors(
    api: Api, body: bytes, status: int, code: str
) -> None:
    """A bad upload request gets its status and the error shape, and grants nothing."""
    reply = api.call("POST", "/uploads", body, {"content-type": "application/json"})
    assert (reply.status, reply.error_code) == (status, code)
    assert api.call("GET", "/images").json()["items"] == []


# --- GET /images -------------------------------------------------------------------------------


def test_list_pages_through_every_image_newest_first(api: Api) -> None:
    """``limit`` sizes the pages and ``next_cursor`` leads through all images exactly once."""
    ids = [api.upload(F.jpeg((40 + i, 40))) for i in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        query = "/images?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", query).json()
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ids[::-1]


def test_list_filters_by_status(api: Api) -> None:
    """``status=`` returns only images in that state."""
    done = api.upload(F.jpeg())
    api.run_worker()
    waiting = api.upload(F.png())

    def ids(query: str) -> list[str]:
        return [item["id"] for item in api.call("GET", query).json()["items"]]

    assert ids("/images?status=processed") == [done]
    assert ids("/images?status=pending") == [waiting]
    assert ids("/images?status=failed") == []


def test_list_filters_by_tag(make_api: MakeApi) -> None:
    """``tag=`` returns only images carrying that tag."""
    api = make_api(LocalTagger())
    wide = api.upload(F.jpeg((120, 80)))
    tall = api.upload(F.jpeg((80, 120)))
    api.run_worker()

    page = api.call("GET", "/images?tag=portrait").json()
    assert [item["id"] for item in page["items"]] == [tall]
    page = api.call("GET", "/images?tag=landscape").json()
    assert [item["id"] for item in page["items"]] == [wide]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=500", "limit=ten", "status=deleted", "cursor=not-a-cursor",
     "cursor=" + "A" * 600],
)  # fmt: skip
def test_list_refuses_bad_parameters(api: Api, query: str) -> None:
    """Limits outside 1..200, unknown statuses and invalid cursors are 422s (as documented)."""
    api.upload(F.jpeg())
    reply = api.call("GET", f"/images?{query}")
    assert (reply.status, reply.error_code) == (422, "invalid_request")


# --- GET /images/{id} --------------------------------------------------------------------------


def test_get_image_shows_the_public_record(api: Api, processed: str) -> None:
    """The record has every documented field; renditions carry URLs, never storage keys."""
    reply = api.call("GET", f"/images/{processed}")

    assert reply.status == 200
    record = reply.json()
    assert set(record) == RECORD_FIELDS
    assert (record["id"], record["status"], record["filename"]) == (processed, "processed",
                                                                    "cat.jpg")  # fmt: skip
    assert (record["width"], record["height"], record["format"]) == (120, 80, "jpeg")
    assert record["content_type"] == "image/jpeg"
    assert record["bytes"] == len(F.jpeg((120, 80)))
    assert len(record["sha256"]) == 64
    assert record["created_at"] <= record["processed_at"]
    assert record["tags"] == [{"name": "fixed", "confidence": 1.0, "source": "test"}]
    assert (record["duplicate_of"], record["error"]) == (None, None)
    assert record["links"] == {"self": f"/images/{processed}"}
    assert record["metadata"]["width"] == 120
    assert sorted(r["url"] for r in record["renditions"]) == [
        f"/images/{processed}/renditions/thumb.jpg",
        f"/images/{processed}/renditions/thumb.webp",
    ]
    for rendition in record["renditions"]:
        assert set(rendition) == {"name", "format", "width", "height", "bytes", "url"}
        assert (rendition["name"], rendition["width"], rendition["height"]) == ("thumb", 32, 21)
    assert "raw/" not in reply.body.decode()


def test_get_image_shows_a_rejection_error(api: Api) -> None:
    """A rejected image's record carries its error code and message."""
    image_id = api.upload(F.truncated(F.noisy_jpeg()))
    api.run_worker()
    record = api.call("GET", f"/images/{image_id}").json()
    assert record["status"] == "rejected"
    assert record["error"]["code"] in {"truncated", "corrupt"}
    assert record["renditions"] == []


@pytest.mark.parametrize("image_id", [new_id(), "not-an-id", "0" * 27, "Z" * 28])
def test_get_unknown_image_is_404(api: Api, image_id: str) -> None:
    """Unknown and malformed ids are both a 404 ``not_found``."""
    reply = api.call("GET", f"/images/{image_id}")
    assert (reply.status, reply.error_code) == (404, "not_found")


# --- GET /images/{id}/renditions/{file} ----------------------------------------------------------


@pytest.mark.parametrize(("filename", "content_type"),
                         [("thumb.jpg", "image/jpeg"), ("thumb.webp", "image/webp")])  # fmt: skip
def test_get_rendition_serves_the_bytes_with_safe_caching_headers(
    api: Api, processed: str, filename: str, content_type: str
) -> None:
    """The stored bytes, their type, an ETag, immutable caching, nosniff and a download name."""
    reply = api.call("GET", f"/images/{processed}/renditions/{filename}")

    assert reply.status == 200
    assert reply.body == api.blobs.get(f"processed/{processed}/{filename}")
    assert reply.headers["Content-Type"] == content_type
    assert re.fullmatch(r'"[0-9a-f]{32}"', reply.headers["ETag"])
    assert "immutable" in reply.headers["Cache-Control"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Content-Disposition"] == f'inline; filename="{processed}-{filename}"'


def test_get_rendition_is_base64_in_the_v2_response(api: Api, processed: str) -> None:
    """Binary bodies are returned base64-encoded, as API Gateway requires."""
    event = to_v2_event("GET", f"/images/{processed}/renditions/thumb.jpg", {}, b"", "10.0.0.1")
    result = api.resolver(event, None)
    assert result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]).startswith(b"\xff\xd8\xff")


def test_get_rendition_with_a_matching_etag_is_304(api: Api, processed: str) -> None:
    """If-None-Match with the current ETag is a bodiless 304; another ETag gets the bytes."""
    target = f"/images/{processed}/renditions/thumb.jpg"
    etag = api.call("GET", target).headers["ETag"]

    fresh = api.call("GET", target, headers={"if-none-match": etag})
    assert (fresh.status, fresh.body) == (304, b"")
    assert fresh.headers["ETag"] == etag
    stale = api.call("GET", target, headers={"if-none-match": '"something-else"'})
    assert stale.status == 200


@pytest.mark.parametrize("header", ['"other", {etag}', "W/{etag}", "*"])
def test_get_rendition_honours_if_none_match_lists_and_weak_tags(
    api: Api, processed: str, header: str
) -> None:
    """A list containing the ETag, its weak form, or ``*`` all mean not modified."""
    target = f"/images/{processed}/renditions/thumb.jpg"
    etag = api.call("GET", target).headers["ETag"]
    reply = api.call("GET", target, headers={"if-none-match": header.format(etag=etag)})
    assert reply.status == 304


@pytest.mark.parametrize(
    "filename",
    ["large.jpg", "thumb.png", "thumb.gif", "thumb", ".jpg", "thumb..jpg", "thumb.jpg.webp",
     "..%2F..%2Fraw%2F{id}", "%2e%2e%2fthumb.jpg", "..%5Cthumb.jpg", "thumb.jpg%00.webp",
     "..", "%2E%2E"],
)  # fmt: skip
def test_unknown_or_hostile_rendition_names_are_404(
    api: Api, processed: str, filename: str
) -> None:
    """Only the record's own rendition names resolve; traversal attempts are plain 404s."""
    reply = api.call("GET", f"/images/{processed}/renditions/{filename.format(id=processed)}")
    assert (reply.status, reply.error_code) == (404, "not_found")


@pytest.mark.parametrize(
    "target",
    ["/images/{id}/renditions/../../raw/{id}", "/images/{id}/renditions/thumb.jpg/../../x",
     "/images/../raw/{id}"],
)  # fmt: skip
def test_traversal_paths_never_reach_an_object(api: Api, processed: str, target: str) -> None:
    """Dot-segments in the path match no route and never serve the original."""
    reply = api.call("GET", target.format(id=processed))
    assert reply.status == 404
    assert reply.body != api.blobs.get(raw_key(processed))


def test_rendition_of_an_unprocessed_image_is_404(api: Api) -> None:
    """While an image is pending it has no renditions to serve."""
    image_id = api.upload(F.jpeg())
    reply = api.call("GET", f"/images/{image_id}/renditions/thumb.jpg")
    assert (reply.status, reply.error_code) == (404, "not_found")


# --- DELETE and reprocess ----------------------------------------------------------------------


def test_delete_is_204_and_removes_the_image(api: Api, processed: str) -> None:
    """DELETE answers 204, the image is gone, and a second DELETE is 204 again."""
    assert api.call("DELETE", f"/images/{processed}").status == 204
    assert api.call("GET", f"/images/{processed}").status == 404
    assert api.call("GET", f"/images/{processed}/renditions/thumb.jpg").status == 404
    assert list(api.blobs.list("")) == []
    assert api.call("DELETE", f"/images/{processed}").status == 204
    assert api.call("DELETE", "/images/not-an-id").status == 204


def test_delete_response_has_no_content(api: Api, processed: str) -> None:
    """A 204 No Content response has an empty body."""
    reply = api.call("DELETE", f"/images/{processed}")
    assert (reply.status, reply.body) == (204, b"")


def test_reprocess_is_202_pending_then_processed_again(api: Api, processed: str) -> None:
    """Reprocess answers 202 ``pending`` and queues the image for processing again."""
    reply = api.call("POST", f"/images/{processed}/reprocess")

    assert reply.status == 202
    assert reply.json() == {"id": processed, "status": "pending",
                            "links": {"self": f"/images/{processed}"}}  # fmt: skip
    assert api.call("GET", f"/images/{processed}").json()["status"] == "pending"
    api.run_worker()
    assert api.call("GET", f"/images/{processed}").json()["status"] == "processed"


@pytest.mark.parametrize("image_id", [new_id(), "nope"])
def test_reprocess_of_an_unknown_image_is_404(api: Api, image_id: str) -> None:
    """Reprocessing an unknown or malformed id is a 404."""
    reply = api.call("POST", f"/images/{image_id}/reprocess")
    assert (reply.status, reply.error_code) == (404, "not_found")


# --- GET /images/{id}/similar ------------------------------------------------------------------


def test_similar_lists_near_images_closest_first_and_marks_near_duplicates(api: Api) -> None:
    """A re-encoded, smaller copy is found (and recorded as a near-duplicate of the first);
    different pictures are not, unless the distance asked for reaches them."""
    first = api.upload(F.scene(1), "first.jpg")
    api.run_worker()
    copy = api.upload(F.scene(1, (300, 225), quality=60), "copy.jpg")
    other = api.upload(F.scene(2), "other.jpg")
    api.run_worker()

    reply = api.call("GET", f"/images/{first}/similar")
    assert reply.status == 200
    items = reply.json()["items"]
    assert [i["image"]["id"] for i in items] == [copy]
    assert items[0]["distance"] <= 4
    assert set(items[0]["image"]) == RECORD_FIELDS

    record = api.call("GET", f"/images/{copy}").json()
    assert record["near_duplicate_of"] == {"id": first, "distance": items[0]["distance"]}
    assert record["duplicate_of"] is None  # other bytes: not an exact duplicate
    assert api.call("GET", f"/images/{first}").json()["near_duplicate_of"] is None  # the older
    assert api.call("GET", f"/images/{other}").json()["near_duplicate_of"] is None

    wide = api.call("GET", f"/images/{first}/similar?max_distance=12&limit=1").json()["items"]
    assert [i["image"]["id"] for i in wide] == [copy]


@pytest.mark.parametrize("query", ["max_distance=13", "max_distance=-1", "limit=0",
                                   "limit=201", "max_distance=ten"])  # fmt: skip
def test_similar_refuses_out_of_range_parameters(api: Api, processed: str, query: str) -> None:
    reply = api.call("GET", f"/images/{processed}/similar?{query}")
    assert (reply.status, reply.error_code) == (422, "invalid_request")


def test_similar_of_an_unprocessed_image_is_409_and_of_an_unknown_one_404(api: Api) -> None:
    pending = api.upload(F.scene(3))
    reply = api.call("GET", f"/images/{pending}/similar")
    assert (reply.status, reply.error_code) == (409, "conflict")
    assert "pending" in reply.json()["error"]["message"]
    reply = api.call("GET", f"/images/{new_id()}/similar")
    assert (reply.status, reply.error_code) == (404, "not_found")


# --- PUT /images/{id}/focal-point ---------------------------------------------------------------


def test_a_focal_point_put_is_queued_and_kept(api: Api, processed: str) -> None:
    body = json.dumps({"x": 100, "y": 10}).encode()
    reply = api.call("PUT", f"/images/{processed}/focal-point", body,
                     {"content-type": "application/json"})  # fmt: skip
    assert reply.status == 202
    assert reply.json()["status"] == "pending"
    assert reply.headers["location"] == f"/images/{processed}"
    api.run_worker()
    record = api.call("GET", f"/images/{processed}").json()
    assert record["status"] == "processed"
    assert record["metadata"]["focal_point"] == {"x": 100, "y": 10, "source": "user"}


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"x": 120, "y": 0}, 422, "invalid_request"),  # the image is 120x80: x 0..119
    ({"x": -1, "y": 0}, 422, "invalid_request"),
    ({"x": 1.5, "y": 0}, 422, "invalid_request"),
    ({"y": 0}, 422, "invalid_request"),
    ({"x": True, "y": 0}, 422, "invalid_request"),  # not read as 1
    ({"x": "5", "y": 0}, 422, "invalid_request"),
])  # fmt: skip
def test_a_focal_point_outside_the_image_or_malformed_is_refused(
    api: Api, processed: str, body: dict[str, object], status: int, code: str
) -> None:
    reply = api.call("PUT", f"/images/{processed}/focal-point", json.dumps(body).encode(),
                     {"content-type": "application/json"})  # fmt: skip
    assert (reply.status, reply.error_code) == (status, code)


def test_a_focal_point_of_a_pending_image_is_409(api: Api) -> None:
    pending = api.upload(F.jpeg())
    reply = api.call("PUT", f"/images/{pending}/focal-point", b'{"x": 1, "y": 1}',
                     {"content-type": "application/json"})  # fmt: skip
    assert (reply.status, reply.error_code) == (409, "conflict")


# --- service routes ----------------------------------------------------------------------------


def test_health_reports_the_version_and_queue_depth(api: Api) -> None:
    """/health is ok, names the version and counts the queued jobs."""
    api.upload(F.jpeg())
    payload = api.call("GET", "/health").json()
    assert (payload["status"], payload["version"]) == ("ok", __version__)
    assert set(payload["queue"]) == {"visible", "in_flight", "dead", "oldest_age_s"}
    assert payload["queue"]["visible"] == 1


def test_openapi_describes_every_route(api: Api) -> None:
    """/openapi.json lists every public route path with its methods."""
    reply = api.call("GET", "/openapi.json")
    assert reply.status == 200
    paths = reply.json()["paths"]
    assert {path: set(ops) for path, ops in paths.items()} == {
        "/images": {"get", "post"},
        "/uploads": {"post"},
        "/images/{image_id}": {"get", "delete"},
        "/images/{image_id}/renditions/{filename}": {"get"},
        "/images/{image_id}/reprocess": {"post"},
        "/images/{image_id}/similar": {"get"},
        "/images/{image_id}/focal-point": {"put"},
        "/health": {"get"},
    }


def test_docs_page_lists_routes_with_escaped_text(api: Api) -> None:
    """/docs is script-free HTML listing each path, with summaries HTML-escaped."""
    reply = api.call("GET", "/docs")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    page = reply.body.decode()
    assert "<script" not in page.lower()
    for path in ("/images", "/uploads", "/images/{image_id}/renditions/{filename}", "/health"):
        assert f"<code>{path}</code>" in page
    assert "A rendition&#x27;s bytes" in page
    assert "rendition's" not in page


@pytest.mark.parametrize(("method", "target"), [("GET", "/nope"), ("GET", "/images/x/y/z")])
def test_unknown_routes_are_404_in_the_error_shape(api: Api, method: str, target: str) -> None:
    """Anything off the route list is a 404 with the usual error body."""
    reply = api.call(method, target)
    assert (reply.status, reply.error_code) == (404, "not_found")


@pytest.mark.parametrize(("method", "target"), [("PUT", "/images"), ("TRACE", "/images"),
                                                ("PATCH", "/health")])  # fmt: skip
def test_a_known_path_with_another_method_is_a_json_405(api: Api, method: str, target: str) -> None:
    """A route that exists under other methods answers 405 with Allow and the error body."""
    reply = api.call(method, target)
    assert (reply.status, reply.error_code) == (405, "method_not_allowed")
    assert reply.headers["allow"]
