"""Amazon Rekognition behind two ports: ``RekognitionTagger`` (``Tagger``, on ``DetectLabels``)
and ``RekognitionFaceFinder`` (``FaceFinder``, on ``DetectFaces``).

Rekognition sees the JPEG preview the pipeline makes (no metadata, <= 5 MB - its limit for
inline bytes). Labels at or above ``min_confidence`` (percent) become tags named by the label
in lower case, with ``source="rekognition"`` and the confidence scaled to [0, 1]; faces at or
above theirs become ``FaceBox``es, which place the focal point of cover crops. Each is one call
per processing of an image.

Failure policy, per the ports' contract: an image Rekognition cannot judge (bad format, too
large, invalid parameters) gets no tags / no faces and never fails; throttling is retried here
with exponential backoff and full jitter (``attempts`` calls in all - build the client with
botocore retries off so the two do not multiply), and a throttle or outage that outlasts them
raises ``InternalError``, so the job is retried later rather than the image going untagged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from imgpipe.adapters.aws._errors import THROTTLING_CODES, error_code, http_status
from imgpipe.errors import InternalError
from imgpipe.model import FaceBox, Tag
from imgpipe.ports import PREVIEW_MAX_BYTES, TagSubject

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_rekognition.type_defs import FaceDetailTypeDef, LabelTypeDef

__all__ = ["RekognitionFaceFinder", "RekognitionTagger"]

log = logging.getLogger("imgpipe.rekognition")

SOURCE = "rekognition"
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # the only formats it reads: JPEG, PNG
_UNJUDGEABLE = frozenset({"InvalidImageFormatException", "ImageTooLargeException",
                          "InvalidParameterException"})  # fmt: skip


class _Rekognition:
    """One Rekognition operation on an image's bytes, with the failure policy above."""

    operation = ""
    default_min_confidence = 80.0  # percent

    def __init__(
        self,
        rekognition_client: RekognitionClient,
        min_confidence: float | None = None,
        attempts: int = 3,
        backoff_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if min_confidence is None:
            min_confidence = self.default_min_confidence
        if not 0 <= min_confidence <= 100:
            raise ValueError(f"min_confidence is a percentage, not {min_confidence}")
        self._client = rekognition_client
        self.min_confidence = min_confidence
        self.attempts, self.backoff_s, self._sleep = max(attempts, 1), backoff_s, sleep

    def _call(self, call: Callable[..., Any], image: bytes, **params: Any) -> Any | None:
        """``call``'s response on ``image``; ``None`` for an image Rekognition cannot judge."""
        if not image.startswith(_IMAGE_MAGIC) or len(image) > PREVIEW_MAX_BYTES:
            log.info("rekognition skipped: preview is not a JPEG/PNG of at most 5 MB")
            return None
        attempt = 1
        while True:
            try:
                response = call(Image={"Bytes": image}, **params)
            except ClientError as exc:
                code = error_code(exc)
                if code in _UNJUDGEABLE:
                    log.info("rekognition cannot judge this image: %s", code)
                    return None
                transient = code in THROTTLING_CODES or http_status(exc) >= 500
                if not transient or attempt >= self.attempts:
                    raise InternalError(f"Rekognition {self.operation} failed: {code}") from exc
                # Full jitter: a uniform wait up to the exponential step, so that throttled
                # workers spread out instead of retrying in lockstep.
                step = self.backoff_s * 2 ** (attempt - 1)
                self._sleep(random.uniform(0, step))  # noqa: S311 - jitter, not secrecy
                attempt += 1
            except BotoCoreError as exc:
                raise InternalError(f"Rekognition {self.operation} failed: {exc}") from exc
            else:
                return response


class RekognitionTagger(_Rekognition):
    """Labels from ``DetectLabels`` (needs ``rekognition:DetectLabels``; no S3 access)."""

    operation = "DetectLabels"

    def __init__(
        self,
        rekognition_client: RekognitionClient,
        min_confidence: float | None = None,
        max_labels: int = 20,
        attempts: int = 3,
        backoff_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rekognition_client, min_confidence, attempts, backoff_s, sleep)
        self.max_labels = max_labels

    def tag(self, subject: TagSubject) -> Sequence[Tag]:
        response = self._call(self._client.detect_labels, subject.preview_jpeg,
                              MaxLabels=self.max_labels,
                              MinConfidence=self.min_confidence)  # fmt: skip
        return [] if response is None else _tags(response.get("Labels", []), self.min_confidence)


class RekognitionFaceFinder(_Rekognition):
    """Faces from ``DetectFaces`` (needs ``rekognition:DetectFaces``; no S3 access). Faces under
    ``min_confidence`` percent are dropped: a face that is not one must not steer a crop."""

    operation = "DetectFaces"
    default_min_confidence = 90.0

    def find_faces(self, preview_jpeg: bytes) -> Sequence[FaceBox]:
        response = self._call(self._client.detect_faces, preview_jpeg, Attributes=["DEFAULT"])
        if response is None:
            return []
        return _faces(response.get("FaceDetails", []), self.min_confidence)


def _faces(details: Sequence[FaceDetailTypeDef], min_confidence: float) -> list[FaceBox]:
    faces = []
    for detail in details:
        box, confidence = detail.get("BoundingBox", {}), float(detail.get("Confidence", 0.0))
        width, height = float(box.get("Width", 0.0)), float(box.get("Height", 0.0))
        if confidence >= min_confidence and width > 0 and height > 0:
            faces.append(FaceBox(float(box.get("Left", 0.0)), float(box.get("Top", 0.0)),
                                 width, height, min(confidence / 100, 1.0)))  # fmt: skip
    return faces


def _tags(labels: Sequence[LabelTypeDef], min_confidence: float) -> list[Tag]:
    """Labels at or above ``min_confidence`` as tags, the first of each name only."""
    tags: dict[str, Tag] = {}
    for label in labels:
        name = str(label.get("Name", "")).strip().lower()
        confidence = float(label.get("Confidence", 0.0))
        if name and confidence >= min_confidence and name not in tags:
            tags[name] = Tag(name, min(confidence / 100, 1.0), SOURCE)
    return list(tags.values())
