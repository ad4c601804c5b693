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
from imgpipe.core.pipeline import Processed, content_id, process
from imgpipe.core.tags import NullTagger
from imgpipe.errors import RejectedError, UnsupportedTypeError
from imgpipe.model import FaceBox, Tag
from imgpipe.ports import TagSubject
from imgpipe.settings import RenditionSpec, Settings
from imgpipe.testing import FixedFaces

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


def test_preview_without_a_jpeg_rendition_is_a_jpeg_of_the_smallest() -> None:
    """With no JPEG rendition the preview is a JPEG (what Rekognition reads) of the smallest
    rendition."""
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
    assert [t.name for t in processed.tags] == ["jpeg:30"]


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


# --- faces place the focal point -----------------------------------------------------------------

# The salient() disc sits top right (1300, 220 of 1600 x 900); the face, bottom left.
FACE = FaceBox(left=0.1, top=0.55, width=0.1, height=0.2, confidence=0.99)
FACE_CENTRE = (240, 585)
AVATARS = Settings(
    renditions=(
        RenditionSpec("medium", 800, formats=("jpeg",)),
        RenditionSpec("avatar", 256, 256, fit="cover", formats=("png",)),
    )
)


class PreviewKeepingTagger:
    def __init__(self) -> None:
        self.previews: list[bytes] = []

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        self.previews.append(subject.preview_jpeg)
        return []


def _avatar(processed: Processed) -> bytes:
    return next(r.data for r in processed.renditions if r.name == "avatar")


def test_faces_place_the_focal_point_before_attention() -> None:
    """With a face found, the point is the face's centre, not the disc attention would choose,
    and the cover crop shows the face's side of the picture (no disc in it)."""
    processed = process(F.salient(), AVATARS, NullTagger(), faces=FixedFaces([FACE]))
    assert processed.metadata["focal_point"] == {"x": 240, "y": 585, "source": "faces"}
    assert processed.metadata["faces"] == [
        {"x": 160, "y": 495, "width": 160, "height": 180, "confidence": 0.99}
    ]
    assert F.yellow_fraction(_avatar(processed)) == 0.0
    without = process(F.salient(), AVATARS, NullTagger())
    assert without.metadata["focal_point"]["source"] == "attention"
    assert "faces" not in without.metadata
    assert F.yellow_fraction(_avatar(without)) > 0.01  # the whole disc: ~0.019


def test_faces_are_looked_for_once_on_the_preview_the_tagger_sees() -> None:
    """One look per image, on the very JPEG the tagger is shown: the largest uncropped JPEG."""
    finder, tagger = FixedFaces([FACE]), PreviewKeepingTagger()
    process(F.salient(), AVATARS, tagger, faces=finder)
    assert len(finder.previews) == 1
    assert finder.previews == tagger.previews
    assert Image.open(io.BytesIO(finder.previews[0])).size == (800, 450)


def test_the_preview_is_never_a_crop() -> None:
    """When the largest rendition is a cover crop, the finder sees the whole picture (its own
    JPEG of the image before the crop): face boxes are fractions of the display size."""
    settings = Settings(renditions=(RenditionSpec("social", 1200, 630, fit="cover",
                                                  formats=("jpeg",)),))  # fmt: skip
    finder = FixedFaces([FACE])
    processed = process(F.salient(), settings, NullTagger(), faces=finder)
    preview = Image.open(io.BytesIO(finder.previews[0]))
    assert (preview.format, preview.size) == ("JPEG", (1200, 675))
    assert processed.metadata["focal_point"]["source"] == "faces"


def test_no_face_found_leaves_it_to_attention() -> None:
    """A finder that finds nobody: attention's point, and the record says no faces."""
    processed = process(F.salient(), AVATARS, NullTagger(), faces=FixedFaces())
    assert processed.metadata["focal_point"]["source"] == "attention"
    assert processed.metadata["faces"] == []


def test_a_users_point_beats_the_faces_which_are_still_recorded() -> None:
    """The user knows best: their point is kept; the faces found are recorded beside it."""
    processed = process(F.salient(), AVATARS, NullTagger(), focal_point=(1300, 220),
                        faces=FixedFaces([FACE]))  # fmt: skip
    assert processed.metadata["focal_point"] == {"x": 1300, "y": 220, "source": "user"}
    assert len(processed.metadata["faces"]) == 1
    assert F.yellow_fraction(_avatar(processed)) > 0.01
