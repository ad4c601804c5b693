"""The composition root: the only place that chooses adapters.

``build_local(data_dir)`` wires the embedded default - filesystem blobs, SQLite records, a SQLite
queue with SQS semantics, the local tagger and HMAC-signed upload forms - under one folder::

    DATA_DIR/
      blobs/raw/<id>                     the originals (private; never served)
      blobs/processed/<id>/<name>.<ext>  renditions
      imgpipe.db                         image records
      queue.db                           jobs and dead letters
      upload-secret                      HMAC key for upload forms (created once, mode 0600)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from imgpipe.adapters.local.fs_blob_store import FsBlobStore
from imgpipe.adapters.local.sqlite_metadata_store import SqliteMetadataStore
from imgpipe.adapters.local.sqlite_queue import SqliteQueue
from imgpipe.adapters.local.upload_signer import HmacUploadSigner
from imgpipe.core.tags import LocalTagger
from imgpipe.service import ImageService
from imgpipe.settings import Settings

__all__ = ["LOCAL_UPLOAD_PATH", "LocalApp", "build_local"]

LOCAL_UPLOAD_PATH = "/_uploads"


@dataclass
class LocalApp:
    """The service and the concrete adapters behind it (the server needs a few of them)."""

    service: ImageService
    blobs: FsBlobStore
    records: SqliteMetadataStore
    queue: SqliteQueue
    signer: HmacUploadSigner

    def close(self) -> None:
        self.records.close()
        self.queue.close()


def _secret(path: Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return path.read_bytes()


def build_local(data_dir: Path, settings: Settings, base_url: str = "") -> LocalApp:
    """Wire the embedded default under ``data_dir`` (created if needed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FsBlobStore(data_dir / "blobs")
    records = SqliteMetadataStore(data_dir / "imgpipe.db")
    queue = SqliteQueue(data_dir / "queue.db", visibility_s=settings.service.visibility_s,
                        max_receives=settings.service.max_receives)  # fmt: skip
    try:
        secret = _secret(data_dir / "upload-secret")
    except FileExistsError:  # another process created it a moment ago
        secret = (data_dir / "upload-secret").read_bytes()
    signer = HmacUploadSigner(secret, f"{base_url}{LOCAL_UPLOAD_PATH}")
    service = ImageService(blobs, records, queue, LocalTagger(), signer, settings)
    return LocalApp(service=service, blobs=blobs, records=records, queue=queue, signer=signer)
