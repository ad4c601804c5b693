"""The shared real-world corpus through a real ``imgpipe serve`` over HTTP.

Every ``accept`` and ``reject`` file of the manifest is uploaded once (direct ``POST /images`` up
to the server's direct limit, the presigned form above it - the server runs with a 2 MiB direct
limit so that both paths carry real files), then the run is checked as a whole: refusals use the
documented statuses, nothing is lost or stuck, accepted files end ``processed`` at their display
size, and every rendition is served with the right headers and without metadata.
"""

from __future__ import annotations

import io
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from corpus.conftest import SKIP_REASON, corpus_dir, manifest_entries

from .conftest import StartServer
from .harness import Server, error_of, presigned_upload, upload

pytestmark = [pytest.mark.e2e, pytest.mark.corpus]

DIRECT_MAX_BYTES = 2 * 1024 * 1024
PROCESSING_DEADLINE_S = 200
ENTRIES = [e for e in manifest_entries() if e["expect"] in ("accept", "reject")]
# What each synchronous refusal may carry, from the README's table of codes.
STATUS_CODES = {
    400: {"empty", "bad_request"},
    413: {"too_large_bytes"},
    415: {"unsupported_type"},
    422: {"too_many_pixels", "too_many_frames", "corrupt", "truncated"},
}
MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
    "TIFF": "image/tiff",
}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "png": "image/png",
    "avif": "image/avif",
}
LEAKY_INFO = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"}


@dataclass
class Sent:
    """One manifest entry and how its upload went."""

    entry: dict[str, Any]
    route: str  # "direct" or "presigned"
    status_code: int
    image_id: str | None = None
    error: dict[str, str] | None = None


@dataclass
class Run:
    server: Server
    sent: list[Sent]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    upload_s: float = 0.0
    settle_s: float = 0.0

    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.image_id is not None]


def _send(server: Server, root: Path, entry: dict[str, Any]) -> Sent:
    data = (root / entry["path"]).read_bytes()
    name = Path(entry["path"]).name
    if len(data) <= DIRECT_MAX_BYTES:
        response = upload(server.client, data, name)
        if response.status_code == 202:
            return Sent(entry, "direct", 202, image_id=response.json()["id"])
        return Sent(entry, "direct", response.status_code, error=error_of(response))
    content_type = MIME.get(entry.get("format") or "", "image/jpeg")
    image_id, response = presigned_upload(server.client, data, name, content_type)
    if response.status_code == 204:
        return Sent(entry, "presigned", 204, image_id=image_id)
    return Sent(entry, "presigned", response.status_code, error=error_of(response))


@pytest.fixture(scope="module")
def run(serve_module: StartServer) -> Run:
    """Every accept/reject file uploaded to one 2-worker server, and waited for."""
    root = corpus_dir()
    if root is None or not ENTRIES:
        pytest.skip(SKIP_REASON)
    server = serve_module(workers=2, direct_max_bytes=DIRECT_MAX_BYTES)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:  # the server is threaded; so is a browser
        sent = list(pool.map(lambda e: _send(server, root, e), ENTRIES))
    result = Run(server, sent, upload_s=time.monotonic() - started)
    ids = [s.image_id for s in result.accepted() if s.image_id]
    result.records = server.wait_terminal(ids, timeout_s=PROCESSING_DEADLINE_S)
    result.settle_s = time.monotonic() - started
    _report(result)
    return result


def _report(result: Run) -> None:
    """Print the measured numbers (shown with ``pytest -s``)."""
    latencies = []
    for record in result.records.values():
        if record["processed_at"]:
            start = datetime.fromisoformat(record["created_at"])
            end = datetime.fromisoformat(record["processed_at"])
            latencies.append((end - start).total_seconds())
    statuses = Counter(r["status"] for r in result.records.values())
    routes = Counter(s.route for s in result.sent)
    refused = Counter(s.status_code for s in result.sent if s.image_id is None)
    print(
        f"\n[e2e corpus] {len(result.sent)} files ({dict(routes)}): uploads took "
        f"{result.upload_s:.1f} s, all terminal after {result.settle_s:.1f} s; refused at once "
        f"{dict(refused)}; final {dict(statuses)}; upload->terminal median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"
    )


def test_both_upload_paths_were_exercised(run: Run) -> None:
    """The run carried files over both the direct and the presigned upload paths."""
    routes = Counter(s.route for s in run.sent)
    assert routes["direct"] > 0
    assert routes["presigned"] > 0
    assert all(s.status_code in (202, 204) for s in run.accepted())


def test_synchronous_refusals_use_documented_statuses(run: Run) -> None:
    """A refused upload is 400/413/415/422 with an error code that belongs to that status."""
    refused = [s for s in run.sent if s.image_id is None]
    wrong = [
        (s.entry["path"], s.status_code, s.error)
        for s in refused
        if s.error is None or s.error["code"] not in STATUS_CODES.get(s.status_code, ())
    ]
    assert wrong == []


def test_accept_files_are_never_refused_at_upload(run: Run) -> None:
    """Every ``accept`` file is taken in (202 or 204), none refused synchronously."""
    refused = [
        (s.entry["path"], s.status_code, s.error)
        for s in run.sent
        if s.entry["expect"] == "accept" and s.image_id is None
    ]
    assert refused == []


def test_every_accepted_upload_ends_terminal_and_none_is_lost(run: Run) -> None:
    """accepted = processed + rejected + failed; nothing pending or processing; no extra records."""
    accepted = {s.image_id for s in run.accepted() if s.image_id is not None}
    statuses = Counter(run.records[i]["status"] for i in accepted)
    assert sum(statuses[s] for s in ("processed", "rejected", "failed")) == len(accepted)
    assert statuses["pending"] == statuses["processing"] == 0
    assert set(run.server.records()) == accepted  # one record per accepted upload, no more
    failed = [
        (s.entry["path"], run.records[s.image_id]["error"])
        for s in run.accepted()
        if s.image_id and run.records[s.image_id]["status"] == "failed"
    ]
    assert failed == []  # "failed" would be an internal error for files this well understood


def test_reject_files_end_rejected(run: Run) -> None:
    """Every ``reject`` file is refused at once or ends ``rejected`` with a code, no renditions."""
    wrong = []
    for sent in run.sent:
        if sent.entry["expect"] != "reject" or sent.image_id is None:
            continue
        record = run.records[sent.image_id]
        if record["status"] != "rejected" or not (record["error"] or {}).get("code"):
            wrong.append((sent.entry["path"], record["status"], record["error"]))
        elif record["renditions"]:
            wrong.append((sent.entry["path"], "rejected with renditions", record["renditions"]))
    assert wrong == []


def test_accept_files_are_processed_at_their_display_size(run: Run) -> None:
    """Every ``accept`` file ends ``processed`` with the manifest's display width and height."""
    wrong = []
    for sent in run.sent:
        if sent.entry["expect"] != "accept" or sent.image_id is None:
            continue
        record = run.records[sent.image_id]
        expected = (sent.entry["display_width"], sent.entry["display_height"])
        if record["status"] != "processed" or (record["width"], record["height"]) != expected:
            wrong.append(
                (
                    sent.entry["path"],
                    record["status"],
                    record["error"],
                    (record["width"], record["height"]),
                    expected,
                )
            )
    assert wrong == []


def _check_rendition(server: Server, rendition: dict[str, Any]) -> list[str]:
    """Problems with one served rendition (empty when it is fine)."""
    response = server.client.get(rendition["url"])
    where = rendition["url"]
    if response.status_code != 200:
        return [f"{where}: status {response.status_code}"]
    headers, problems = response.headers, []
    expected = {
        "content-type": CONTENT_TYPES[rendition["format"]],
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
    }
    problems += [
        f"{where}: {k}={headers.get(k)!r}" for k, v in expected.items() if headers.get(k) != v
    ]
    etag = headers.get("etag", "")
    if not (len(etag) > 2 and etag.startswith('"') and etag.endswith('"')):
        problems.append(f"{where}: etag {etag!r}")
    if len(response.content) != rendition["bytes"]:
        problems.append(f"{where}: {len(response.content)} bytes, record says {rendition['bytes']}")
    try:
        with Image.open(io.BytesIO(response.content)) as image:
            if image.size != (rendition["width"], rendition["height"]):
                problems.append(f"{where}: size {image.size}")
            if image.getexif():
                problems.append(f"{where}: EXIF {dict(image.getexif())}")
            if leaked := LEAKY_INFO & set(image.info):
                problems.append(f"{where}: metadata {sorted(leaked)}")
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        problems.append(f"{where}: does not decode: {exc}")
    return problems


def test_renditions_are_served_cacheable_decodable_and_clean(run: Run) -> None:
    """Each processed image's 6 renditions download with the right headers, decode, carry no
    EXIF/GPS/XMP/ICC."""
    processed = [r for r in run.records.values() if r["status"] == "processed"]
    assert processed
    incomplete = [
        r["id"]
        for r in processed
        if sorted((x["name"], x["format"]) for x in r["renditions"])
        != sorted((n, f) for n in ("large", "medium", "thumb") for f in ("jpeg", "webp"))
    ]
    assert incomplete == []
    renditions = [x for r in processed for x in r["renditions"]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [
            p
            for found in pool.map(lambda x: _check_rendition(run.server, x), renditions)
            for p in found
        ]
    assert problems == [], "\n".join(problems[:20])
