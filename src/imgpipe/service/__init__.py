"""The use cases over the ports, one module per role - read them in this order:

- ``ingest``: an image enters (direct upload; a granted upload form and its claim);
- ``processing``: a raw object becomes renditions, metadata and tags, or a rejection;
- ``queries``: list, get, deliver a rendition; delete and reprocess;
- ``housekeeping``: crash recovery, expired grants, dead-lettered jobs.

Every face calls ``ImageService`` - the local HTTP server and its workers, the Lambda handlers,
the CLI - and nothing here knows which adapters it runs on (``imgpipe.bootstrap`` wires them).
"""

from __future__ import annotations

from imgpipe.service._base import now_iso
from imgpipe.service.housekeeping import Housekeeping
from imgpipe.service.ingest import Ingest, UploadTicket
from imgpipe.service.processing import Processing
from imgpipe.service.queries import Delivery, Queries

__all__ = ["Delivery", "ImageService", "UploadTicket", "now_iso"]


class ImageService(Ingest, Processing, Queries, Housekeeping):
    """Every use case, over one set of adapters (see the role modules for each)."""
