"""Housekeeping: what the service does on its own - recover after a crash, expire unused upload
grants, and turn dead-lettered jobs into ``failed`` images."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from imgpipe.errors import ImgpipeError
from imgpipe.events import generation_of
from imgpipe.keys import RAW_PREFIX, id_from_key
from imgpipe.model import TERMINAL, utc_iso
from imgpipe.service._base import ServiceBase, raw_keys

__all__ = ["Housekeeping"]


class Housekeeping(ServiceBase):
    def reconcile(self, older_than_s: float = 60.0, orphans_only: bool = False) -> int:
        """Re-announce raw objects whose record is missing or not terminal; expire stale grants.

        Covers a crash between storing an upload and enqueuing its event. At start-up (nothing
        in flight from this process) every unfinished image is re-announced, for its current
        generation; a periodic pass sets ``orphans_only`` and re-announces only objects with no
        record at all - a pending image may still have a job retrying, and one job is enough.
        Returns the number re-announced.
        """
        cutoff = utc_iso(datetime.now(UTC) - timedelta(seconds=older_than_s))
        announced = 0
        for key in list(self.blobs.list(RAW_PREFIX)):
            record = self.records.get(id_from_key(key))
            stale = not orphans_only and record is not None and record.created_at < cutoff
            if record is None or (stale and record.status not in TERMINAL):
                self.object_created(key, record.generation if record is not None else 0)
                announced += 1
        self._expire_unused_grants()
        return announced

    def _expire_unused_grants(self) -> None:
        expiry = timedelta(seconds=self.settings.service.upload_expiry_s + 60)
        cutoff = utc_iso(datetime.now(UTC) - expiry)
        cursor = None
        while True:
            page = self.records.list(status="pending", limit=100, cursor=cursor)
            for record in page.items:
                if record.created_at < cutoff and self.blobs.head(record.raw_key) is None:
                    self.records.delete(record.id)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def sweep_dead_letters(self) -> int:
        """Mark the images of dead-lettered jobs ``failed``; returns how many messages it read.

        The messages stay in the dead-letter list for an operator; marking is idempotent and
        only ever fails the attempt a job was sent for, so sweeping again changes nothing and
        an image reprocessed since is left alone."""
        dead = self.queue.dead_letters()
        for message in dead:
            self.fail_dead_letter(message.body)
        return len(dead)

    def fail_dead_letter(self, body: Mapping[str, Any]) -> dict[str, bool]:
        """Mark the images named by one dead-lettered job ``failed``: image id -> whether it was
        (``False``: already terminal, deleted, or reprocessed since). Empty when the body is not
        a notification of raw objects."""
        generation = generation_of(body)
        error = ImgpipeError(f"processing failed {self.queue.max_receives} times; the job went "
                             "to the dead-letter queue")  # fmt: skip
        return {image_id: self.mark_failed(image_id, error, generation)
                for image_id in (id_from_key(key) for key in raw_keys(body))}  # fmt: skip
