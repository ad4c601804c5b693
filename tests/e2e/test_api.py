"""The HTTP API of a real ``imgpipe serve`` over real HTTP: limits, listing, delete, reprocess,
duplicates and the self-description (``/openapi.json``, ``/docs``)."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import zlib
from typing import Any

import httpx
import pytest
from PIL import Image

from .conftest import StartServer
from .harness import HOST, Server, error_of, jpeg_bytes, raw_files, upload, wait_for

pytestmark = pytest.mark.e2e

FOUR_MIB = 4 * 1024 * 1024
RENDITION_FILES = {f"{n}.{e}" for n in ("large", "medium", "thumb") for e in ("jpg", "webp")}


@pytest.fixture(scope="module")
def server(serve_module: StartServer) -> Server:
    """One server with the default settings, shared by this module's tests."""
    return serve_module()


def _processed(server: Server, data: bytes, filename: str = "e2e.jpg") -> dict[str, Any]:
    response = upload(server.client, data, filename)
    assert response.status_code == 202, response.text
    image_id = response.json()["id"]
    record = server.wait_terminal([image_id], timeout_s=60)[image_id]
    assert record["status"] == "processed", record
    return record


# -- upload limits ---------------------------------------------------------------------------


def test_direct_upload_over_4_mib_is_413_with_a_hint_to_use_uploads(server: Server) -> None:
    """A 5 MiB direct upload is refused with 413 too_large_bytes, pointing at POST /uploads."""
    before = raw_files(server)
    response = upload(server.client, b"\xff" * (5 * 1024 * 1024))
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large_bytes"
    assert "/uploads" in error["message"]
    assert raw_files(server) == before


def test_raw_body_just_over_4_mib_is_413_with_a_hint(server: Server) -> None:
    """A raw (non-form) body one byte over 4 MiB is refused with 413 and the /uploads hint."""
    response = server.client.post(
        "/images", content=b"\xff" * (FOUR_MIB + 1), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 413
    assert "/uploads" in error_of(response)["message"]


def test_form_file_just_over_4_mib_is_413_with_a_hint(server: Server) -> None:
    """A multipart file one byte over 4 MiB is refused with 413 and the /uploads hint."""
    response = upload(server.client, b"\xff" * (FOUR_MIB + 1))
    assert response.status_code == 413
    assert "/uploads" in error_of(response)["message"]


def test_chunked_body_is_accepted_and_capped_as_it_arrives(server: Server) -> None:
    """A chunked body (no Content-Length) is read under the same cap: a photo is accepted, and
    a 64 MiB stream is refused with 413 (or the server hangs up mid-send)."""

    def photo() -> Any:
        data = jpeg_bytes((64, 64))
        yield data[:100]
        yield data[100:]

    accepted = server.client.post("/images", content=photo(),
                                  headers={"Content-Type": "image/jpeg"}, timeout=10)  # fmt: skip
    assert accepted.status_code == 202, accepted.text

    sent = 0

    def endless() -> Any:
        nonlocal sent
        yield jpeg_bytes((64, 64))
        while sent < 64 << 20:
            sent += 1 << 20
            yield b"\0" * (1 << 20)

    headers = {"Content-Type": "image/jpeg"}
    with contextlib.suppress(httpx.TransportError):  # the server may hang up mid-send
        refused = server.client.post("/images", content=endless(), headers=headers, timeout=30)
        assert refused.status_code == 413
        assert error_of(refused)["code"] == "too_large_bytes"
    assert server.client.get("/health").status_code == 200


def test_request_that_never_sends_its_body_stores_nothing(server: Server) -> None:
    """A declared body that never arrives gets no 2xx and stores nothing; the server hangs up."""
    before = raw_files(server)
    with socket.create_connection((HOST, int(server.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(
            b"POST /images HTTP/1.1\r\nHost: e2e\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"\xff" * 10
        )
        sock.shutdown(socket.SHUT_WR)  # the client gives up mid-body
        answer = b""
        while chunk := sock.recv(4096):  # returns b"" once the server closes: no hang
            answer += chunk
    assert not answer.startswith(b"HTTP/1.1 2"), answer
    assert raw_files(server) == before


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (its data is a few zero rows)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (3 * width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty"),
        (b"just some text, not an image at all\n" * 4, 415, "unsupported_type"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            415,
            "unsupported_type",
        ),
        (_png_bomb(16000, 16000), 422, "too_many_pixels"),
    ],
    ids=["empty", "text", "svg", "pixel-bomb"],
)
def test_refused_uploads_use_documented_statuses(
    server: Server, data: bytes, status: int, code: str
) -> None:
    """Empty, non-image and bomb uploads are refused at once with 400/415/422, storing nothing."""
    before = raw_files(server)
    response = server.client.post("/images", content=data, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code
    assert raw_files(server) == before


def test_truncated_upload_is_refused_or_ends_rejected(server: Server) -> None:
    """A JPEG cut short is refused with 422 truncated, or accepted and then ends rejected."""
    response = upload(server.client, jpeg_bytes((400, 300), seed=3)[:2000])
    if response.status_code != 202:
        assert response.status_code == 422
        assert error_of(response)["code"] in {"truncated", "corrupt"}
        return
    image_id = response.json()["id"]
    record = server.wait_terminal([image_id], timeout_s=60)[image_id]
    assert record["status"] == "rejected"
    assert record["error"]["code"] in {"truncated", "corrupt"}
    assert record["renditions"] == []
    assert server.rendition_files(image_id) == set()


def test_unknown_image_is_404(server: Server) -> None:
    """An id that was never issued (or is not an id at all) is a 404 with the error shape."""
    for path in ("/images/0" + "1" * 27, "/images/../etc/passwd", "/images/nope"):
        response = server.client.get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


# -- listing ---------------------------------------------------------------------------------


def test_cursor_pagination_walks_every_processed_image(server: Server) -> None:
    """status=processed&limit=2 pages visit each processed image once, newest first."""
    ids = []
    for seed in range(5):
        response = upload(server.client, jpeg_bytes((320, 240), seed=100 + seed))
        assert response.status_code == 202
        ids.append(response.json()["id"])
    server.wait_terminal(ids, timeout_s=60)
    everything = server.client.get("/images", params={"status": "processed", "limit": 200}).json()
    assert everything["next_cursor"] is None
    expected = [item["id"] for item in everything["items"]]
    assert set(ids) <= set(expected)

    walked: list[str] = []
    cursor, pages = None, 0
    while True:
        params: dict[str, Any] = {"status": "processed", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = server.client.get("/images", params=params).json()
        pages += 1
        assert len(page["items"]) <= 2
        assert all(item["status"] == "processed" for item in page["items"])
        walked.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected
    assert pages == (len(expected) + 1) // 2
    created = [everything["items"][i]["created_at"] for i in range(len(expected))]
    assert created == sorted(created, reverse=True)


def test_bad_cursor_and_limit_are_422(server: Server) -> None:
    """A forged cursor or an out-of-range limit is a 422 invalid_request (as documented)."""
    for params in ({"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 201}, {"status": "x"}):
        response = server.client.get("/images", params=params)
        assert response.status_code == 422, params
        assert error_of(response)["code"] == "invalid_request"


# -- delete, reprocess, duplicates ----------------------------------------------------------


def test_delete_removes_record_and_every_blob(server: Server) -> None:
    """DELETE answers 204; the record, its renditions and original are gone from disk and API."""
    record = _processed(server, jpeg_bytes((900, 600), seed=7))
    image_id = record["id"]
    assert server.has_raw(image_id)
    assert server.rendition_files(image_id) == RENDITION_FILES

    response = server.client.delete(f"/images/{image_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert server.client.get(f"/images/{image_id}").status_code == 404
    for rendition in record["renditions"]:
        assert server.client.get(rendition["url"]).status_code == 404
    assert not server.has_raw(image_id)
    assert not (server.raw_dir / f"{image_id}.meta.json").exists()
    assert not (server.data_dir / "blobs" / "processed" / image_id).exists()
    assert server.client.delete(f"/images/{image_id}").status_code == 204  # idempotent


def test_reprocess_runs_again_and_ends_processed(server: Server) -> None:
    """POST reprocess answers 202 pending; the image is processed again with a later time."""
    record = _processed(server, jpeg_bytes((800, 600), seed=8))
    image_id = record["id"]
    response = server.client.post(f"/images/{image_id}/reprocess")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"

    def reprocessed() -> dict[str, Any] | None:
        again = server.record(image_id)
        done = again["status"] == "processed" and again["processed_at"] > record["processed_at"]
        return again if done else None

    again = wait_for(reprocessed, 60, server.log_tail)
    assert [(r["name"], r["format"], r["width"], r["height"]) for r in again["renditions"]] == [
        (r["name"], r["format"], r["width"], r["height"]) for r in record["renditions"]
    ]
    assert server.rendition_files(image_id) == RENDITION_FILES
    assert server.client.post("/images/" + "0" * 28 + "/reprocess").status_code == 404


def test_duplicate_upload_points_at_the_first_and_has_its_own_renditions(server: Server) -> None:
    """The same bytes uploaded again end processed, duplicate_of the first, same rendition bytes."""
    data = jpeg_bytes((1200, 900), seed=9)
    first = _processed(server, data, "first.jpg")
    second = _processed(server, data, "second.jpg")
    assert second["id"] != first["id"]
    assert second["duplicate_of"] == first["id"]
    assert first["duplicate_of"] is None
    assert second["sha256"] == first["sha256"]
    assert (second["width"], second["height"]) == (first["width"], first["height"])
    firsts = {r["name"] + r["format"]: r for r in first["renditions"]}
    assert len(second["renditions"]) == len(firsts) == 6
    for rendition in second["renditions"]:
        assert rendition["url"].startswith(f"/images/{second['id']}/renditions/")
        original = firsts[rendition["name"] + rendition["format"]]
        mine = server.client.get(rendition["url"])
        theirs = server.client.get(original["url"])
        assert mine.status_code == theirs.status_code == 200
        assert mine.content == theirs.content
        assert mine.headers["etag"] == theirs.headers["etag"]
    assert server.rendition_files(second["id"]) == RENDITION_FILES
    # Deleting the original leaves the duplicate's own copies intact.
    assert server.client.delete(f"/images/{first['id']}").status_code == 204
    for rendition in second["renditions"]:
        assert server.client.get(rendition["url"]).status_code == 200


def test_rendition_revalidation_answers_304(server: Server) -> None:
    """A rendition fetched with its ETag in If-None-Match is a bodiless 304 with the same ETag."""
    record = _processed(server, jpeg_bytes((500, 500), seed=10))
    url = record["renditions"][0]["url"]
    first = server.client.get(url)
    assert first.status_code == 200
    with Image.open(io.BytesIO(first.content)) as image:
        assert image.size == (record["renditions"][0]["width"], record["renditions"][0]["height"])
    again = server.client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


# -- self-description ------------------------------------------------------------------------


def test_openapi_lists_every_route(server: Server) -> None:
    """/openapi.json is valid OpenAPI naming each public route with its methods."""
    response = server.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    methods = {path: set(ops) for path, ops in schema["paths"].items()}
    documented = {
        "/images": {"get", "post"},
        "/uploads": {"post"},
        "/images/{image_id}": {"get", "delete"},
        "/images/{image_id}/renditions/{filename}": {"get"},
        "/images/{image_id}/reprocess": {"post"},
        "/health": {"get"},
    }
    assert {path: methods.get(path, set()) & ops for path, ops in documented.items()} == documented
    assert "/_uploads" not in methods  # the local S3 stand-in is not part of the API
    assert {"202", "400", "413", "415", "422"} <= set(
        schema["paths"]["/images"]["post"]["responses"]
    )


def test_docs_is_a_self_contained_html_page(server: Server) -> None:
    """/docs is HTML listing the routes, with a CSP that forbids scripts."""
    response = server.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "/images/{image_id}/reprocess" in page
    assert "<script" not in page.lower()


def test_health_reports_queue_depth(server: Server) -> None:
    """/health is 200 ok with the version and the queue's counters."""
    body = server.client.get("/health").json()
    assert body["status"] == "ok"
    assert body["version"]
    assert {"visible", "in_flight", "dead", "oldest_age_s"} <= set(body["queue"])
