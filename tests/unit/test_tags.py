"""LocalTagger: deterministic labels from a metadata record; NullTagger labels nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imgpipe.core.tags import LocalTagger, NullTagger, colour_name
from imgpipe.model import Tag
from imgpipe.ports import TagSubject


def _tags(**metadata: Any) -> Sequence[Tag]:
    record = {"width": 400, "height": 300, **metadata}
    return LocalTagger().tag(TagSubject(metadata=record, preview_jpeg=b""))


def _names(**metadata: Any) -> set[str]:
    return {t.name for t in _tags(**metadata)}


def _confidence(name: str, **metadata: Any) -> float:
    (tag,) = [t for t in _tags(**metadata) if t.name == name]
    return tag.confidence


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1000, 500, "landscape"),
        (500, 1000, "portrait"),
        (1000, 1000, "square"),
        (1040, 1000, "square"),  # within 5 %
        (1000, 1050, "square"),
        (1060, 1000, "landscape"),
        (1000, 1060, "portrait"),
        (2499, 1000, "landscape"),
        (2500, 1000, "panorama"),
        (1000, 2500, "panorama"),
        (1, 1, "square"),
        (10000, 1, "panorama"),
    ],
)
def test_shape_tag(width: int, height: int, expected: str) -> None:
    """Exactly one shape tag: landscape, portrait, square (5 % slack) or panorama (2.5:1)."""
    shapes = _names(width=width, height=height) & {"landscape", "portrait", "square", "panorama"}
    assert shapes == {expected}


@pytest.mark.parametrize(
    ("hex_colour", "name"),
    [
        ("#ff0000", "red"),
        ("#ee1111", "red"),
        ("#ff0040", "red"),  # hue 345: red wraps round the wheel
        ("#ff8000", "orange"),
        ("#8b4513", "brown"),  # saddle brown: a dark orange
        ("#ffff00", "yellow"),
        ("#00ff00", "green"),
        ("#00ffff", "cyan"),
        ("#0000ff", "blue"),
        ("#8000ff", "purple"),
        ("#ff69b4", "pink"),
        ("#ffffff", "white"),
        ("#f0f0f0", "white"),
        ("#000000", "black"),
        ("#1a1a1a", "black"),
        ("#808080", "gray"),
        ("#8a8a90", "gray"),
    ],
)
def test_colour_name_table(hex_colour: str, name: str) -> None:
    """Hex colours map to plain names by lightness, saturation and hue."""
    assert colour_name(hex_colour) == name


def test_colour_tags_come_from_dominant_colours() -> None:
    """Dominant colours with at least 15 % of the image become colour tags, weighted."""
    tags = _tags(
        dominant_colors=[
            {"hex": "#ff0000", "fraction": 0.6},
            {"hex": "#0000ff", "fraction": 0.3},
            {"hex": "#00ff00", "fraction": 0.1},
        ]
    )
    colours = [(t.name, t.confidence) for t in tags if t.name.startswith("color:")]
    assert colours == [("color:red", 0.6), ("color:blue", 0.3)]


def test_shades_of_one_colour_add_up() -> None:
    """Two reds of 10 % each make one 20 % red tag, above the threshold."""
    names = _names(
        dominant_colors=[
            {"hex": "#ff0000", "fraction": 0.1},
            {"hex": "#ee1111", "fraction": 0.1},
            {"hex": "#808080", "fraction": 0.8},
        ]
    )
    assert {"color:red", "color:gray"} <= names


@pytest.mark.parametrize(
    ("brightness", "tag", "confidence"),
    [
        (0.0, "dark", 1.0),
        (0.1, "dark", 0.6),
        (0.9, "bright", 0.6),
        (1.0, "bright", 1.0),
    ],
)
def test_dark_and_bright(brightness: float, tag: str, confidence: float) -> None:
    """Mean luma below 0.25 is dark, above 0.75 bright, with confidence growing to the extremes."""
    assert _confidence(tag, brightness=brightness) == pytest.approx(confidence)


@pytest.mark.parametrize("brightness", [0.25, 0.5, 0.75])
def test_middling_brightness_is_neither_dark_nor_bright(brightness: float) -> None:
    """Between the thresholds there is no brightness tag."""
    assert not _names(brightness=brightness) & {"dark", "bright"}


def test_monochrome() -> None:
    """Colourfulness under 0.04 is monochrome; colourful or unknown is not."""
    assert "monochrome" in _names(colorfulness=0.01)
    assert "monochrome" not in _names(colorfulness=0.5)
    assert "monochrome" not in _names()


@pytest.mark.parametrize(
    ("flag", "tag"),
    [("has_alpha", "has-alpha"), ("animated", "animated"), ("has_gps", "has-gps")],
)
def test_flags_become_tags(flag: str, tag: str) -> None:
    """has_alpha, animated and has_gps each add their tag, only when true."""
    assert tag in _names(**{flag: True})
    assert tag not in _names(**{flag: False})


@pytest.mark.parametrize(
    ("make", "tag"),
    [
        ("Canon", "camera:canon"),
        ("NIKON CORPORATION", "camera:nikon-corporation"),
        ("  FUJIFILM  ", "camera:fujifilm"),
        ("<script>alert(1)</script>", "camera:script-alert-1-script"),
        ("Hasselblad & Co. / Ltd", "camera:hasselblad-co-ltd"),
        ("x" * 100, "camera:" + "x" * 40),
    ],
)
def test_camera_make_becomes_a_slug(make: str, tag: str) -> None:
    """The EXIF Make becomes ``camera:<slug>``: lower-case, dashes, at most 40 characters."""
    cameras = {n for n in _names(exif={"make": make}) if n.startswith("camera:")}
    assert cameras == {tag}


@pytest.mark.parametrize("make", ["", "   ", "!!!", "\u00e9\u00e9"])
def test_make_without_letters_or_digits_gives_no_camera_tag(make: str) -> None:
    """A Make that slugs to nothing adds no camera tag."""
    assert not [n for n in _names(exif={"make": make}) if n.startswith("camera:")]


def test_every_local_tag_is_well_formed() -> None:
    """Tags from a full record are lower-case, sourced ``local`` and confident within [0, 1]."""
    tags = _tags(
        width=6000,
        height=1000,
        brightness=0.05,
        colorfulness=0.01,
        has_alpha=True,
        animated=True,
        has_gps=True,
        exif={"make": "Canon"},
        dominant_colors=[{"hex": "#000000", "fraction": 1.0}],
    )
    assert {t.name for t in tags} == {
        "panorama",
        "color:black",
        "dark",
        "monochrome",
        "has-alpha",
        "animated",
        "has-gps",
        "camera:canon",
    }
    for tag in tags:
        assert tag.source == "local"
        assert 0.0 <= tag.confidence <= 1.0
        assert tag.name == tag.name.lower()


_colours = st.builds(
    lambda rgb, fraction: {"hex": "#{:02x}{:02x}{:02x}".format(*rgb), "fraction": fraction},
    st.tuples(*[st.integers(0, 255)] * 3),
    st.floats(0, 1),
)


@given(
    width=st.integers(1, 100_000),
    height=st.integers(1, 100_000),
    brightness=st.floats(0, 1),
    colorfulness=st.floats(0, 1),
    colours=st.lists(_colours, max_size=5),
    make=st.text(max_size=200),
    flags=st.fixed_dictionaries(
        {"has_alpha": st.booleans(), "animated": st.booleans(), "has_gps": st.booleans()}
    ),
)
def test_any_plausible_record_gives_valid_tags(
    width: int,
    height: int,
    brightness: float,
    colorfulness: float,
    colours: list[dict[str, Any]],
    make: str,
    flags: dict[str, bool],
) -> None:
    """For any record in range, every tag is lower-case, local, and confident within [0, 1]."""
    tags = _tags(
        width=width,
        height=height,
        brightness=brightness,
        colorfulness=colorfulness,
        dominant_colors=colours,
        exif={"make": make},
        **flags,
    )
    assert tags
    names = [t.name for t in tags]
    assert len(names) == len(set(names))
    for tag in tags:
        assert tag.source == "local"
        assert 0.0 <= tag.confidence <= 1.0
        assert tag.name == tag.name.lower()
        assert tag.name.isascii()


def test_null_tagger_returns_nothing() -> None:
    """The NullTagger labels no image, whatever its record."""
    subject = TagSubject(metadata={"width": 10, "height": 10, "has_gps": True}, preview_jpeg=b"")
    assert list(NullTagger().tag(subject)) == []


def test_tag_serialises_with_rounded_confidence() -> None:
    """A tag's JSON form rounds confidence to four decimals."""
    assert Tag("dark", 0.123456, "local").to_dict() == {
        "name": "dark",
        "confidence": 0.1235,
        "source": "local",
    }
