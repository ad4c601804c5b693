"""Service-layer fixtures: an ``ImageService`` over the in-memory fakes, and a hand-run worker.

Time in the queue and the upload signer is a ``ManualClock``; renditions are small presets so
that a whole upload-process-query cycle takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from imgpipe.adapters.local.upload_signer import HmacUploadSigner
from imgpipe.model import ImageRecord
from imgpipe.ports import Tagger
from imgpipe.service import ImageService
from imgpipe.settings import RenditionSpec, Settings
from imgpipe.testing import (
    FixedTagger,
    InMemoryBlobStore,
    InMemoryMetadataStore,
    InMemoryQueue,
    ManualClock,
)

SECRET = b"k" * 32
UPLOAD_URL = "http://test/_uploads"
VISIBILITY_S = 30.0
PRESETS = (
    RenditionSpec("thumb", 32, formats=("jpeg", "webp")),
    RenditionSpec("small", 48, formats=("jpeg",)),
)


@dataclass
class Pipeline:
    """One service and the fakes behind it, so tests can act and then inspect the state."""

    service: ImageService
    blobs: InMemoryBlobStore
    records: InMemoryMetadataStore
    queue: InMemoryQueue
    clock: ManualClock
    signer: HmacUploadSigner

    def run_worker(self) -> list[ImageRecord]:
        """Receive every visible job, process it and delete it, as a healthy worker does."""
        done: list[ImageRecord] = []
        while messages := self.queue.receive(max_messages=10):
            for message in messages:
                done.extend(self.service.handle_event(message.body))
                self.queue.delete(message.receipt)
        return done

    def redeployed(self, settings: Settings) -> Pipeline:
        """The same stores and queue behind a new service with other settings (a redeploy)."""
        s = self.service
        service = ImageService(s.blobs, s.records, s.queue, s.tagger, s.signer, settings)
        return replace(self, service=service)

    def blob_keys(self, prefix: str = "") -> list[str]:
        return list(self.blobs.list(prefix))


MakePipeline = Callable[..., Pipeline]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(renditions=PRESETS)


@pytest.fixture
def make_pipeline(clock: ManualClock, settings: Settings) -> MakePipeline:
    """Build a pipeline; ``max_receives``, ``tagger`` and ``settings`` may be overridden."""

    def make(
        *, max_receives: int = 5, tagger: Tagger | None = None, settings: Settings = settings
    ) -> Pipeline:
        blobs, records = InMemoryBlobStore(), InMemoryMetadataStore()
        queue = InMemoryQueue(VISIBILITY_S, max_receives, clock)
        signer = HmacUploadSigner(SECRET, UPLOAD_URL, clock=clock)
        service = ImageService(blobs, records, queue, tagger or FixedTagger(), signer, settings)
        return Pipeline(service, blobs, records, queue, clock, signer)

    return make


@pytest.fixture
def pipeline(make_pipeline: MakePipeline) -> Pipeline:
    return make_pipeline()
