"""Corpus conformance: every file of the shared corpus ends as its manifest expects.

The whole corpus goes through the real batch runner once (worker processes, per-image time
limit); each manifest entry is then its own test case.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imgpipe.batch import collect_inputs, run_batch
from imgpipe.core.validation import inspect, screen
from imgpipe.errors import RejectedError
from imgpipe.settings import Limits, Settings

from .conftest import SKIP_REASON, manifest_entries

pytestmark = pytest.mark.corpus

ENTRIES = manifest_entries()
Results = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def results(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    """Every corpus file processed once, keyed by its manifest path."""
    out = tmp_path_factory.mktemp("corpus-out")
    settings = Settings(limits=Limits(timeout_s=60))
    collected: Results = {}
    sources = [corpus / e["path"] for e in ENTRIES]
    run_batch(
        sources, out, settings, jobs=2, on_result=lambda r: collected.__setitem__(r["source"], r)
    )
    return {str(Path(src).relative_to(corpus)): r for src, r in collected.items()}


def _ids(entry: dict[str, Any]) -> str:
    return str(entry["path"])


@pytest.mark.skipif(not ENTRIES, reason=SKIP_REASON)
@pytest.mark.parametrize("entry", ENTRIES, ids=_ids)
def test_outcome_matches_manifest(entry: dict[str, Any], results: Results) -> None:
    """Accept -> processed at the manifest's display size; reject -> rejected with a code."""
    result = results[entry["path"]]
    status, expect = result["status"], entry["expect"]
    assert status != "failed", f"internal failure: {result.get('error')}"
    if expect == "accept":
        assert status == "processed", result.get("error")
    elif expect == "reject":
        assert status == "rejected"
        assert result["error"]["code"]
    else:
        assert status in {"processed", "rejected"}
    if status == "processed" and entry.get("display_width"):
        md = result["metadata"]
        assert (md["width"], md["height"]) == (entry["display_width"], entry["display_height"])
        assert md["format"]


@pytest.mark.skipif(not ENTRIES, reason=SKIP_REASON)
@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["expect"] != "reject"], ids=_ids)
def test_renditions_carry_no_metadata(entry: dict[str, Any], results: Results) -> None:
    """Every rendition re-read from disk decodes and has no EXIF, GPS, XMP, ICC or comments."""
    result = results[entry["path"]]
    if result["status"] != "processed":
        pytest.skip(f"rejected ({result['error']['code']}), nothing rendered")
    assert result["renditions"]
    for rendition in result["renditions"]:
        data = Path(rendition["path"]).read_bytes()
        assert_no_metadata(data, rendition["format"])
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (rendition["width"], rendition["height"])
            image.load()


def assert_no_metadata(data: bytes, fmt: str) -> None:
    """Fail if an encoded rendition carries any metadata block, by walking its container."""
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), "EXIF present"
        leaked = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"}
        assert not leaked & set(image.info), f"metadata in info: {set(image.info) & leaked}"
    if fmt == "jpeg":
        assert _jpeg_markers(data) <= {0xE0}, "an APPn/COM marker other than JFIF"
    elif fmt == "webp":
        assert _riff_chunks(data) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}
    elif fmt == "png":
        assert _png_chunks(data) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"pHYs"}


def _jpeg_markers(data: bytes) -> set[int]:
    """APPn (0xE0-0xEF) and COM (0xFE) markers before the image data."""
    found, pos = set(), 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: metadata never follows
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            found.add(marker)
        pos += 2 + length
    return found


def _riff_chunks(data: bytes) -> set[bytes]:
    found, pos = set(), 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        found.add(kind)
        pos += 8 + size + (size & 1)
    return found


def _png_chunks(data: bytes) -> set[bytes]:
    found, pos = set(), 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        found.add(kind)
        pos += 12 + length
    return found


def test_bombs_refused_with_small_memory(corpus: Path, tmp_path: Path) -> None:
    """Decompression bombs are refused from their headers: no worker grows past 300 MB."""
    bombs = corpus / "hostile" / "decompression-bomb"
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(done.stdout)\n"
        "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [
        sys.executable,
        "-m",
        "imgpipe",
        "process",
        str(bombs),
        "--out",
        str(tmp_path),
        "--json",
        "--jobs",
        "1",
    ]
    done = subprocess.run(
        [sys.executable, "-c", probe, *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = done.stdout.splitlines()
    peak_kb = int(next(line for line in lines if line.startswith("MAXRSS_KB")).split()[1])
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(collect_inputs([bombs]))
    assert all(r["status"] == "rejected" for r in records), records
    assert peak_kb < 300_000, f"peak RSS {peak_kb / 1024:.0f} MB"


@pytest.mark.skipif(not ENTRIES, reason=SKIP_REASON)
def test_the_apis_screen_never_refuses_what_the_processor_accepts(
    corpus: Path, results: Results
) -> None:
    """``screen`` (the upload check without the imaging engine) refuses only files the
    pipeline rejects too, and where both header checks pass they read the same format and
    pixel count (AVIF/HEIF item sizes are before rotation)."""
    wrong = []
    for entry in ENTRIES:
        data = (corpus / entry["path"]).read_bytes()
        try:
            screened = screen(data, Limits())
        except RejectedError as refused:
            if results[entry["path"]]["status"] != "rejected":
                wrong.append((entry["path"], "screen refused", refused.code))
            continue
        try:
            info = inspect(data, Limits())
        except RejectedError:
            continue
        if (screened.format, screened.width * screened.height) != (
            info.format, info.width * info.height):  # fmt: skip
            wrong.append(
                (entry["path"], str(screened), f"{info.format} {info.width}x{info.height}")
            )
    assert wrong == []
