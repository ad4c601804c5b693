"""The imaging engine survives hostile error messages and knows when it is broken."""

from __future__ import annotations

import pytest

import fixtures as F
from conftest import Engine
from imgpipe.core.pipeline import process
from imgpipe.core.validation import inspect
from imgpipe.core.vips import VipsError, engine_ok, pyvips
from imgpipe.errors import CorruptError, InternalError
from imgpipe.settings import Limits, RenditionSpec, Settings

_SETTINGS = Settings(renditions=(RenditionSpec("thumb", 32, formats=("jpeg",)),))


def test_a_non_utf8_decoder_message_is_a_corrupt_rejection() -> None:
    """libheif's message quoting a mangled box name reads as text with a replacement mark."""
    with pytest.raises(CorruptError, match="could not parse item property 'p\ufffdxi'"):
        process(F.avif_poison(), _SETTINGS)


def test_a_poison_file_leaves_the_engine_working_for_every_later_image() -> None:
    """After the poison, good images of every format process, and bad ones still get a code."""
    for _ in range(3):
        with pytest.raises(CorruptError):
            process(F.avif_poison(), _SETTINGS)
    assert engine_ok()
    for data in (F.jpeg(), F.png(), F.webp(), F.avif(), F.gif()):
        assert process(data, _SETTINGS).renditions
    with pytest.raises(CorruptError):
        inspect(F.jpeg_garbage_after_header(), Limits())


def test_the_error_buffer_is_cleared_after_a_non_utf8_message() -> None:
    """The next libvips error after the poison carries its own message, not the poison's."""
    with pytest.raises(CorruptError):
        process(F.avif_poison(), _SETTINGS)
    with pytest.raises(VipsError) as later:
        pyvips.Image.new_from_buffer(F.jpeg()[:200], "", fail_on="error").avg()
    assert "item property" not in later.value.detail
    assert later.value.detail


def test_engine_ok_on_a_healthy_engine() -> None:
    """The self-check passes in a freshly configured process."""
    assert engine_ok()


def test_engine_ok_sees_a_broken_engine(engine: Engine) -> None:
    """With every loader blocked the self-check fails, and it passes again once repaired."""
    engine.break_()
    assert not engine_ok()
    engine.repair()
    assert engine_ok()


def test_a_broken_engine_never_rejects_a_good_image(engine: Engine) -> None:
    """A decode failure in a broken engine is internal (retried), not a permanent rejection."""
    engine.break_()
    with pytest.raises(InternalError, match="imaging engine is broken"):
        process(F.jpeg(), _SETTINGS)
