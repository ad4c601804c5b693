"""Settings: defaults < TOML < IMGPIPE_* environment < explicit overrides, all checked once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imgpipe.errors import ConfigError
from imgpipe.settings import Encoding, Limits, RenditionSpec, Settings, default_renditions

EXAMPLE_TOML = """\
[limits]
max_bytes = 25000000
max_pixels = 50000000
max_side = 16383
[[renditions]]
name = "large"
width = 2048
formats = ["jpeg", "webp"]
[quality]
jpeg = 85
webp = 80
avif = 50
[metadata]
keep_gps = false
"""

CUSTOM_TOML = """\
[limits]
max_bytes = 1000
max_frames = 7
[[renditions]]
name = "card"
width = 600
height = 400
fit = "cover"
formats = ["avif", "png"]
quality = { avif = 40 }
[[renditions]]
name = "thumb"
width = 128
[quality]
jpeg = 70
[encoding]
webp_effort = 4
[metadata]
keep_gps = true
"""


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "imgpipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults and the file -----------------------------------------------------------------------


def test_defaults() -> None:
    """Without file, environment or overrides, the documented defaults apply."""
    settings = Settings.load(environ={})
    assert settings.limits == Limits()
    assert (settings.limits.max_bytes, settings.limits.max_pixels) == (25_000_000, 50_000_000)
    assert (settings.limits.max_side, settings.limits.max_frames) == (16383, 1000)
    assert settings.encoding == Encoding()
    assert (settings.encoding.jpeg, settings.encoding.webp, settings.encoding.avif) == (85, 80, 50)
    assert settings.keep_gps is False
    assert [(r.name, r.width, r.formats) for r in settings.renditions] == [
        ("large", 2048, ("jpeg", "webp")),
        ("medium", 1024, ("jpeg", "webp")),
        ("thumb", 320, ("jpeg", "webp")),
    ]


def test_documented_toml_loads(tmp_path: Path) -> None:
    """The example configuration file loads into exactly what it says."""
    settings = Settings.load(config=_toml(tmp_path, EXAMPLE_TOML), environ={})
    assert settings.limits == Limits(max_bytes=25_000_000, max_pixels=50_000_000, max_side=16383)
    assert settings.renditions == (RenditionSpec("large", 2048, formats=("jpeg", "webp")),)
    assert (settings.encoding.jpeg, settings.encoding.webp, settings.encoding.avif) == (85, 80, 50)
    assert settings.keep_gps is False


def test_custom_toml_sets_every_section(tmp_path: Path) -> None:
    """Limits, renditions (cover, per-rendition quality), quality, encoding and metadata load."""
    settings = Settings.load(config=_toml(tmp_path, CUSTOM_TOML), environ={})
    assert (settings.limits.max_bytes, settings.limits.max_frames) == (1000, 7)
    assert settings.limits.max_pixels == Limits().max_pixels  # untouched keys keep defaults
    card, thumb = settings.renditions
    assert (card.name, card.width, card.height, card.fit) == ("card", 600, 400, "cover")
    assert card.formats == ("avif", "png")
    assert dict(card.quality) == {"avif": 40}
    assert (thumb.name, thumb.width, thumb.height, thumb.formats) == (
        "thumb",
        128,
        None,
        ("jpeg", "webp"),
    )
    assert (settings.encoding.jpeg, settings.encoding.webp_effort) == (70, 4)
    assert settings.keep_gps is True


def test_config_path_can_come_from_the_environment(tmp_path: Path) -> None:
    """``IMGPIPE_CONFIG`` names the file when no path is passed."""
    path = _toml(tmp_path, CUSTOM_TOML)
    assert Settings.load(environ={"IMGPIPE_CONFIG": str(path)}).limits.max_bytes == 1000


def test_explicit_config_path_beats_the_environment(tmp_path: Path) -> None:
    """A path passed in wins over ``IMGPIPE_CONFIG``."""
    explicit = _toml(tmp_path, CUSTOM_TOML)
    other = tmp_path / "other.toml"
    other.write_text("[limits]\nmax_bytes = 5\n", encoding="utf-8")
    settings = Settings.load(config=explicit, environ={"IMGPIPE_CONFIG": str(other)})
    assert settings.limits.max_bytes == 1000


# --- precedence ----------------------------------------------------------------------------------


def test_precedence_defaults_toml_environment_overrides(tmp_path: Path) -> None:
    """Each layer beats the one below it, key by key."""
    path = _toml(tmp_path, CUSTOM_TOML)  # max_bytes 1000, max_frames 7, jpeg 70
    env = {"IMGPIPE_MAX_BYTES": "10", "IMGPIPE_JPEG": "60"}

    from_file = Settings.load(config=path, environ={})
    from_env = Settings.load(config=path, environ=env)
    overridden = Settings.load(config=path, environ=env, max_bytes=3, keep_gps=False)

    assert from_file.limits.max_bytes == 1000
    assert from_env.limits.max_bytes == 10
    assert overridden.limits.max_bytes == 3
    assert from_env.encoding.jpeg == overridden.encoding.jpeg == 60  # env beats file
    assert from_env.limits.max_frames == 7  # file beats default
    assert from_env.keep_gps is True
    assert overridden.keep_gps is False  # override beats file


def test_environment_alone_changes_a_default() -> None:
    """``IMGPIPE_MAX_BYTES=10`` sets the byte limit to 10."""
    assert Settings.load(environ={"IMGPIPE_MAX_BYTES": "10"}).limits.max_bytes == 10


def test_none_overrides_are_ignored() -> None:
    """An override of None (an unset CLI flag) leaves the lower layers in force."""
    settings = Settings.load(environ={"IMGPIPE_MAX_BYTES": "10"}, max_bytes=None)
    assert settings.limits.max_bytes == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_environment_values(raw: str, expected: bool) -> None:
    """IMGPIPE_KEEP_GPS accepts the usual spellings of true and false."""
    assert Settings.load(environ={"IMGPIPE_KEEP_GPS": raw}).keep_gps is expected


def test_float_limit_from_environment() -> None:
    """A float setting (timeout_s) converts from its environment string."""
    assert Settings.load(environ={"IMGPIPE_TIMEOUT_S": "2.5"}).limits.timeout_s == 2.5


def test_environment_is_not_read_when_a_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``environ`` passed, the process environment is ignored."""
    monkeypatch.setenv("IMGPIPE_MAX_BYTES", "10")
    assert Settings.load(environ={}).limits.max_bytes == Limits().max_bytes


def test_summary_is_json_ready() -> None:
    """summary() lists limits, encoding, keep_gps and renditions as plain data."""
    summary = Settings().summary()
    assert summary["limits"]["max_bytes"] == 25_000_000
    assert summary["keep_gps"] is False
    assert summary["renditions"][0] == {
        "name": "large",
        "width": 2048,
        "height": None,
        "fit": "inside",
        "formats": ["jpeg", "webp"],
    }


# --- bad values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[limitz]\nmax_bytes = 1\n", "unknown section", id="unknown-section"),
        pytest.param("[limits]\nmax_byte = 1\n", "max_byte", id="unknown-limit"),
        pytest.param("[quality]\njpg = 80\n", "jpg", id="unknown-quality"),
        pytest.param(
            '[[renditions]]\nname = "a"\nwidth = 10\nfit = "cover"\n',
            "needs a height",
            id="cover-without-height",
        ),
        pytest.param(
            '[[renditions]]\nname = "a"\nwidth = 10\n[[renditions]]\nname = "a"\nwidth = 20\n',
            "unique",
            id="duplicate-names",
        ),
        pytest.param(
            '[[renditions]]\nname = "a"\nwidth = 10\nfit = "fill"\n', "fit", id="unknown-fit"
        ),
        pytest.param(
            '[[renditions]]\nname = "a"\nwidth = 10\nformats = ["gif"]\n',
            "formats",
            id="unknown-format",
        ),
        pytest.param('[[renditions]]\nname = "a"\nwidth = 0\n', ">= 1", id="zero-width"),
        pytest.param('[[renditions]]\nname = "a b"\nwidth = 10\n', "'a b'", id="bad-name"),
        pytest.param('[[renditions]]\nname = "a"\nwidth = "10"\n', "a", id="string-width"),
        pytest.param("[[renditions]]\nwidth = 10\n", "name", id="missing-name"),
        pytest.param('[[renditions]]\nname = "a"\nwidht = 10\n', "widht", id="typo-in-key"),
        pytest.param("this is = = not toml", "cannot read", id="not-toml"),
    ],
)
def test_bad_toml_raises_config_error(tmp_path: Path, text: str, message: str) -> None:
    """Every mistake in the file is a ConfigError naming the problem, not a crash later."""
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.load(config=_toml(tmp_path, text), environ={})
    assert caught.value.code == "config"
    assert caught.value.exit_code == 78


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is a ConfigError."""
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load(config=tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMGPIPE_MAX_BYTES": "lots"}, "expected a int"),
        ({"IMGPIPE_MAX_BYTES": "1.5"}, "max_bytes"),
        ({"IMGPIPE_MAX_BYTES": ""}, "max_bytes"),
        ({"IMGPIPE_MAX_BYTES": "0"}, "positive"),
        ({"IMGPIPE_MAX_PIXELS": "-5"}, "positive"),
        ({"IMGPIPE_TIMEOUT_S": "soon"}, "expected a float"),
        ({"IMGPIPE_JPEG": "high"}, "jpeg"),
        ({"IMGPIPE_KEEP_GPS": "maybe"}, "boolean"),
    ],
)
def test_bad_environment_values_raise_config_error(env: dict[str, str], message: str) -> None:
    """Non-numeric, non-positive or non-boolean environment values are ConfigErrors."""
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ=env)


def test_unknown_override_is_a_config_error() -> None:
    """An override name that is no setting is refused rather than ignored."""
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(environ={}, max_byts=10)


def test_settings_need_at_least_one_rendition() -> None:
    """An empty rendition list is refused."""
    with pytest.raises(ConfigError, match="at least one"):
        Settings(renditions=())


def test_default_renditions_are_fresh_and_valid() -> None:
    """default_renditions() gives large, medium and thumb, in cascade order."""
    names = [r.name for r in default_renditions()]
    assert names == ["large", "medium", "thumb"]


# --- known bugs ----------------------------------------------------------------------------------


def test_keep_gps_string_false_does_not_keep_gps(tmp_path: Path) -> None:
    """``keep_gps = "false"`` must not switch GPS keeping on (refuse it or read it as false)."""
    path = _toml(tmp_path, '[metadata]\nkeep_gps = "false"\n')
    try:
        settings = Settings.load(config=path, environ={})
    except ConfigError:
        return
    assert settings.keep_gps is False


def test_unknown_metadata_key_is_a_config_error(tmp_path: Path) -> None:
    """A typo in [metadata] is refused like a typo in any other section."""
    with pytest.raises(ConfigError):
        Settings.load(config=_toml(tmp_path, "[metadata]\nkeep_gsp = true\n"), environ={})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('[limits]\nmax_bytes = "lots"\n', id="string-limit"),
        pytest.param("[limits]\nmax_bytes = -1\n", id="negative-limit"),
        pytest.param('[quality]\njpeg = "high"\n', id="string-quality"),
    ],
)
def test_toml_values_are_checked_like_environment_values(tmp_path: Path, text: str) -> None:
    """A TOML value of the wrong type or sign is a ConfigError, as the same env value is."""
    with pytest.raises(ConfigError):
        Settings.load(config=_toml(tmp_path, text), environ={})


@pytest.mark.parametrize(
    "source",
    [
        pytest.param({"environ": {"IMGPIPE_JPEG": "500"}}, id="env-jpeg-500"),
        pytest.param({"environ": {"IMGPIPE_WEBP_EFFORT": "9"}}, id="env-webp-effort-9"),
        pytest.param({"environ": {}, "avif": 101}, id="override-avif-101"),
    ],
)
def test_encoder_settings_are_range_checked(source: dict[str, Any]) -> None:
    """Quality outside 1..100 or an effort outside the encoder's range is a ConfigError."""
    with pytest.raises(ConfigError):
        Settings.load(**source)


@pytest.mark.parametrize("raw", ["nan", "inf"])
def test_timeout_must_be_finite(raw: str) -> None:
    """A non-finite timeout is refused."""
    with pytest.raises(ConfigError):
        Settings.load(environ={"IMGPIPE_TIMEOUT_S": raw})


@pytest.mark.parametrize(
    "quality",
    [pytest.param({"jpeg": 500}, id="jpeg-500"), pytest.param({"jpg": 80}, id="unknown-format")],
)
def test_rendition_quality_is_checked(quality: dict[str, int]) -> None:
    """A per-rendition quality must name a lossy format and lie in 1..100."""
    with pytest.raises(ConfigError):
        RenditionSpec("a", 10, quality=quality)
