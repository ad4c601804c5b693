"""EXIF fields a person cares about, parsed defensively from the raw EXIF block.

Malformed EXIF (it has crashed and hung many parsers) never fails an image: unreadable fields
are left out. GPS coordinates are only decoded when the caller asks to keep them.
"""

from __future__ import annotations

import math
import struct
import warnings
from datetime import datetime
from typing import Any

from PIL import Image, TiffImagePlugin

__all__ = ["read_exif"]

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_IFD0 = {"make": 271, "model": 272, "software": 305, "orientation": 274}
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 36867, 36881
_EXPOSURE_TIME, _F_NUMBER, _ISO, _FOCAL_LENGTH = 33434, 33437, 34855, 37386
_LENS_MAKE, _LENS_MODEL = 42035, 42036
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OSError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    SyntaxError,
    UnicodeError,
)


def read_exif(blob: bytes | None, keep_gps: bool) -> dict[str, Any]:
    """Return the curated EXIF fields of ``blob`` (empty when absent or unreadable)."""
    if not blob:
        return {}
    # Pillow warns (UserWarning) about damaged EXIF; damaged EXIF is expected input here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read(blob, keep_gps)


def _read(blob: bytes, keep_gps: bool) -> dict[str, Any]:
    exif = Image.Exif()
    try:
        exif.load(blob)
    except _PARSE_ERRORS:
        return {}
    out: dict[str, Any] = {}
    for name, tag in _IFD0.items():
        value = _safe_get(exif, tag)
        if name == "orientation":
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
                out[name] = value
        elif isinstance(value, str | bytes):  # a mistyped tag (a number for Make) is dropped
            _put(out, name, value)
    sub = _sub_ifd(exif, _EXIF_IFD)
    _put(out, "lens", _join(_safe_get(sub, _LENS_MAKE), _safe_get(sub, _LENS_MODEL)))
    _put(
        out,
        "datetime_original",
        _iso_datetime(_safe_get(sub, _DATETIME_ORIGINAL), _safe_get(sub, _OFFSET_TIME_ORIGINAL)),
    )
    exposure = _number(_safe_get(sub, _EXPOSURE_TIME))
    if exposure is not None and exposure > 0:
        out["exposure_time"] = exposure
        out["exposure"] = f"1/{round(1 / exposure)}" if exposure < 1 else f"{exposure:g}"
    _put(out, "f_number", _number(_safe_get(sub, _F_NUMBER)))
    iso = _safe_get(sub, _ISO)
    _put(out, "iso", _number(iso[0] if isinstance(iso, tuple) and iso else iso))
    _put(out, "focal_length_mm", _number(_safe_get(sub, _FOCAL_LENGTH)))
    gps = _sub_ifd(exif, _GPS_IFD)
    has_gps = bool(_safe_get(gps, 2) and _safe_get(gps, 4))
    out["has_gps"] = has_gps
    if has_gps and keep_gps:
        out.update(_gps(gps))
    return out


def _safe_get(mapping: Any, tag: int) -> Any:
    try:
        return mapping.get(tag)
    except _PARSE_ERRORS:
        return None


def _sub_ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except _PARSE_ERRORS:
        return {}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.replace("\x00", "").strip()
    if value not in (None, "", ()):
        out[key] = value


def _join(*parts: Any) -> str | None:
    texts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in parts]
    texts = [t for t in texts if isinstance(t, str)]
    words = [t.replace("\x00", "").strip() for t in texts if isinstance(t, str)]
    joined = " ".join(w for w in words if w)
    return joined or None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except _PARSE_ERRORS:
        return None
    if not math.isfinite(number):
        return None
    return round(number, 6)


def _iso_datetime(raw: Any, offset: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    text = moment.isoformat()
    if isinstance(offset, str) and len(offset.strip("\x00 ")) == 6:
        sign, rest = offset.strip("\x00 ")[0], offset.strip("\x00 ")[1:]
        if sign in "+-" and rest[2] == ":" and rest.replace(":", "").isdigit():
            text += sign + rest
    return text


def _dms(value: Any, ref: Any) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    try:
        degrees, minutes, seconds = (float(v) for v in value)
    except _PARSE_ERRORS:
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if isinstance(ref, str) and ref.strip("\x00 ").upper() in ("S", "W"):
        decimal = -decimal
    return round(decimal, 7)


def _gps(gps: dict[int, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lat, lon = _dms(gps.get(2), gps.get(1)), _dms(gps.get(4), gps.get(3))
    if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
        out["gps_latitude"], out["gps_longitude"] = lat, lon
    altitude = _number(gps.get(6))
    if altitude is not None:
        below_sea = gps.get(5) in (1, b"\x01")
        out["gps_altitude_m"] = -altitude if below_sea else altitude
    return out


# Pillow represents rationals with this type; imported so mypy/ruff see why float() works.
_ = TiffImagePlugin.IFDRational
