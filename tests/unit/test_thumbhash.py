"""ThumbHash: computed from the rendered sample, with its aspect ratio and alpha, and byte for byte
what the reference encoder (Evan Wallace's, vendored for the dashboard) makes of the same pixels."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import thash

import fixtures as F
from imgpipe.core.fingerprint import thumbhash
from imgpipe.core.pipeline import process
from imgpipe.settings import Settings


def _sample(data: bytes) -> dict[str, object]:
    return process(data, Settings()).metadata


@pytest.mark.parametrize(("data", "ratio"), [(F.scene(1), 4 / 3), (F.scene(2, (240, 320)), 3 / 4),
                                             (F.jpeg((400, 100)), 4.0)])  # fmt: skip
def test_the_thumbhash_keeps_the_aspect_ratio(data: bytes, ratio: float) -> None:
    hashed = base64.b64decode(_sample(data)["thumbhash"])  # type: ignore[arg-type]
    assert thash.thumb_hash_to_approximate_aspect_ratio(list(hashed)) == pytest.approx(
        ratio, rel=0.2
    )
    assert hashed[2] >> 7 == 0  # no alpha in an opaque photo


def test_the_thumbhash_keeps_transparency() -> None:
    """An RGBA PNG's hash carries alpha (BlurHash, of the flattened sample, cannot)."""
    hashed = list(base64.b64decode(_sample(F.rgba_png())["thumbhash"]))  # type: ignore[arg-type]
    assert hashed[2] >> 7 == 1  # the header's has-alpha bit
    average = thash.thumb_hash_to_average_rgba(hashed)
    assert average is not None
    assert 0.05 < average[3] < 0.95  # (r, g, b, a)


def _pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    out = []
    for height, width, alpha in [(48, 64, False), (64, 48, True), (64, 64, False), (36, 64, True),
                                 (64, 17, False)]:  # fmt: skip
        coarse = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
        from PIL import Image  # noqa: PLC0415

        smooth = Image.fromarray(coarse, "RGBA").resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(smooth).copy()
        if not alpha:
            pixels[..., 3] = 255
        out.append(pixels)
    return out


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for the reference encoder")
def test_the_encoder_matches_the_reference_byte_for_byte(tmp_path: Path) -> None:
    """imgpipe's ThumbHash (thash's numpy encoder) equals Evan Wallace's reference
    ``rgbaToThumbHash`` - the very file the dashboard decodes with - on the same pixels."""
    reference = tmp_path / "thumbhash.mjs"
    reference.write_text((files("imgpipe") / "dashboard" / "thumbhash.js").read_text("utf-8"))
    pictures = _pictures()
    cases = [{"w": p.shape[1], "h": p.shape[0], "rgba": p.reshape(-1).tolist()} for p in pictures]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = (
        f"import {{ rgbaToThumbHash }} from {json.dumps(reference.as_uri())};"
        "import fs from 'fs';"
        f"const cases = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'cases.json'))}));"
        "console.log(JSON.stringify(cases.map(c => Buffer.from("
        "rgbaToThumbHash(c.w, c.h, new Uint8Array(c.rgba))).toString('base64'))));"
    )
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    assert [thumbhash(p) for p in pictures] == json.loads(done.stdout)
