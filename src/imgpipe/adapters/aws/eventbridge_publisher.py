"""``EventPublisher`` on AWS: each image event to the stack's EventBridge bus.

The entry's ``Source`` is ``imgpipe``, its ``DetailType`` the event's type
(``image.processed`` ...) and its ``Detail`` the whole event (``imgpipe.image_events``), so a
rule can match on any field. Needs ``events:PutEvents`` on the bus.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from imgpipe.adapters.aws._errors import translated
from imgpipe.errors import InternalError
from imgpipe.image_events import SOURCE

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

__all__ = ["EventBridgePublisher"]


class EventBridgePublisher:
    """Puts image events on the bus ``bus`` (its name or ARN)."""

    def __init__(self, events_client: EventBridgeClient, bus: str) -> None:
        self._events, self.bus = events_client, bus

    def publish(self, event: Mapping[str, Any]) -> None:
        entry = {"Source": SOURCE, "DetailType": str(event["type"]), "EventBusName": self.bus,
                 "Detail": json.dumps(event, separators=(",", ":"))}  # fmt: skip
        with translated(f"EventBridge put {event['type']} on {self.bus}"):
            result = self._events.put_events(Entries=[entry])  # type: ignore[list-item]
        if result.get("FailedEntryCount"):
            failed = result["Entries"][0]
            raise InternalError(
                f"EventBridge refused {event['type']} on {self.bus}: "
                f"{failed.get('ErrorCode')} {failed.get('ErrorMessage', '')}".rstrip()
            )

    def stats(self) -> Mapping[str, float] | None:
        return None  # EventBridge delivers; its metrics are in CloudWatch
