"""The Rekognition tagger's and face finder's plumbing and failure policy (moto answers
DetectLabels with a fixed "Mobile Phone" label, and DetectFaces - taught by moto_iam_server -
with one fixed face; errors come from a fault-injecting proxy on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import pytest

import aws_support
import fixtures as F
import moto_iam_server
from imgpipe.adapters.aws.rekognition_tagger import RekognitionFaceFinder, RekognitionTagger
from imgpipe.core.tags import CompositeTagger
from imgpipe.errors import InternalError
from imgpipe.model import FaceBox, Tag
from imgpipe.ports import TagSubject

pytestmark = pytest.mark.aws

SUBJECT = TagSubject(metadata={"width": 64, "height": 48}, preview_jpeg=F.jpeg((64, 48)))


@pytest.fixture
def faults() -> Iterator[aws_support.FaultInjector]:
    with aws_support.FaultInjector() as injector:
        yield injector


def _tagger(
    url: str | None = None, min_confidence: float | None = None
) -> tuple[RekognitionTagger, list[float]]:
    """A tagger whose client does not retry (the tagger does) and whose sleeps are recorded."""
    return _adapter(RekognitionTagger, url, min_confidence)


_A = TypeVar("_A", RekognitionTagger, RekognitionFaceFinder)


def _adapter(
    kind: type[_A], url: str | None, min_confidence: float | None
) -> tuple[_A, list[float]]:
    slept: list[float] = []
    client = aws_support.client("rekognition", url=url, retries={"total_max_attempts": 1})
    return kind(client, min_confidence, sleep=slept.append), slept


def test_labels_become_lower_case_tags_with_confidence_in_0_1() -> None:
    """DetectLabels' labels come back named in lower case, source rekognition, confidence/100."""
    tagger, _ = _tagger()
    tags = tagger.tag(SUBJECT)
    assert [(t.name, t.source) for t in tags] == [("mobile phone", "rekognition")]
    assert tags[0].confidence == pytest.approx(0.999364, abs=1e-6)


def test_labels_below_min_confidence_are_dropped() -> None:
    """A label under min_confidence is dropped, even when the service returns it."""
    tagger, _ = _tagger(min_confidence=99.99)
    assert tagger.tag(SUBJECT) == []


@pytest.mark.parametrize(
    "preview",
    [b"", F.webp((64, 48)), b"GIF89a not a jpeg", b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)],
    ids=["empty", "webp", "gif", "over-5-MB"],
)
def test_images_rekognition_cannot_read_are_not_sent(
    faults: aws_support.FaultInjector, preview: bytes
) -> None:
    """A preview that is not a JPEG/PNG of at most 5 MB gets no tags and costs no call."""
    tagger, _ = _tagger(faults.url)
    assert tagger.tag(TagSubject(metadata={}, preview_jpeg=preview)) == []
    assert faults.calls == 0


@pytest.mark.parametrize(
    "code", ["InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"]
)
def test_an_image_rekognition_cannot_judge_gets_no_tags(
    faults: aws_support.FaultInjector, code: str
) -> None:
    """A bad-image error means no tags - never a failed image, never a retry."""
    tagger, slept = _tagger(faults.url)
    faults.fail(code)
    assert tagger.tag(SUBJECT) == []
    assert (faults.calls, slept) == (1, [])


@pytest.mark.parametrize(
    "code",
    ["ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException"],
)
def test_throttling_is_retried_with_growing_jittered_waits(
    faults: aws_support.FaultInjector, code: str
) -> None:
    """Two throttles then success: three calls, waits within 0.2 s then 0.4 s, and the tags."""
    tagger, slept = _tagger(faults.url)
    faults.fail(code, times=2)
    assert [t.name for t in tagger.tag(SUBJECT)] == ["mobile phone"]
    assert faults.calls == 3
    assert len(slept) == 2
    assert 0 <= slept[0] <= 0.2
    assert 0 <= slept[1] <= 0.4


def test_throttling_past_the_last_attempt_raises_internal_error(
    faults: aws_support.FaultInjector,
) -> None:
    """Still throttled after three calls: InternalError, so the job is retried later."""
    tagger, slept = _tagger(faults.url)
    faults.fail("ThrottlingException", times=3)
    with pytest.raises(InternalError, match="ThrottlingException"):
        tagger.tag(SUBJECT)
    assert (faults.calls, len(slept)) == (3, 2)


def test_an_outage_is_retried_then_raised(faults: aws_support.FaultInjector) -> None:
    """A 5xx is transient too: retried, and InternalError once the attempts are spent."""
    tagger, _ = _tagger(faults.url)
    faults.fail("InternalServerError", status=500, times=3)
    with pytest.raises(InternalError, match="InternalServerError"):
        tagger.tag(SUBJECT)
    assert faults.calls == 3


def test_access_denied_fails_at_once(faults: aws_support.FaultInjector) -> None:
    """An error retrying cannot fix (a missing permission) raises after one call."""
    tagger, slept = _tagger(faults.url)
    faults.fail("AccessDeniedException")
    with pytest.raises(InternalError, match="AccessDenied"):
        tagger.tag(SUBJECT)
    assert (faults.calls, slept) == (1, [])


def test_min_confidence_must_be_a_percentage() -> None:
    """A min_confidence outside 0..100 is refused when the tagger is made."""
    client = aws_support.client("rekognition")
    with pytest.raises(ValueError):
        RekognitionTagger(client, min_confidence=101)


class _Fixed:
    def __init__(self, *names: str) -> None:
        self.names = names

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        return [Tag(n, 1.0, "fixed") for n in self.names]


def test_composite_tagger_returns_every_taggers_tags_in_order() -> None:
    """Local and Rekognition tags side by side, first tagger first."""
    tagger, _ = _tagger()
    composite = CompositeTagger(_Fixed("landscape", "dark"), tagger)
    assert [(t.name, t.source) for t in composite.tag(SUBJECT)] == [
        ("landscape", "fixed"),
        ("dark", "fixed"),
        ("mobile phone", "rekognition"),
    ]


def test_composite_tagger_propagates_an_outage(faults: aws_support.FaultInjector) -> None:
    """When one tagger raises, the composite raises: the image is retried, not half-tagged."""
    tagger, _ = _tagger(faults.url)
    faults.fail("ThrottlingException", times=3)
    with pytest.raises(InternalError):
        CompositeTagger(_Fixed("landscape"), tagger).tag(SUBJECT)


# --- faces ---------------------------------------------------------------------------------------


def _finder(
    url: str | None = None, min_confidence: float | None = None
) -> tuple[RekognitionFaceFinder, list[float]]:
    return _adapter(RekognitionFaceFinder, url, min_confidence)


def test_faces_come_back_as_boxes_in_fractions_with_confidence_in_0_1() -> None:
    """DetectFaces' bounding boxes become FaceBoxes as they are (fractions of the image)."""
    finder, _ = _finder()
    box = moto_iam_server.FACE
    (face,) = finder.find_faces(SUBJECT.preview_jpeg)
    assert face == FaceBox(box["Left"], box["Top"], box["Width"], box["Height"], face.confidence)
    assert face.confidence == pytest.approx(0.9999)


def test_faces_below_min_confidence_are_dropped() -> None:
    """A face Rekognition is unsure of does not steer crops."""
    finder, _ = _finder(min_confidence=100.0)
    assert finder.find_faces(SUBJECT.preview_jpeg) == []


def test_the_face_finder_shares_the_failure_policy(faults: aws_support.FaultInjector) -> None:
    """A throttle is retried with a jittered wait; a bad image means no faces, no retry; an
    outage past the last attempt raises InternalError naming DetectFaces; nothing readable,
    no call."""
    finder, slept = _finder(faults.url)
    faults.fail("ThrottlingException")
    assert len(finder.find_faces(SUBJECT.preview_jpeg)) == 1
    assert (faults.calls, len(slept)) == (2, 1)
    faults.fail("InvalidImageFormatException")
    assert finder.find_faces(SUBJECT.preview_jpeg) == []
    assert faults.calls == 3
    faults.fail("InternalServerError", status=500, times=3)
    with pytest.raises(InternalError, match="DetectFaces failed: InternalServerError"):
        finder.find_faces(SUBJECT.preview_jpeg)
    assert finder.find_faces(F.webp((64, 48))) == []
    assert faults.calls == 6
