"""process(): bytes in, metadata + renditions + tags out, or a typed rejection."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence

import pytest
from PIL import Image

import fixtures as F
from imgpipe.core.formats import SourceFormat, sniff
from imgpipe.core.pipeline import content_id, process
from imgpipe.core.tags import NullTagger
from imgpipe.errors import RejectedError, UnsupportedTypeError
from imgpipe.model import Tag
from imgpipe.ports import TagSubject
from imgpipe.settings import RenditionSpec, Settings

SETTINGS = Settings(
    renditions=(
        RenditionSpec("large", 2048, formats=("jpeg", "webp")),
        RenditionSpec("thumb", 20, formats=("jpeg", "webp")),
    )
)


class PreviewSizeTagger:
    """A tagger that labels what it was shown: the pixel size of the preview JPEG."""

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        preview = Image.open(io.BytesIO(subject.preview_jpeg))
        width, height = preview.size
        return [Tag(f"preview:{str(preview.format).lower()}:{width}x{height}", 1.0, "fake")]


def test_process_returns_metadata_renditions_and_tags() -> None:
    """A plain JPEG yields its record, one rendition per spec and format, and local tags."""
    processed = process(F.jpeg(), SETTINGS)
    assert processed.metadata["width"] == 60
    assert processed.metadata["height"] == 40
    assert [(r.name, r.format) for r in processed.renditions] == [
        ("large", "jpeg"),
        ("large", "webp"),
        ("thumb", "jpeg"),
        ("thumb", "webp"),
    ]
    assert [(r.width, r.height) for r in processed.renditions] == [(60, 40)] * 2 + [(20, 13)] * 2
    assert processed.tags
    assert {t.source for t in processed.tags} == {"local"}


def test_record_is_json_ready() -> None:
    """The metadata record survives a JSON round trip unchanged."""
    record = process(F.camera_jpeg(), SETTINGS).metadata
    assert json.loads(json.dumps(record)) == record


def test_record_describes_the_source_bytes() -> None:
    """sha256, byte size, format and MIME type describe the uploaded bytes themselves."""
    data = F.webp()
    record = process(data, SETTINGS).metadata
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["bytes"] == len(data)
    assert (record["format"], record["mime_type"]) == ("webp", "image/webp")


def test_content_id_is_stable_and_short() -> None:
    """The content id is the first 20 hex digits of the sha256: same bytes, same id."""
    sha = process(F.jpeg(), SETTINGS).metadata["sha256"]
    assert content_id(sha) == sha[:20]
    assert content_id(process(F.png(), SETTINGS).metadata["sha256"]) != content_id(sha)


def test_processing_is_deterministic() -> None:
    """The same bytes give the same record and byte-identical renditions."""
    first, second = process(F.camera_jpeg(), SETTINGS), process(F.camera_jpeg(), SETTINGS)
    assert first.metadata == second.metadata
    assert [r.data for r in first.renditions] == [r.data for r in second.renditions]
    assert first.tags == second.tags


@pytest.mark.parametrize("make", [F.animated_gif, F.animated_webp], ids=["gif", "webp"])
def test_animation_is_flagged_with_its_frame_count(make: Callable[..., bytes]) -> None:
    """An animated GIF or WebP is recorded as ``animated`` with its number of frames."""
    processed = process(make(4), SETTINGS)
    assert processed.metadata["animated"] is True
    assert processed.metadata["frames"] == 4
    assert "animated" in {t.name for t in processed.tags}


@pytest.mark.parametrize("make", [F.gif, F.webp, F.jpeg], ids=["gif", "webp", "jpeg"])
def test_still_image_is_not_animated(make: Callable[..., bytes]) -> None:
    """A single-frame image is not animated and has one frame."""
    record = process(make(), SETTINGS).metadata
    assert (record["animated"], record["frames"]) == (False, 1)


def test_rotated_source_records_display_and_stored_size() -> None:
    """width/height are what a viewer sees; stored_* are the pixel array in the file."""
    record = process(F.oriented(6), SETTINGS).metadata
    assert (record["width"], record["height"]) == (60, 40)
    assert (record["stored_width"], record["stored_height"]) == (40, 60)
    assert record["exif"]["orientation"] == 6
    assert "landscape" in {t.name for t in process(F.oriented(6), SETTINGS).tags}


def test_refused_type_never_reaches_a_decoder() -> None:
    """An SVG is refused by process() as unsupported_type."""
    with pytest.raises(UnsupportedTypeError):
        process(F.svg(), SETTINGS)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(F.truncated(F.noisy_jpeg()), id="truncated-jpeg"),
        pytest.param(F.truncated(F.noisy_png()), id="truncated-png"),
        pytest.param(F.jpeg_garbage_after_header(), id="garbage-jpeg"),
        pytest.param(F.png_bomb(), id="png-bomb"),
        pytest.param(b"", id="empty"),
    ],
)
def test_every_refusal_is_a_permanent_typed_rejection(data: bytes) -> None:
    """Bad input raises a RejectedError with a machine code, never an untyped exception."""
    with pytest.raises(RejectedError) as caught:
        process(data, SETTINGS)
    assert caught.value.permanent
    assert caught.value.to_dict()["code"] == caught.value.code


def test_tagger_sees_the_largest_jpeg_rendition_as_preview() -> None:
    """The tagger is shown the largest JPEG rendition (not a thumbnail, not the source)."""
    processed = process(F.jpeg(), SETTINGS, tagger=PreviewSizeTagger())
    assert [t.name for t in processed.tags] == ["preview:jpeg:60x40"]


def test_preview_falls_back_to_the_smallest_rendition_without_jpeg() -> None:
    """With no JPEG rendition the smallest rendition is the preview."""
    settings = Settings(
        renditions=(
            RenditionSpec("big", 60, formats=("png",)),
            RenditionSpec("small", 30, formats=("png",)),
        )
    )

    class FormatTagger:
        def tag(self, subject: TagSubject) -> Sequence[Tag]:
            preview = Image.open(io.BytesIO(subject.preview_jpeg))
            return [Tag(f"{preview.format}:{preview.size[0]}".lower(), 1.0, "fake")]

    processed = process(F.noisy_png((120, 80)), settings, tagger=FormatTagger())
    assert [t.name for t in processed.tags] == ["png:30"]


def test_tagger_receives_the_metadata_record() -> None:
    """The tagger sees the same record that process() returns."""

    class MakeTagger:
        def tag(self, subject: TagSubject) -> Sequence[Tag]:
            return [Tag(str(subject.metadata["exif"].get("make")).lower(), 1.0, "fake")]

    processed = process(F.camera_jpeg(), SETTINGS, tagger=MakeTagger())
    assert [t.name for t in processed.tags] == ["canon"]


def test_null_tagger_switches_tagging_off() -> None:
    """With the NullTagger an image gets renditions and metadata but no tags."""
    processed = process(F.jpeg(), SETTINGS, tagger=NullTagger())
    assert processed.tags == ()
    assert processed.renditions


def test_animated_avif_is_recognised_as_avif() -> None:
    """An AVIF image sequence (major brand ``avis``) passes the type check as AVIF."""
    assert sniff(F.animated_avif()) is SourceFormat.AVIF


def test_animated_avif_renders_its_first_frame() -> None:
    """A valid AVIF image sequence is processed like an animated GIF: first frame, still output."""
    processed = process(F.animated_avif(), SETTINGS)
    assert (processed.metadata["width"], processed.metadata["height"]) == (60, 40)
    first = Image.open(io.BytesIO(processed.renditions[0].data)).convert("RGB")
    pixel = first.getpixel((30, 20))
    assert isinstance(pixel, tuple)
    red, green, blue = pixel
    assert red > 200
    assert green < 60
    assert blue < 60
