"""check_frames(): every animation frame is held to its canvas and the pixel cap before decoding."""

from __future__ import annotations

import pytest

import fixtures as F
from imgpipe.core.formats import SourceFormat, sniff
from imgpipe.core.frames import check_frames
from imgpipe.core.validation import inspect
from imgpipe.errors import TooManyFramesError, TooManyPixelsError
from imgpipe.settings import Limits

_SMALL = Limits(max_pixels=10_000)

# Each maker patches one frame of a 16x16 animation to declare (left, top, width, height).
_MAKERS = {
    "gif": F.gif_frame,
    "apng": F.apng_frame,
    "webp": F.webp_frame,
}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.animated_gif(4), id="gif"),
        pytest.param(F.apng(3), id="apng"),
        pytest.param(F.animated_webp(4), id="webp"),
        pytest.param(F.png(), id="still-png"),
        pytest.param(F.gif(), id="still-gif"),
        pytest.param(F.webp(), id="still-webp"),
    ],
)
def test_ordinary_animations_pass(data: bytes) -> None:
    """Generated animations and stills pass the walk and the whole header inspection."""
    check_frames(sniff(data), data, Limits())
    inspect(data, Limits())


@pytest.mark.parametrize("kind", sorted(_MAKERS))
@pytest.mark.parametrize("rect", [(8, 8, 8, 8), (0, 0, 16, 16), (0, 8, 16, 8), (14, 0, 2, 16)])
def test_frames_that_fit_the_canvas_pass(kind: str, rect: tuple[int, int, int, int]) -> None:
    """A frame that touches the canvas edges but stays inside it is not the walk's concern."""
    data = _MAKERS[kind](*rect)
    check_frames(sniff(data), data, Limits())


@pytest.mark.parametrize("kind", sorted(_MAKERS))
@pytest.mark.parametrize(
    "rect",
    [
        pytest.param((0, 0, 17, 16), id="wider"),
        pytest.param((0, 0, 16, 17), id="taller"),
        pytest.param((2, 0, 16, 16), id="shifted-right"),
        pytest.param((0, 2, 16, 16), id="shifted-down"),
        pytest.param((0, 0, 16_000, 16_000), id="huge"),
    ],
)
def test_a_frame_outside_its_canvas_is_refused(kind: str, rect: tuple[int, int, int, int]) -> None:
    """A frame that declares more than the 16x16 canvas is too_many_pixels, through inspect."""
    data = _MAKERS[kind](*rect)
    with pytest.raises(TooManyPixelsError, match=r"canvas|MP limit"):
        inspect(data, Limits())


@pytest.mark.parametrize("kind", sorted(_MAKERS))
def test_a_frame_over_the_pixel_cap_is_refused(kind: str) -> None:
    """A frame over max_pixels is refused even where the canvas check alone would not see it."""
    data = _MAKERS[kind](0, 0, 16, 16)
    fmt = sniff(data)
    check_frames(fmt, data, Limits(max_pixels=256))
    with pytest.raises(TooManyPixelsError, match="frame 1 declares 16x16"):
        check_frames(fmt, data, Limits(max_pixels=255))


def test_frames_past_max_frames_are_refused_from_descriptors() -> None:
    """Counting descriptors refuses an over-long animation without asking the decoder."""
    data = F.animated_gif(4, (8, 8))
    check_frames(SourceFormat.GIF, data, Limits(max_frames=4))
    with pytest.raises(TooManyFramesError):
        check_frames(SourceFormat.GIF, data, Limits(max_frames=3))


@pytest.mark.parametrize("kind", sorted(_MAKERS))
def test_truncated_containers_are_left_to_the_decoder(kind: str) -> None:
    """A walk over cut-short data never raises on its own: the decoder reports truncation."""
    data = _MAKERS[kind](0, 0, 16, 16)
    for cut in range(0, len(data), 7):
        check_frames(sniff(data) if cut >= 16 else SourceFormat.GIF, data[:cut], _SMALL)
