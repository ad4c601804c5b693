"""``imgpipe.client.Client`` and ``imgpipe upload`` against a real ``imgpipe serve`` (with an
access token, as a deployment would have): every call over HTTP, every refusal a typed error
with the server's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import fixtures as F
from imgpipe.client import Client
from imgpipe.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProcessingTimeoutError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedTypeError,
)
from imgpipe.keys import new_id

from .conftest import StartServer
from .harness import Server, _free_port

TOKEN = "client-test-token-0123456789"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(serve_module: StartServer) -> Server:
    return serve_module(workers=1, api_token=TOKEN)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, TOKEN) as made:
        yield made


def test_upload_wait_get_similar_reprocess_delete(client: Client, tmp_path: Path) -> None:
    """A path goes up directly, is processed, and every call on it returns typed results."""
    photo = tmp_path / "harbour.jpg"
    photo.write_bytes(F.scene(21))
    accepted = client.upload(photo)
    assert accepted.status == "pending"
    image = client.wait(accepted.id, timeout=60)
    assert (image.status, image.filename, image.format) == ("processed", "harbour.jpg", "jpeg")
    assert (image.width, image.height) == (320, 240)
    thumb = image.rendition("thumb", "webp")
    assert thumb is not None
    assert thumb.url.startswith(f"{client.base_url}images/{image.id}/renditions/thumb.webp")
    assert image.tags
    assert all(0 <= t.confidence <= 1 for t in image.tags)
    assert image.error is None
    assert client.get(image.id) == image

    copy = client.wait(client.upload(F.scene(21, (300, 225), quality=60), "copy.jpg").id)
    assert copy.near_duplicate_of is not None
    assert copy.near_duplicate_of.id == image.id
    found = client.similar(image.id, max_distance=8)
    assert [(s.image.id, s.distance) for s in found] == [(copy.id, copy.near_duplicate_of.distance)]

    assert client.set_focal_point(image.id, 10, 200).status == "pending"
    moved = client.wait(image.id)
    assert moved.metadata["focal_point"] == {"x": 10, "y": 200, "source": "user"}

    assert client.reprocess(copy.id).status == "pending"
    assert client.wait(copy.id).status == "processed"
    client.delete(copy.id)
    client.delete(copy.id)  # idempotent
    with pytest.raises(NotFoundError) as missing:
        client.get(copy.id)
    assert missing.value.code == "not_found"


def test_large_files_go_through_the_upload_form(server: Server, tmp_path: Path) -> None:
    """Over the direct cap, the client asks for a form and posts it (no bearer token on the
    form post: the form is the credential)."""
    with Client(server.url, TOKEN, direct_max_bytes=1024) as small_cap:
        accepted = small_cap.upload(F.scene(22), "big.jpg")
        image = small_cap.wait(accepted.id)
    assert (image.status, image.filename) == ("processed", "big.jpg")
    assert image.bytes == len(F.scene(22))


def test_list_follows_every_page(client: Client) -> None:
    ids = {client.upload(F.scene(30 + n), f"page-{n}.jpg").id for n in range(5)}
    listed = [image.id for image in client.list(page_size=2)]
    assert ids <= set(listed)
    assert len(listed) == len(set(listed))  # each once, across pages


def test_refusals_are_the_servers_typed_errors(client: Client, server: Server) -> None:
    with pytest.raises(UnsupportedTypeError) as direct:  # the server's 415
        client.upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.svg")
    assert direct.value.code == "unsupported_type"
    small_cap = Client(server.url, TOKEN, direct_max_bytes=8)
    with small_cap, pytest.raises(UnsupportedTypeError):  # sniffed before a form is asked for
        small_cap.upload(b"%PDF-1.7 not an image at all")
    with pytest.raises(InvalidRequestError):
        client.similar(new_id(), max_distance=99)
    with pytest.raises(NotFoundError):
        client.similar(new_id())
    pending = server.client.post("/uploads", headers={"Authorization": f"Bearer {TOKEN}"},
                                 json={"content_type": "image/jpeg", "bytes": 1000})  # fmt: skip
    image_id = pending.json()["id"]  # a granted form nobody posts: the image stays pending
    with pytest.raises(ConflictError, match="pending"):
        client.similar(image_id)
    with pytest.raises(ProcessingTimeoutError, match="still pending"):
        client.wait(image_id, timeout=0.5)


def test_a_missing_token_and_an_unreachable_server(server: Server) -> None:
    with Client(server.url) as anonymous, pytest.raises(UnauthorizedError) as refused:
        anonymous.get(new_id())
    assert refused.value.exit_code == 77
    nowhere = Client(f"http://127.0.0.1:{_free_port()}")
    with nowhere, pytest.raises(UnavailableError) as unreachable:
        nowhere.health()
    assert unreachable.value.exit_code == 69


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    env["IMGPIPE_API_TOKEN"] = TOKEN
    return subprocess.run([sys.executable, "-m", "imgpipe", "upload", *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip


def test_the_upload_command_waits_and_exits_with_the_refusals_code(
    server: Server, tmp_path: Path
) -> None:
    good, cut = tmp_path / "good.jpg", tmp_path / "cut.jpg"
    good.write_bytes(F.scene(40))
    cut.write_bytes(F.truncated(F.noisy_jpeg()))

    done = _cli(str(good), "--url", server.url, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert (line["source"], line["status"], line["width"]) == (str(good), "processed", 320)
    assert any("/renditions/thumb.jpg" in url for url in line["renditions"])  # signed URLs

    refused = _cli(str(good), str(cut), "--url", server.url, "--wait")
    assert refused.returncode == 65, refused.stderr
    lines = refused.stdout.splitlines()
    assert lines[0].startswith(f"processed {good}: ")
    assert lines[1].startswith(f"rejected {cut}: truncated - ")


def test_a_server_with_a_smaller_direct_cap_gets_the_form_after_its_413(serve: StartServer) -> None:
    """The client's cap is a guess: when the server's is smaller, its 413 (which points at
    /uploads) sends the same bytes through a form instead."""
    small = serve(workers=1, direct_max_bytes=4096)
    data = F.scene(23)
    assert 4096 < len(data) < 4 * 1024 * 1024
    with Client(small.url) as client:
        image = client.wait(client.upload(data, "harbour.jpg").id)
    assert (image.status, image.bytes) == ("processed", len(data))
