"""The metadata record: curated EXIF, GPS only on request, sanitised and capped strings, hashes."""

from __future__ import annotations

import json
import math
import re
import struct
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageDraw

import fixtures as F
from imgpipe.core.exif import read_exif
from imgpipe.core.fingerprint import phash
from imgpipe.core.metadata import MAX_RECORD_BYTES
from imgpipe.core.pipeline import process
from imgpipe.core.text import MAX_FIELD_BYTES, sanitize
from imgpipe.core.validation import inspect
from imgpipe.settings import Limits, RenditionSpec, Settings

_TINY = (RenditionSpec("tiny", 16, formats=("jpeg",)),)


def _record(data: bytes, keep_gps: bool = False) -> dict[str, Any]:
    return process(data, Settings(renditions=_TINY, keep_gps=keep_gps)).metadata


def _no_control_characters(text: str) -> bool:
    return not any(unicodedata.category(ch).startswith("C") for ch in text)


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


# --- EXIF ----------------------------------------------------------------------------------------


def test_camera_exif_fields_are_parsed() -> None:
    """Make, model, lens, time with offset, exposure, aperture, ISO, focal length, orientation."""
    exif = _record(F.camera_jpeg())["exif"]
    assert exif == {
        "make": "Canon",
        "model": "Canon EOS R5",
        "orientation": 1,
        "lens": "RF50mm F1.8 STM",
        "datetime_original": "2021-06-01T12:30:00+02:00",
        "exposure_time": 0.004,
        "exposure": "1/250",
        "f_number": 2.8,
        "iso": 400,
        "focal_length_mm": 50.0,
    }


def test_lens_make_and_model_are_joined() -> None:
    """LensMake and LensModel become one ``lens`` string."""
    data = F.jpeg_with_exif(
        exif_ifd={ExifTags.Base.LensMake: "Sigma", ExifTags.Base.LensModel: "35mm F1.4 DG"}
    )
    assert _record(data)["exif"]["lens"] == "Sigma 35mm F1.4 DG"


@pytest.mark.parametrize(
    ("raw", "offset", "expected"),
    [
        ("2021:06:01 12:30:00", "+02:00", "2021-06-01T12:30:00+02:00"),
        ("2021:06:01 12:30:00", "-05:30", "2021-06-01T12:30:00-05:30"),
        ("2021:06:01 12:30:00", None, "2021-06-01T12:30:00"),
        ("2021:06:01 12:30:00", "garbage", "2021-06-01T12:30:00"),
        ("0000:00:00 00:00:00", "+02:00", None),
        ("not a date", None, None),
    ],
)
def test_datetime_original_is_iso_8601(raw: str, offset: str | None, expected: str | None) -> None:
    """DateTimeOriginal plus OffsetTimeOriginal become ISO 8601; invalid dates are left out."""
    tags: dict[int, Any] = {ExifTags.Base.DateTimeOriginal: raw}
    if offset is not None:
        tags[ExifTags.Base.OffsetTimeOriginal] = offset
    exif = _record(F.jpeg_with_exif(exif_ifd=tags))["exif"]
    assert exif.get("datetime_original") == expected


@pytest.mark.parametrize(
    ("exposure", "text"),
    [((1, 250), "1/250"), ((1, 3), "1/3"), ((2, 1), "2"), ((5, 2), "2.5")],
)
def test_exposure_is_written_the_way_photographers_say_it(
    exposure: tuple[int, int], text: str
) -> None:
    """Short exposures read as fractions of a second, long ones as seconds."""
    tags = {int(ExifTags.Base.ExposureTime): F.rational(*exposure)}
    assert _record(F.jpeg_with_exif(exif_ifd=tags))["exif"]["exposure"] == text


def test_image_without_exif_has_an_empty_exif_section() -> None:
    """No EXIF means ``exif: {}`` and ``has_gps: false``, not missing keys."""
    record = _record(F.png())
    assert record["exif"] == {}
    assert record["has_gps"] is False


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", id="ifd-offset-past-the-end"),
        pytest.param(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff", id="absurd-entry-count"),
        pytest.param(b"\x00" * 7, id="zeros"),
        pytest.param(b"Exif\x00\x00", id="header-only"),
    ],
)
def test_malformed_exif_never_fails(blob: bytes) -> None:
    """Unreadable EXIF yields no fields (or the readable ones), never an exception."""
    assert read_exif(blob, keep_gps=True).get("make") is None


# --- GPS -----------------------------------------------------------------------------------------


def test_gps_is_flagged_but_not_kept_by_default() -> None:
    """Without keep_gps the record says ``has_gps`` but holds no coordinate anywhere."""
    record = _record(F.camera_jpeg(), keep_gps=False)
    assert record["has_gps"] is True
    dump = _dump(record)
    assert "gps_" not in dump
    for number in ("33.8", "151.2", "123.4", "31.56", "-33", "-151"):
        assert number not in dump, f"{number} leaked into the record"


def test_gps_is_kept_in_decimal_degrees_on_request() -> None:
    """With keep_gps, south/west are negative decimal degrees, and altitude below sea negative."""
    record = _record(F.camera_jpeg(), keep_gps=True)
    assert record["has_gps"] is True
    exif = record["exif"]
    assert exif["gps_latitude"] == pytest.approx(F.GPS_LATITUDE, abs=1e-6)
    assert exif["gps_longitude"] == pytest.approx(F.GPS_LONGITUDE, abs=1e-6)
    assert exif["gps_altitude_m"] == pytest.approx(F.GPS_ALTITUDE_M)


def test_north_east_above_sea_level_is_positive() -> None:
    """N/E references and altitude ref 0 give positive coordinates and altitude."""
    data = F.jpeg_with_exif(gps_ifd=F.gps_ifd("N", "E", below_sea=False))
    exif = _record(data, keep_gps=True)["exif"]
    assert exif["gps_latitude"] == pytest.approx(-F.GPS_LATITUDE, abs=1e-6)
    assert exif["gps_longitude"] == pytest.approx(-F.GPS_LONGITUDE, abs=1e-6)
    assert exif["gps_altitude_m"] == pytest.approx(-F.GPS_ALTITUDE_M)


def test_gps_without_longitude_is_not_a_position() -> None:
    """A GPS block with a latitude alone does not count as a position."""
    gps = {k: v for k, v in F.gps_ifd().items() if k != ExifTags.GPS.GPSLongitude}
    record = _record(F.jpeg_with_exif(gps_ifd=gps), keep_gps=True)
    assert record["has_gps"] is False
    assert "gps_latitude" not in record["exif"]


@pytest.mark.parametrize(
    "make",
    [F.png_with_metadata, F.webp_with_metadata],
    ids=["png-exif-chunk", "webp-exif-chunk"],
)
def test_gps_in_png_and_webp_exif_is_handled_alike(make: Callable[..., bytes]) -> None:
    """EXIF carried by PNG and WebP is read like JPEG's, GPS withheld by default."""
    record = _record(make())
    assert record["exif"]["make"] == "Canon"
    assert record["has_gps"] is True
    assert "gps_" not in _dump(record)


# --- hostile strings -----------------------------------------------------------------------------


def test_control_characters_are_removed() -> None:
    """BEL, ESC and DEL in a Model string are gone from the record."""
    model = _record(F.hostile_jpeg())["exif"]["model"]
    assert _no_control_characters(model)
    assert "EOS" in model
    assert "R5" in model


def test_long_string_is_capped_at_one_kilobyte() -> None:
    """A 5000-character Software string is cut to 1 KB."""
    software = _record(F.hostile_jpeg())["exif"]["software"]
    assert len(software.encode("utf-8")) == MAX_FIELD_BYTES
    assert set(software) == {"A"}


def test_markup_is_stored_verbatim_as_text() -> None:
    """A ``<script>`` Make is kept as plain text: sanitising is not HTML-escaping."""
    make = _record(F.hostile_jpeg())["exif"]["make"]
    assert isinstance(make, str)
    assert _no_control_characters(make)
    assert make == F.HOSTILE_MAKE


def test_whole_record_is_capped() -> None:
    """Even with every string field at its cap the JSON record stays within 16 KB."""
    long = "\u00e9" * 5000  # two UTF-8 bytes each
    data = F.jpeg_with_exif(
        ifd0={
            ExifTags.Base.Make: long,
            ExifTags.Base.Model: long,
            ExifTags.Base.Software: long,
        },
        exif_ifd={ExifTags.Base.LensMake: long, ExifTags.Base.LensModel: long},
    )
    record = _record(data)
    assert len(_dump(record).encode("utf-8")) <= MAX_RECORD_BYTES
    for value in record["exif"].values():
        if isinstance(value, str):
            assert len(value.encode("utf-8")) <= MAX_FIELD_BYTES


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Canon", "Canon"),
        ("  Canon \x00\x00", "Canon"),
        ("EOS\x07R5", "EOS R5"),
        ("a\u202eb", "a b"),  # right-to-left override: a format character
        ("a\u200bb", "a b"),  # zero-width space
        ("line\nbreak\ttab", "line break tab"),
        ("<b>bold</b> & co", "<b>bold</b> & co"),
        ("\ue000private", "private"),
    ],
)
def test_sanitize_table(raw: str, clean: str) -> None:
    """Control, format and private-use characters become single spaces; markup is untouched."""
    assert sanitize(raw) == clean


def test_sanitize_cuts_on_a_character_boundary() -> None:
    """Capping never splits a multi-byte character."""
    capped = sanitize("\u20ac" * 1000, limit=1024)  # three UTF-8 bytes each
    assert capped == "\u20ac" * 341
    assert len(capped.encode("utf-8")) <= 1024


@given(st.text(max_size=1500), st.integers(min_value=1, max_value=2048))
def test_sanitize_always_yields_capped_printable_text(raw: str, limit: int) -> None:
    """Whatever comes in, the result is valid UTF-8 within the limit and has no control chars."""
    clean = sanitize(raw, limit=limit)
    assert len(clean.encode("utf-8")) <= limit
    assert _no_control_characters(clean)
    assert "  " not in clean


def test_capped_text_has_no_trailing_space() -> None:
    """Capping never leaves a dangling space, so sanitising twice changes nothing."""
    assert sanitize("0 0", limit=2) == "0"


# --- the rest of the record ----------------------------------------------------------------------


def test_record_describes_the_pixels() -> None:
    """Colour space, bands, bit depth and alpha come from the source header."""
    record = _record(F.grey16_png())
    assert (record["color_space"], record["bands"], record["bit_depth"]) == ("grey16", 1, 16)
    assert record["has_alpha"] is False
    assert _record(F.rgba_png())["has_alpha"] is True


def test_icc_profile_is_named_by_its_description() -> None:
    """An embedded profile is recorded by its (sanitised) description; none means null."""
    name = _record(F.p3_jpeg())["icc_profile"]
    assert isinstance(name, str)
    assert name
    assert _no_control_characters(name)
    assert _record(F.jpeg())["icc_profile"] is None


def test_fingerprints_have_their_documented_shapes() -> None:
    """phash is 16 hex digits, blurhash is non-empty, colour fractions sum to about 1."""
    record = _record(F.oriented(1))
    assert re.fullmatch(r"[0-9a-f]{16}", record["phash"])
    assert isinstance(record["blurhash"], str)
    assert record["blurhash"]
    colours = record["dominant_colors"]
    assert 1 <= len(colours) <= 5
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c["hex"]) for c in colours)
    assert sum(c["fraction"] for c in colours) == pytest.approx(1.0, abs=0.01)
    fractions = [c["fraction"] for c in colours]
    assert fractions == sorted(fractions, reverse=True)
    assert 0.0 <= record["brightness"] <= 1.0
    assert 0.0 <= record["colorfulness"] <= 1.0


def test_dominant_colour_of_a_flat_image_is_that_colour() -> None:
    """A flat red frame has one dominant colour, red, covering everything."""
    colours = _record(F.animated_gif())["dominant_colors"]
    assert colours == [{"hex": "#ff0000", "fraction": 1.0}]


def test_brightness_and_colorfulness_follow_the_pixels() -> None:
    """Flat red is colourful; flat mid-grey has no colour and mid brightness."""
    red, grey = _record(F.animated_gif()), _record(F.png())
    assert red["colorfulness"] > 0.9
    assert grey["colorfulness"] < 0.01
    assert grey["brightness"] == pytest.approx(128 / 255, abs=0.01)


def test_perceptual_hash_tells_images_apart() -> None:
    """The same picture in two containers shares its phash; a different picture does not."""
    jpeg, png = _record(F.oriented(1, "JPEG")), _record(F.oriented(1, "PNG"))
    assert jpeg["phash"] == png["phash"]
    assert _record(F.noisy_png())["phash"] != jpeg["phash"]


def test_orientation_is_recorded_after_rotation_for_png_and_webp() -> None:
    """EXIF orientation in PNG and WebP is honoured for the recorded size."""
    for container in ("PNG", "WEBP"):
        record = _record(F.oriented(6, container))
        assert (record["width"], record["height"]) == (60, 40)
        assert inspect(F.oriented(6, container), Limits()).orientation == 6


def _mistyped(tag: int, kind: int, value: bytes) -> bytes:
    return F.jpeg_with_raw_exif(F.raw_exif((tag, kind, value)))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_mistyped(271, 2, b"Canon\x00"), id="make-as-ascii"),
        pytest.param(_mistyped(271, 7, b"Canon\x00"), id="make-as-undefined"),
        pytest.param(_mistyped(274, 3, struct.pack("<H", 6)), id="orientation-as-short"),
        pytest.param(_mistyped(274, 4, struct.pack("<I", 6)), id="orientation-as-long"),
    ],
)
def test_hand_built_exif_is_read(data: bytes) -> None:
    """Text stored as ASCII or UNDEFINED, orientation as SHORT or LONG, are all understood."""
    exif = _record(data)["exif"]
    assert exif.get("make", "Canon") == "Canon"
    assert exif.get("orientation", 6) == 6


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_mistyped(272, 5, struct.pack("<II", 3, 7)), id="model-as-rational"),
        pytest.param(_mistyped(271, 10, struct.pack("<ii", -1, 3)), id="make-as-srational"),
        pytest.param(_mistyped(274, 5, struct.pack("<II", 6, 1)), id="orientation-as-rational"),
        pytest.param(_mistyped(274, 11, struct.pack("<f", math.nan)), id="orientation-nan"),
        pytest.param(_mistyped(274, 11, struct.pack("<f", math.inf)), id="orientation-inf"),
    ],
)
def test_exif_field_of_the_wrong_type_never_breaks_the_record(data: bytes) -> None:
    """A text or orientation tag stored with a numeric type is dropped or coerced, never fatal."""
    record = _record(data)
    json.dumps(record, allow_nan=False)
    exif = record["exif"]
    for key in ("make", "model", "software"):
        assert isinstance(exif.get(key, ""), str)
    assert exif.get("orientation", 1) in range(1, 9)


def test_phash_is_stable_under_resizing_and_differs_between_images() -> None:
    """A resized copy hashes within a few bits; a different picture is far away."""
    base = Image.linear_gradient("L").convert("RGB").resize((400, 300))
    ImageDraw.Draw(base).ellipse([50, 40, 200, 220], fill=(200, 30, 30))
    other = base.transpose(Image.Transpose.ROTATE_180)

    def distance(a: Image.Image, b: Image.Image) -> int:
        return bin(int(phash(a), 16) ^ int(phash(b), 16)).count("1")

    assert len(phash(base)) == 16
    assert distance(base, base.resize((160, 120))) <= 4
    assert distance(base, other) >= 16
