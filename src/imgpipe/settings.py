"""One settings object, resolved once and passed down.

Precedence, lowest to highest: built-in defaults < TOML file (``--config`` or ``$IMGPIPE_CONFIG``)
< ``IMGPIPE_*`` environment variables < explicit keyword overrides (CLI flags). Nothing below the
entrypoints reads the environment.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from imgpipe.errors import ConfigError

__all__ = [
    "FORMATS",
    "Encoding",
    "Fit",
    "ImageFormat",
    "Limits",
    "RenditionSpec",
    "Service",
    "Settings",
    "Webhooks",
    "default_renditions",
]

ImageFormat = Literal["jpeg", "webp", "avif", "png"]
Fit = Literal["inside", "cover"]
FORMATS: tuple[ImageFormat, ...] = ("jpeg", "webp", "avif", "png")


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits, all checked before a single pixel is decoded."""

    max_bytes: int = 25_000_000
    max_pixels: int = 50_000_000
    max_side: int = 16383
    max_frames: int = 1000
    # Declared pixels summed over every frame: a 1000-frame 4K GIF is not a profile picture.
    max_total_pixels: int = 500_000_000
    # Wall-clock budget for one image in a worker; past it the worker is killed and replaced.
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Service:
    """Knobs of the running service (local ``imgpipe serve`` and the AWS stack alike)."""

    # Direct uploads (POST /images) are capped at what survives API Gateway + Lambda (base64 of
    # a 6 MB payload); larger files go through POST /uploads (presigned-style).
    direct_max_bytes: int = 4 * 1024 * 1024
    upload_expiry_s: int = 900
    # Must exceed the worst processing time (timeout_s) so a live job is not redelivered.
    visibility_s: float = 90.0
    max_receives: int = 5
    # The local HTTP face (imgpipe serve). A request body must arrive within the deadline
    # (25 MB at 60 s needs ~3.3 Mbit/s); past max_requests concurrent requests each new one
    # gets a JSON 503 at once; the listen backlog absorbs bursts of new connections.
    request_deadline_s: float = 60.0
    max_requests: int = 512
    backlog: int = 2048
    keepalive_s: float = 5.0
    # A processed image whose pHash is within this many of 64 bits of an older processed one
    # records it as ``near_duplicate_of`` (0: identical hashes only; imgpipe.similarity).
    near_duplicate_distance: int = 4


@dataclass(frozen=True, slots=True)
class Webhooks:
    """Where the local service sends its image events (``[webhooks]``; none by default).

    Each event is POSTed to every URL, signed with ``secret`` (``imgpipe.webhooks``), retried
    with backoff through the durable queue and dead-lettered after ``max_attempts``. Only
    these URLs are ever called; redirects are not followed."""

    urls: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)
    max_attempts: int = 8
    timeout_s: float = 10.0
    # The wait after a failed attempt, doubled each time (10, 20, 40 ... s, at most an hour):
    # 8 attempts span about 21 minutes.
    backoff_s: float = 10.0

    def __post_init__(self) -> None:
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"webhook URL {url!r}: expected http(s)://host/path")
            if parts.username or parts.password:
                raise ConfigError(f"webhook URL {url!r}: no credentials in the URL; the "
                                  "deliveries are signed")  # fmt: skip
        if self.urls and len(self.secret) < 16:
            raise ConfigError("webhooks need a secret of at least 16 characters "
                              "(IMGPIPE_WEBHOOK_SECRET) to sign their deliveries")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Encoding:
    """Per-format quality and encoder effort (the speed/size knob)."""

    jpeg: int = 85
    webp: int = 80
    avif: int = 50
    # libwebp "method"/effort 0..6. Measured in BENCHMARKS.md: 2 keeps bytes within a few per cent
    # of the default (4) while cutting the encode time by about a third.
    webp_effort: int = 2
    avif_effort: int = 4

    def quality(self, fmt: ImageFormat) -> int:
        """Quality for one format (PNG is lossless and ignores it)."""
        return {"jpeg": self.jpeg, "webp": self.webp, "avif": self.avif}.get(fmt, 100)


@dataclass(frozen=True, slots=True)
class RenditionSpec:
    """One rendition, as data: resize to fit within (width x height), then encode to formats.

    ``fit="inside"`` keeps the aspect ratio and never upscales; ``fit="cover"`` fills exactly
    width x height (needs a height), cropping around the image's focal point (see
    ``core.render``), again without upscaling.
    ``quality`` overrides the global per-format quality for this rendition only.
    """

    name: str
    width: int
    height: int | None = None
    fit: Fit = "inside"
    formats: tuple[ImageFormat, ...] = ("jpeg", "webp")
    quality: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", self.name):
            raise ConfigError(f"rendition name {self.name!r}: use 1-64 letters, digits or _")
        if self.width < 1 or (self.height is not None and self.height < 1):
            raise ConfigError(f"rendition {self.name!r}: width and height must be >= 1")
        if self.fit not in ("inside", "cover"):
            raise ConfigError(f"rendition {self.name!r}: fit must be 'inside' or 'cover'")
        if self.fit == "cover" and self.height is None:
            raise ConfigError(f"rendition {self.name!r}: fit='cover' needs a height")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ConfigError(f"rendition {self.name!r}: formats must be among {FORMATS}")
        for fmt, quality in self.quality.items():
            if fmt not in FORMATS or isinstance(quality, bool) or not 1 <= quality <= 100:
                raise ConfigError(
                    f"rendition {self.name!r}: quality must map a format to 1..100, "
                    f"got {fmt!r}: {quality!r}"
                )


def default_renditions() -> tuple[RenditionSpec, ...]:
    """``large`` 2048, ``medium`` 1024, ``thumb`` 320 (width), each JPEG + WebP."""
    return (
        RenditionSpec("large", 2048),
        RenditionSpec("medium", 1024),
        RenditionSpec("thumb", 320),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the core needs to know, resolved once."""

    limits: Limits = field(default_factory=Limits)
    renditions: tuple[RenditionSpec, ...] = field(default_factory=default_renditions)
    encoding: Encoding = field(default_factory=Encoding)
    keep_gps: bool = False
    service: Service = field(default_factory=Service)
    webhooks: Webhooks = field(default_factory=Webhooks)

    def __post_init__(self) -> None:
        names = [r.name for r in self.renditions]
        if not names:
            raise ConfigError("at least one rendition is required")
        if len(set(names)) != len(names):
            raise ConfigError(f"rendition names must be unique, got {names}")

    @classmethod
    def load(
        cls,
        config: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Resolve settings: defaults < TOML file < ``IMGPIPE_*`` environment < ``overrides``.

        ``overrides`` take the flat names of the environment variables without the prefix, in
        lower case (``max_bytes=...``, ``keep_gps=True``); ``None`` values are ignored.
        """
        env = os.environ if environ is None else environ
        path = config if config is not None else env.get("IMGPIPE_CONFIG")
        settings = cls.from_toml(Path(path)) if path else cls()
        flat: dict[str, str | int | float | bool] = {}
        for name in _FLAT_KEYS:
            if (value := env.get(f"IMGPIPE_{name.upper()}")) is not None:
                flat[name] = value
        flat.update({k: v for k, v in overrides.items() if v is not None})
        return settings.with_flat(flat)

    @classmethod
    def from_toml(cls, path: Path) -> Settings:
        """Read a TOML file with ``[limits]``, ``[[renditions]]``, ``[quality]``, ``[metadata]``."""
        import tomllib  # noqa: PLC0415 - only with a config file: 4 ms of every process start

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>") -> Settings:
        """Build settings from the parsed TOML structure; unknown keys are an error, not ignored."""
        if unknown := set(data) - {"renditions", "webhooks", *_SECTIONS}:
            raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}")
        flat: dict[str, str | int | float | bool] = {}
        hooks = data.get("webhooks", {})
        if not isinstance(hooks, Mapping):
            raise ConfigError(f"{source}: [webhooks] must be a table")
        if unknown := set(hooks) - {f.name for f in fields(Webhooks)}:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} in [webhooks]")
        if "urls" in hooks:
            urls = hooks["urls"]
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise ConfigError(f"{source}: [webhooks] urls must be a list of strings")
            flat["webhook_urls"] = " ".join(urls)
        flat.update({f"webhook_{k}": v for k, v in hooks.items() if k != "urls"})
        for section, keys in _SECTIONS.items():
            values = data.get(section, {})
            if not isinstance(values, Mapping):
                raise ConfigError(f"{source}: [{section}] must be a table")
            if unknown := set(values) - set(keys):
                raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} in [{section}]")
            flat.update(values)
        try:
            renditions = tuple(
                RenditionSpec(**{**r, "formats": tuple(r.get("formats", ("jpeg", "webp")))})
                for r in data.get("renditions", [])
            )
        except TypeError as exc:
            raise ConfigError(f"{source}: [[renditions]]: {exc}") from exc
        try:
            return cls(renditions=renditions or default_renditions()).with_flat(flat)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc.message}") from exc

    def with_flat(self, flat: Mapping[str, str | int | float | bool]) -> Settings:
        """Apply flat overrides (environment-style names) with type conversion and checks."""
        limits, encoding, keep_gps, service = (
            self.limits,
            self.encoding,
            self.keep_gps,
            self.service,
        )
        hooks: dict[str, Any] = {}
        for name, raw in flat.items():
            if name not in _FLAT_KEYS:
                raise ConfigError(f"unknown setting {name!r}")
            if name == "keep_gps":
                keep_gps = _to_bool(name, raw)
            elif name == "webhook_urls":
                hooks["urls"] = tuple(u for u in str(raw).replace(",", " ").split() if u)
            elif name == "webhook_secret":
                hooks["secret"] = str(raw)
            elif name in _WEBHOOK_KEYS:
                field_name = name.removeprefix("webhook_")
                hooks[field_name] = _to_number(field_name, raw, self.webhooks)
            elif name in _SERVICE_KEYS:
                service = replace(service, **_field(name, raw, service))
            elif name in _LIMIT_KEYS:
                limits = replace(limits, **_field(name, raw, limits))
            else:
                encoding = replace(encoding, **_field(name, raw, encoding))
        webhooks = replace(self.webhooks, **hooks) if hooks else self.webhooks
        return replace(self, limits=limits, encoding=encoding, keep_gps=keep_gps, service=service,
                       webhooks=webhooks)  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view of the settings in force (for ``imgpipe doctor`` and logs)."""
        return {
            "limits": {f.name: getattr(self.limits, f.name) for f in fields(Limits)},
            "encoding": {f.name: getattr(self.encoding, f.name) for f in fields(Encoding)},
            "keep_gps": self.keep_gps,
            "service": {f.name: getattr(self.service, f.name) for f in fields(Service)},
            "webhooks": {
                "urls": list(self.webhooks.urls),
                "max_attempts": self.webhooks.max_attempts,
                "timeout_s": self.webhooks.timeout_s,
            },
            "renditions": [
                {
                    "name": r.name,
                    "width": r.width,
                    "height": r.height,
                    "fit": r.fit,
                    "formats": list(r.formats),
                }
                for r in self.renditions
            ],
        }


_LIMIT_KEYS = tuple(f.name for f in fields(Limits))
_ENCODING_KEYS = tuple(f.name for f in fields(Encoding))
_SERVICE_KEYS = tuple(f.name for f in fields(Service))
_QUALITY_KEYS = ("jpeg", "webp", "avif")
# TOML section -> the flat keys it may hold ([quality] and [encoding] both feed Encoding).
_SECTIONS: dict[str, tuple[str, ...]] = {
    "limits": _LIMIT_KEYS,
    "quality": _QUALITY_KEYS,
    "encoding": _ENCODING_KEYS,
    "metadata": ("keep_gps",),
    "service": _SERVICE_KEYS,
}
_BOUNDS: dict[str, tuple[float, float]] = {
    "jpeg": (1, 100),
    "webp": (1, 100),
    "avif": (1, 100),
    "webp_effort": (0, 6),
    "avif_effort": (0, 9),
    "near_duplicate_distance": (0, 12),  # imgpipe.similarity.MAX_DISTANCE
}
# [webhooks] as flat names (IMGPIPE_WEBHOOK_URLS: space- or comma-separated).
_WEBHOOK_KEYS = tuple(f"webhook_{f.name}" for f in fields(Webhooks))
_FLAT_KEYS = (*_LIMIT_KEYS, *_ENCODING_KEYS, *_SERVICE_KEYS, *_WEBHOOK_KEYS, "keep_gps")


def _to_bool(name: str, raw: str | int | float | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}: expected a boolean, got {raw!r}")


def _field(name: str, raw: str | int | float | bool, owner: object) -> dict[str, Any]:
    """``{name: value}`` for ``dataclasses.replace``: the value converted to the type of the
    field it replaces (``_to_number`` checks it), which a dynamic name hides from mypy."""
    return {name: _to_number(name, raw, owner)}


def _to_number(name: str, raw: str | int | float | bool, owner: object) -> int | float:
    kind = type(getattr(owner, name))
    if isinstance(raw, bool):
        raise ConfigError(f"{name}: expected a {kind.__name__}, got {raw!r}")
    try:
        value = kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: expected a {kind.__name__}, got {raw!r}") from exc
    if name in _BOUNDS:
        low, high = _BOUNDS[name]
        if not low <= value <= high:
            raise ConfigError(f"{name}: must be between {low} and {high}, got {raw!r}")
    elif not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}: must be a positive finite number, got {raw!r}")
    return value  # type: ignore[no-any-return]
