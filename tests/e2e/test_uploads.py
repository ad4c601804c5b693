"""Presigned-style uploads (``POST /uploads``, then the signed form to ``/_uploads``) against a
real server: each violated policy condition is refused and nothing is stored."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from typing import Any

import httpx
import pytest

from .conftest import StartServer
from .harness import HOST, Server, error_of, jpeg_bytes, presigned_upload, raw_files

pytestmark = pytest.mark.e2e

MAX_BYTES = 100_000  # the server's max_bytes: the largest grant and the upload parser's cap
IMAGE = jpeg_bytes((320, 240), seed=42)


@pytest.fixture(scope="module")
def server(serve_module: StartServer) -> Server:
    """A server that grants uploads of at most ``MAX_BYTES`` bytes."""
    return serve_module(max_bytes=MAX_BYTES)


def _ticket(server: Server, size: int = len(IMAGE), content_type: str = "image/jpeg") -> Any:
    response = server.client.post(
        "/uploads", json={"filename": "big.jpg", "bytes": size, "content_type": content_type}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _post(
    server: Server,
    ticket: Any,
    fields: dict[str, str],
    data: bytes = IMAGE,
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return server.client.post(
        ticket["upload"]["url"], data=fields, files={"file": ("big.jpg", data, content_type)}
    )


def _multipart(fields: dict[str, str]) -> bytes:
    """A well-formed multipart body with only text fields (no file part)."""
    parts = [
        f'--e2e-boundary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + "--e2e-boundary--\r\n").encode()


def _assert_nothing_stored(server: Server, ticket: Any) -> None:
    """No original (nor temp file) for the ticket's id; its record is still pending."""
    image_id = ticket["id"]
    leftovers = [n for n in raw_files(server) if n.startswith(image_id) or n.startswith(".tmp-")]
    assert leftovers == []
    record = server.record(image_id)
    assert record["status"] == "pending"
    assert record["bytes"] is None
    assert record["sha256"] is None


def _refused(response: httpx.Response, word: str) -> None:
    assert response.status_code == 403, response.text
    error = error_of(response)
    assert error["code"] == "upload_policy"
    assert word.lower() in error["message"].lower(), error


def test_granted_form_is_shaped_like_s3_and_its_upload_gets_processed(server: Server) -> None:
    """A granted form posts back with 204; the image is then processed from the queue."""
    ticket = _ticket(server)
    assert set(ticket) == {"id", "upload", "expires_at", "links"}
    assert ticket["upload"]["method"] == "POST"
    assert ticket["upload"]["url"] == f"{server.url}/_uploads"
    fields = ticket["upload"]["fields"]
    assert fields["key"] == f"raw/{ticket['id']}"
    assert fields["Content-Type"] == "image/jpeg"
    assert server.record(ticket["id"])["status"] == "pending"

    response = _post(server, ticket, fields)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert server.has_raw(ticket["id"])
    record = server.wait_terminal([ticket["id"]], timeout_s=60)[ticket["id"]]
    assert record["status"] == "processed"
    assert record["bytes"] == len(IMAGE)
    assert (record["width"], record["height"]) == (320, 240)


def test_wrong_key_is_refused(server: Server) -> None:
    """A form whose key names another object (even another granted one) is 403; nothing stored."""
    ticket, other = _ticket(server), _ticket(server)
    fields = {**ticket["upload"]["fields"], "key": other["upload"]["fields"]["key"]}
    _refused(_post(server, ticket, fields), "key")
    _assert_nothing_stored(server, ticket)
    _assert_nothing_stored(server, other)


def test_wrong_content_type_field_is_refused(server: Server) -> None:
    """A form whose Content-Type field differs from the signed one is 403; nothing stored."""
    ticket = _ticket(server)
    fields = {**ticket["upload"]["fields"], "Content-Type": "image/png"}
    _refused(_post(server, ticket, fields, content_type="image/png"), "content-type")
    _assert_nothing_stored(server, ticket)


def _policy_max(ticket: Any) -> int:
    policy = json.loads(base64.b64decode(ticket["upload"]["fields"]["policy"]))
    (low, high) = next(c[1:] for c in policy["conditions"] if isinstance(c, list))
    assert low == 1
    return int(high)


def test_file_over_the_policy_maximum_is_refused(server: Server) -> None:
    """A file one byte over the signed content-length-range is 403 and nothing is stored."""
    ticket = _ticket(server)
    high = _policy_max(ticket)
    assert len(IMAGE) <= high < MAX_BYTES  # the grant is sized to the declared bytes
    data = IMAGE + b"\0" * (high + 1 - len(IMAGE))
    _refused(_post(server, ticket, ticket["upload"]["fields"], data), "range")
    _assert_nothing_stored(server, ticket)


def test_file_over_the_server_maximum_stores_nothing(server: Server) -> None:
    """A file over the server's max_bytes is refused (403/413) and nothing is stored."""
    ticket = _ticket(server)
    for size in (MAX_BYTES + 1, MAX_BYTES + 20_000, 2 * MAX_BYTES):
        response = _post(server, ticket, ticket["upload"]["fields"], b"\xff" * size)
        assert response.status_code in (403, 413), response.text
        assert error_of(response)["code"] in {"upload_policy", "too_large_bytes"}
    _assert_nothing_stored(server, ticket)


def test_file_over_the_server_maximum_is_413(server: Server) -> None:
    """A file over the server's max_bytes is refused with 413 before its policy is read."""
    ticket = _ticket(server)
    response = _post(server, ticket, ticket["upload"]["fields"], b"\xff" * (MAX_BYTES + 1))
    assert response.status_code == 413, response.text
    _assert_nothing_stored(server, ticket)


def test_empty_file_is_refused(server: Server) -> None:
    """An empty file is outside the policy's size range [1, size]: 403, nothing stored."""
    ticket = _ticket(server)
    _refused(_post(server, ticket, ticket["upload"]["fields"], b""), "range")
    _assert_nothing_stored(server, ticket)


def test_tampered_policy_is_refused(server: Server) -> None:
    """A policy rewritten by the client (bigger size range) fails its signature: 403."""
    ticket = _ticket(server)
    fields = dict(ticket["upload"]["fields"])
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"] = [
        c if isinstance(c, dict) else [c[0], 1, 10**9] for c in policy["conditions"]
    ]
    fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    _refused(_post(server, ticket, fields), "signature")
    _assert_nothing_stored(server, ticket)


def test_bad_or_missing_signature_is_refused(server: Server) -> None:
    """A flipped signature digit, or no signature at all, is 403; nothing stored."""
    ticket = _ticket(server)
    fields = dict(ticket["upload"]["fields"])
    name = next(k for k in fields if k not in {"key", "Content-Type", "policy"})
    signature = fields[name]
    fields[name] = ("0" if signature[0] != "0" else "1") + signature[1:]
    _refused(_post(server, ticket, fields), "signature")
    del fields[name]
    _refused(_post(server, ticket, fields), "signature")
    _assert_nothing_stored(server, ticket)


def test_malformed_forms_are_400(server: Server) -> None:
    """A non-multipart body, or a valid form without its file part, is 400; nothing stored."""
    ticket = _ticket(server)
    url, fields = ticket["upload"]["url"], ticket["upload"]["fields"]
    close = {"Connection": "close"}  # see test_refused_form_body_is_not_read_as_a_request
    for response in (
        server.client.post(url, data=fields, headers=close),
        server.client.post(url, json=fields, headers=close),
        server.client.post(
            url,
            content=_multipart(fields),
            headers={**close, "Content-Type": "multipart/form-data; boundary=e2e-boundary"},
        ),
    ):
        assert response.status_code == 400, response.text
        assert error_of(response)["code"] == "bad_request"
    response = server.client.post(url, files={"file": ("a.jpg", IMAGE, "image/jpeg")})
    assert response.status_code == 403  # a file without the signed fields
    _assert_nothing_stored(server, ticket)


def test_refused_form_body_is_not_read_as_a_request(server: Server) -> None:
    """The body of a refused non-multipart upload is never executed as a second request."""
    victim = _ticket(server)
    assert _post(server, victim, victim["upload"]["fields"]).status_code == 204
    smuggled = (
        f"DELETE /images/{victim['id']} HTTP/1.1\r\nHost: e2e\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    request = (
        b"POST /_uploads HTTP/1.1\r\nHost: e2e\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%s"
    ) % (len(smuggled), smuggled)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        answers = b""
        with contextlib.suppress(TimeoutError):
            sock.settimeout(2)
            while chunk := sock.recv(65536):
                answers += chunk
    assert answers.startswith(b"HTTP/1.1 400")
    assert answers.count(b"HTTP/1.1 ") == 1, answers.decode(errors="replace")
    assert server.client.get(f"/images/{victim['id']}").status_code == 200


def test_reused_form_is_refused_and_the_first_upload_stands(server: Server) -> None:
    """Posting the same form twice: the second is 403 and the stored original is the first's."""
    ticket = _ticket(server)
    fields = ticket["upload"]["fields"]
    assert _post(server, ticket, fields).status_code == 204
    stored = (server.raw_dir / ticket["id"]).read_bytes()
    second = IMAGE[:200] + bytes([IMAGE[200] ^ 0xFF]) + IMAGE[201:]  # other bytes, same size
    _refused(_post(server, ticket, fields, second), "already")
    assert (server.raw_dir / ticket["id"]).read_bytes() == stored == IMAGE
    record = server.wait_terminal([ticket["id"]], timeout_s=60)[ticket["id"]]
    assert record["status"] == "processed"
    assert record["sha256"] == server.record(ticket["id"])["sha256"]


def test_ticket_requests_are_validated(server: Server) -> None:
    """POST /uploads refuses invalid JSON (422), an unaccepted type (415) and oversize (413)."""
    cases = [
        ({"content_type": "image/jpeg"}, 422, "invalid_request"),
        ({"content_type": "image/jpeg", "bytes": 0}, 422, "invalid_request"),
        ({"content_type": "image/svg+xml", "bytes": 10}, 415, "unsupported_type"),
        ({"content_type": "image/jpeg", "bytes": MAX_BYTES + 1}, 413, "too_large_bytes"),
    ]
    for body, status, code in cases:
        response = server.client.post("/uploads", json=body)
        assert response.status_code == status, (body, response.text)
        assert error_of(response)["code"] == code


def test_expired_form_is_refused(serve: StartServer) -> None:
    """A form used after its expiry (upload_expiry_s=1, used 2 s later) is 403; nothing stored."""
    server = serve(upload_expiry_s=1, workers=1)
    ticket = _ticket(server)
    time.sleep(2.1)
    _refused(_post(server, ticket, ticket["upload"]["fields"]), "expired")
    _assert_nothing_stored(server, ticket)


def test_presigned_upload_stores_exactly_the_bytes_sent(server: Server) -> None:
    """A ticket then its form (the flow clients use) stores the very bytes that were posted."""
    data = jpeg_bytes((200, 100), seed=44)
    image_id, response = presigned_upload(server.client, data, "helper.jpg")
    assert response.status_code == 204
    assert (server.raw_dir / image_id).read_bytes() == data
