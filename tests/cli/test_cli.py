"""The ``imgpipe`` command through click's CliRunner: output shape, files written, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

import fixtures as F
from imgpipe import __version__
from imgpipe.entrypoints.cli import main


def _jpeg(path: Path, size: tuple[int, int] = (900, 600), orientation: int = 1) -> Path:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[274] = orientation
    exif[271] = "TestCam"
    path.write_bytes(_save(image, "JPEG", exif=exif.tobytes()))
    return path


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    _jpeg(folder / "a.jpg")
    _jpeg(folder / "nested" / "rotated.jpg", orientation=6)
    (folder / "notes.png").write_text("plain text pretending to be a PNG")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(_jpeg(tmp_path / "full.jpg").read_bytes()[:3000])
    return folder


def test_json_lines_have_the_documented_shape(inputs: Path, tmp_path: Path) -> None:
    """--json prints one object per input with exactly the documented keys and statuses."""
    result = _run("process", str(inputs), "--out", str(tmp_path / "out"), "--json", "-j", "2")
    assert result.exit_code == 0, result.output
    records = {Path(r["source"]).name: r for r in _lines(result)}
    assert set(records) == {"a.jpg", "rotated.jpg", "notes.png", "empty.jpg", "cut.jpg"}
    for record in records.values():
        expected = {"source", "status", "id", "metadata", "renditions"}
        if record["status"] == "processed":
            expected.add("tags")
        else:
            expected.add("error")
            assert set(record["error"]) == {"code", "message"}
        assert set(record) == expected
    assert records["notes.png"]["error"]["code"] == "unsupported_type"
    assert records["empty.jpg"]["error"]["code"] == "empty"
    assert records["cut.jpg"]["error"]["code"] == "truncated"
    rotated = records["rotated.jpg"]
    assert rotated["status"] == "processed"
    assert (rotated["metadata"]["width"], rotated["metadata"]["height"]) == (600, 900)
    assert rotated["metadata"]["format"] == "jpeg"
    assert {(r["name"], r["format"]) for r in rotated["renditions"]} == {
        (n, f) for n in ("large", "medium", "thumb") for f in ("jpeg", "webp")
    }


def test_files_are_written_under_the_id(inputs: Path, tmp_path: Path) -> None:
    """Each processed input gets OUT/<id>/<rendition>.<ext> files and a metadata.json."""
    out = tmp_path / "out"
    records = _lines(_run("process", str(inputs / "a.jpg"), "--out", str(out), "--json"))
    (record,) = records
    folder = out / record["id"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["metadata.json"]
        + [f"{n}.{e}" for n in ("large", "medium", "thumb") for e in ("jpg", "webp")]
    )
    for rendition in record["renditions"]:
        path = Path(rendition["path"])
        assert path.parent == folder
        assert path.stat().st_size == rendition["bytes"]
        with Image.open(path) as image:
            assert image.size == (rendition["width"], rendition["height"])
    stored = json.loads((folder / "metadata.json").read_text())
    assert stored["metadata"]["exif"]["make"] == "TestCam"
    assert stored["id"] == record["id"]


def test_renditions_never_upscale(tmp_path: Path) -> None:
    """A 900 px wide source keeps 900 px for large and medium; thumb is 320 px wide."""
    source = _jpeg(tmp_path / "small.jpg")
    (record,) = _lines(_run("process", str(source), "--out", str(tmp_path / "o"), "--json"))
    widths = {r["name"]: r["width"] for r in record["renditions"]}
    assert widths == {"large": 900, "medium": 900, "thumb": 320}


def test_timeout_fails_the_image_with_exit_75(tmp_path: Path) -> None:
    """An image that outlives --timeout is reported failed/timeout and the exit code is 75."""
    source = _jpeg(tmp_path / "big.jpg", size=(4000, 3000))
    result = _run(
        "process", str(source), "--out", str(tmp_path / "o"), "--json", "--timeout", "0.1"
    )
    (record,) = _lines(result)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "timeout"
    assert result.exit_code == 75


def test_config_file_changes_renditions_limits_and_metadata(tmp_path: Path) -> None:
    """A --config TOML replaces the rendition set, the byte limit ([limits]) and GPS keeping
    ([metadata]): each of the three changes what comes out."""
    camera = tmp_path / "camera.jpg"
    camera.write_bytes(F.camera_jpeg(gps=True))
    big = _jpeg(tmp_path / "big.jpg", size=(1600, 1200))
    assert big.stat().st_size > camera.stat().st_size + 1000
    config = tmp_path / "imgpipe.toml"
    config.write_text(
        f"[limits]\nmax_bytes = {camera.stat().st_size + 1000}\n\n"
        '[[renditions]]\nname = "tiny"\nwidth = 64\nformats = ["png"]\n\n'
        "[metadata]\nkeep_gps = true\n"
    )
    result = _run("process", str(camera), str(big), "--out", str(tmp_path / "o"), "--json",
                  "--config", str(config))  # fmt: skip
    records = {Path(r["source"]).name: r for r in _lines(result)}
    processed = records["camera.jpg"]
    assert [(r["name"], r["format"]) for r in processed["renditions"]] == [("tiny", "png")]
    assert processed["renditions"][0]["width"] <= 64
    assert processed["metadata"]["has_gps"] is True
    assert "gps_latitude" in json.dumps(processed["metadata"])  # kept: keep_gps = true
    assert records["big.jpg"]["error"]["code"] == "too_large_bytes"


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    """An invalid settings file stops the command with click's usage exit code 2."""
    config = tmp_path / "bad.toml"
    config.write_text('[[renditions]]\nname = "x"\nwidth = 10\nfit = "cover"\n')
    result = CliRunner().invoke(
        main, ["process", str(config), "--out", str(tmp_path), "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "cover" in result.output


def test_inspect_exit_codes(tmp_path: Path) -> None:
    """inspect exits 0 for a good image and 65 (bad data) with the code for a refused one."""
    good = _run("inspect", str(_jpeg(tmp_path / "g.jpg", orientation=8)))
    assert good.exit_code == 0
    assert json.loads(good.stdout)["width"] == 600
    svg = tmp_path / "evil.jpg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    bad = _run("inspect", str(svg))
    assert bad.exit_code == 65
    assert json.loads(bad.stdout)["error"]["code"] == "unsupported_type"


def test_version_and_doctor() -> None:
    """--version prints the package version; doctor reports every format decodable."""
    assert __version__ in _run("--version").output
    report = json.loads(_run("doctor", "--json").stdout)
    assert all(report["formats"].values()), report["formats"]
    assert report["settings"]["limits"]["max_pixels"] == 50_000_000


def test_a_poison_file_does_not_fail_the_images_after_it(tmp_path: Path) -> None:
    """In one worker, the non-UTF-8-error AVIF is rejected and every later image processed."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "0-poison.avif").write_bytes(F.avif_poison())
    for index, data in enumerate((F.jpeg(), F.png(), F.avif(), F.webp()), start=1):
        (folder / f"{index}-good").write_bytes(data)
    result = _run("process", str(folder), "--out", str(tmp_path / "out"), "--json", "-j", "1")
    assert result.exit_code == 0, result.output
    outcomes = {Path(r["source"]).name: (r["status"], r.get("error", {}).get("code"))
                for r in _lines(result)}  # fmt: skip
    assert outcomes.pop("0-poison.avif") == ("rejected", "corrupt")
    assert set(outcomes.values()) == {("processed", None)}
    assert len(outcomes) == 4
