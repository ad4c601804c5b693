"""Hashes and placeholders, each against an outside reference on the same pixels: ThumbHash byte
for byte against Evan Wallace's encoder (vendored for the dashboard), BlurHash against the
``blurhash`` package, the perceptual hash against imagehash's matrix form in NumPy."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import blurhash as reference_blurhash
import numpy as np
import pytest
import thash
from PIL import Image

import fixtures as F
from imgpipe.core.fingerprint import blurhash, phash, thumbhash
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


def _pictures(count: int = 60) -> list[Image.Image]:
    """Smooth random RGBA pictures of random sizes up to 64 px, a third with alpha - and a
    20 x 56 one, whose luma width 7 * 20 / 56 = 2.5 rounds up in the format's JavaScript
    (``thash``'s encoder rounds it half to even, to 2: 3 of 300 such pictures differed)."""
    rng = np.random.default_rng(4)
    sizes = [(20, 56)] + [(int(rng.integers(8, 65)), int(rng.integers(8, 65)))
                          for _ in range(count - 1)]  # fmt: skip
    out = []
    for i, (width, height) in enumerate(sizes):
        coarse = rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)
        smooth = Image.fromarray(coarse, "RGBA").resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(smooth).copy()
        if i % 3:
            pixels[..., 3] = 255
        out.append(Image.fromarray(pixels, "RGBA"))
    return out


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for the reference encoder")
def test_the_thumbhash_matches_the_reference_byte_for_byte(tmp_path: Path) -> None:
    """imgpipe's ThumbHash equals Evan Wallace's reference ``rgbaToThumbHash`` - the very file
    the dashboard decodes with - on the same pixels, opaque or not."""
    reference = tmp_path / "thumbhash.mjs"
    reference.write_text((files("imgpipe") / "dashboard" / "thumbhash.js").read_text("utf-8"))
    pictures = _pictures()
    cases = [{"w": p.width, "h": p.height, "rgba": list(p.tobytes())} for p in pictures]
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


@pytest.mark.parametrize("components", [(4, 3), (3, 4), (1, 1), (9, 9)])
def test_the_blurhash_matches_the_reference_package(components: tuple[int, int]) -> None:
    for picture in _pictures(20):
        rgb = picture.convert("RGB")
        expected = reference_blurhash.encode(np.asarray(rgb).tolist(), *components)
        assert blurhash(rgb, *components) == expected


def _imagehash_phash(image: Image.Image) -> str:
    """imagehash's phash (SciPy's DCT-II as a matrix), the median of the 64 kept terms."""
    n = np.arange(32)
    dct = 2.0 * np.cos(np.pi * n[:, None] * (2 * n[None, :] + 1) / 64)
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
    low = (dct @ grey @ dct.T)[:8, :8].flatten()
    return f"{int(''.join('1' if b else '0' for b in low > np.median(low)), 2):016x}"


def test_the_perceptual_hash_matches_imagehash() -> None:
    pictures = _pictures()
    assert [phash(p) for p in pictures] == [_imagehash_phash(p) for p in pictures]


def test_a_flat_pictures_perceptual_hash_is_not_rounding_noise() -> None:
    """A flat picture's 63 varying terms are exact zeros: they count as 0, not as whatever sign
    the float sums' rounding gave them (which differs between platforms and Python versions)."""
    for colour in ((90, 120, 200), (255, 255, 255)):
        assert phash(Image.new("RGB", (64, 48), colour)) == "8000000000000000"  # the DC term
    assert phash(Image.new("RGB", (64, 48))) == "0" * 16
