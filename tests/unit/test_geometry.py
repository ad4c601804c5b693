"""Rendition geometry as arithmetic: a table of (source, spec) -> size, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imgpipe.core.geometry import display_size, plan, round_half_up
from imgpipe.settings import Fit, RenditionSpec


def _inside(width: int, height: int | None = None) -> RenditionSpec:
    return RenditionSpec("r", width, height)


def _cover(width: int, height: int) -> RenditionSpec:
    return RenditionSpec("r", width, height, fit="cover")


TABLE = [
    # (source, spec, scaled, final size)
    pytest.param((2912, 4368), _inside(2048), (2048, 3072), (2048, 3072), id="portrait-width-2048"),
    pytest.param((4368, 2912), _inside(2048), (2048, 1365), (2048, 1365), id="landscape-width"),
    pytest.param((6000, 4000), _inside(1024), (1024, 683), (1024, 683), id="round-up-682.67"),
    pytest.param((1000, 800), _inside(2048), (1000, 800), (1000, 800), id="never-upscale"),
    pytest.param((2048, 1000), _inside(2048), (2048, 1000), (2048, 1000), id="exactly-the-box"),
    pytest.param((1, 1), _inside(320), (1, 1), (1, 1), id="1x1"),
    pytest.param((1, 1), _cover(320, 320), (1, 1), (1, 1), id="1x1-cover"),
    pytest.param((4000, 3000), _inside(320, 320), (320, 240), (320, 240), id="box-landscape"),
    pytest.param((3000, 4000), _inside(320, 320), (240, 320), (240, 320), id="box-portrait"),
    pytest.param((4000, 1000), _inside(400, 400), (400, 100), (400, 100), id="box-wide"),
    pytest.param((4000, 3000), _cover(320, 320), (427, 320), (320, 320), id="cover-crop-sides"),
    pytest.param((3000, 4000), _cover(320, 200), (320, 427), (320, 200), id="cover-crop-top"),
    pytest.param((640, 480), _cover(320, 240), (320, 240), (320, 240), id="cover-same-aspect"),
    pytest.param((100, 1000), _cover(200, 200), (100, 1000), (100, 200), id="cover-no-upscale"),
    pytest.param((50, 40), _cover(200, 200), (50, 40), (50, 40), id="cover-small-source"),
    pytest.param((20000, 10), _cover(64, 64), (20000, 10), (64, 10), id="cover-extreme"),
    pytest.param((10000, 1), _inside(100), (100, 1), (100, 1), id="extreme-wide"),
    pytest.param((1, 10000), _inside(100), (1, 10000), (1, 10000), id="extreme-tall-width-box"),
    pytest.param((1, 10000), _inside(100, 100), (1, 100), (1, 100), id="extreme-tall-in-box"),
    pytest.param((30000, 2), _inside(320), (320, 1), (320, 1), id="never-zero-height"),
    pytest.param((4, 5), _inside(2), (2, 3), (2, 3), id="half-rounds-up"),
]


@pytest.mark.parametrize(("source", "spec", "scaled", "size"), TABLE)
def test_plan_table(
    source: tuple[int, int],
    spec: RenditionSpec,
    scaled: tuple[int, int],
    size: tuple[int, int],
) -> None:
    """Each (source size, spec) pair is planned to exactly the expected resize and final size."""
    (planned,) = plan(*source, [spec])
    assert planned.scaled == scaled
    assert planned.size == size
    assert planned.cropped is (scaled != size)
    assert planned.spec is spec


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (1, (60, 40)),
        (2, (60, 40)),
        (3, (60, 40)),
        (4, (60, 40)),
        (5, (40, 60)),
        (6, (40, 60)),
        (7, (40, 60)),
        (8, (40, 60)),
        (0, (60, 40)),
        (9, (60, 40)),
        (-1, (60, 40)),
    ],
)
def test_display_size_swaps_only_for_the_quarter_turns(
    orientation: int, expected: tuple[int, int]
) -> None:
    """Orientations 5-8 swap width and height; 1-4 and invalid values keep the stored size."""
    assert display_size(60, 40, orientation) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5, 1), (1.5, 2), (2.5, 3), (2.4999, 2), (682.6667, 683), (0.49, 0), (3.0, 3)],
)
def test_round_half_up_rounds_halves_away_from_zero(value: float, expected: int) -> None:
    """Halves round up (2.5 -> 3), unlike Python's banker's rounding."""
    assert round_half_up(value) == expected


def test_plan_orders_renditions_largest_first() -> None:
    """The plan is in cascade order: each rendition can be made from the one before it."""
    specs = [_inside(320), RenditionSpec("big", 2048), RenditionSpec("mid", 1024)]
    planned = plan(4000, 3000, specs)
    assert [p.scaled for p in planned] == [(2048, 1536), (1024, 768), (320, 240)]


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-5, 10)])
def test_plan_refuses_an_empty_source(width: int, height: int) -> None:
    """A source without pixels cannot be planned."""
    with pytest.raises(ValueError, match="positive"):
        plan(width, height, [_inside(10)])


# --- properties ----------------------------------------------------------------------------------

sides = st.integers(min_value=1, max_value=40_000)
boxes = st.integers(min_value=1, max_value=5_000)


@st.composite
def specs(draw: st.DrawFn, fit: Fit | None = None) -> RenditionSpec:
    fits: tuple[Fit, ...] = ("inside", "cover")
    chosen: Fit = draw(st.sampled_from(fits)) if fit is None else fit
    width = draw(boxes)
    height = draw(boxes) if chosen == "cover" else draw(st.none() | boxes)
    return RenditionSpec("r", width, height, fit=chosen)


def _aspect_error(source: tuple[int, int], out: tuple[int, int]) -> float:
    """Distance, in output pixels, between the shorter output side and the exact aspect."""
    (w, h), (ow, oh) = source, out
    return abs(oh - ow * h / w) if w >= h else abs(ow - oh * w / h)


@given(w=sides, h=sides, spec=specs())
@example(w=3, h=40_000, spec=RenditionSpec("r", 1, 1, fit="inside"))
@example(w=40_000, h=1, spec=RenditionSpec("r", 1, None))
def test_resize_keeps_the_aspect_within_one_pixel(w: int, h: int, spec: RenditionSpec) -> None:
    """Before any crop, the output's shorter side is within 1 px of the exact aspect ratio."""
    (planned,) = plan(w, h, [spec])
    assert _aspect_error((w, h), planned.scaled) <= 1.0


@given(w=sides, h=sides, spec=specs())
def test_never_upscales_and_never_empties(w: int, h: int, spec: RenditionSpec) -> None:
    """No output side exceeds the source's, and every side is at least 1 px."""
    (planned,) = plan(w, h, [spec])
    for size in (planned.scaled, planned.size):
        assert 1 <= size[0] <= w
        assert 1 <= size[1] <= h


@given(w=sides, h=sides, spec=specs(fit="inside"))
def test_inside_fit_fits_inside_the_box(w: int, h: int, spec: RenditionSpec) -> None:
    """An inside rendition is never cropped and never exceeds its box."""
    (planned,) = plan(w, h, [spec])
    assert not planned.cropped
    assert planned.size[0] <= spec.width
    if spec.height is not None:
        assert planned.size[1] <= spec.height


@given(w=sides, h=sides, spec=specs(fit="inside"))
def test_inside_fit_touches_the_box_when_shrinking(w: int, h: int, spec: RenditionSpec) -> None:
    """When the source is bigger than the box, one side of the output meets the box."""
    box_h = spec.height if spec.height is not None else h
    (planned,) = plan(w, h, [spec])
    if w > spec.width or h > box_h:
        assert planned.size[0] == spec.width or planned.size[1] == box_h


@given(spec=specs(fit="cover"), extra_w=sides, extra_h=sides)
def test_cover_fills_the_box_when_the_source_is_larger(
    spec: RenditionSpec, extra_w: int, extra_h: int
) -> None:
    """A cover rendition of a source at least as big as its box is exactly the box."""
    assert spec.height is not None
    w, h = spec.width + extra_w - 1, spec.height + extra_h - 1
    (planned,) = plan(w, h, [spec])
    assert planned.size == (spec.width, spec.height)
    assert planned.scaled[0] >= spec.width
    assert planned.scaled[1] >= spec.height


@given(w=sides, h=sides, spec=specs(fit="cover"))
def test_cover_crops_within_the_resized_image(w: int, h: int, spec: RenditionSpec) -> None:
    """A cover crop never exceeds the box nor the resized image it is cut from."""
    assert spec.height is not None
    (planned,) = plan(w, h, [spec])
    assert planned.size[0] == min(planned.scaled[0], spec.width)
    assert planned.size[1] == min(planned.scaled[1], spec.height)


@given(w=sides, h=sides, orientation=st.integers(min_value=1, max_value=8))
def test_orientation_applied_twice_is_the_stored_size(w: int, h: int, orientation: int) -> None:
    """display_size is its own inverse: applying an orientation twice restores the stored size."""
    assert display_size(*display_size(w, h, orientation), orientation) == (w, h)


@given(w=sides, h=sides, chosen=st.lists(specs(), min_size=1, max_size=5))
def test_plan_is_largest_first_and_keeps_every_spec(
    w: int, h: int, chosen: list[RenditionSpec]
) -> None:
    """The plan holds one entry per spec, sorted by resized area, largest first."""
    planned = plan(w, h, chosen)
    assert sorted(map(id, (p.spec for p in planned))) == sorted(map(id, chosen))
    areas = [p.scaled[0] * p.scaled[1] for p in planned]
    assert areas == sorted(areas, reverse=True)


def test_crop_origin_centres_on_the_focus_and_stays_inside() -> None:
    """The crop is centred on the focal point where the image allows, pushed inside at edges;
    without a focus it is the centre crop."""
    from imgpipe.core.geometry import crop_origin  # noqa: PLC0415

    assert crop_origin((400, 200), (100, 100)) == (150, 50)
    assert crop_origin((400, 200), (100, 100), (0.5, 0.5)) == (150, 50)
    assert crop_origin((400, 200), (100, 100), (0.25, 0.75)) == (50, 100)
    assert crop_origin((400, 200), (100, 100), (0.0, 0.0)) == (0, 0)
    assert crop_origin((400, 200), (100, 100), (1.0, 1.0)) == (300, 100)
    assert crop_origin((400, 200), (400, 100), (0.9, 0.1)) == (0, 0)
    assert crop_origin((400, 200), (100, 100), (-3.0, 7.0)) == (0, 100)  # clamped


def test_face_focus_is_the_centre_of_the_faces_that_matter() -> None:
    """One face: its centre. Two alike: the centre of the box around both. A bystander (under a
    quarter of the largest face's area) does not move the point; no faces, no point."""
    from imgpipe.core.geometry import face_focus  # noqa: PLC0415
    from imgpipe.model import FaceBox  # noqa: PLC0415

    subject = FaceBox(0.6, 0.2, 0.2, 0.4, 0.99)
    assert face_focus([subject], (1000, 500)) == (700, 200)
    friend = FaceBox(0.1, 0.4, 0.2, 0.3, 0.99)  # 0.06 of 0.08: counts
    assert face_focus([subject, friend], (1000, 500)) == (450, 225)
    bystander = FaceBox(0.0, 0.9, 0.05, 0.1, 0.99)  # 0.005: a face in the crowd
    assert face_focus([subject, bystander], (1000, 500)) == (700, 200)
    assert face_focus([], (1000, 500)) is None
    beyond = FaceBox(0.9, -0.2, 0.4, 0.4, 0.9)  # Rekognition's boxes may overhang the edges
    assert face_focus([beyond], (1000, 500)) == (950, 50)
