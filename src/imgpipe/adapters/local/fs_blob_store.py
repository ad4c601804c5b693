"""``BlobStore`` on the local filesystem, laid out like the S3 buckets.

Key ``raw/<id>`` is the file ``root/raw/<id>`` and ``processed/<id>/<file>`` is
``root/processed/<id>/<file>``, so the tree can be browsed, served or synced to S3 as it is.

Content type, size, etag and user metadata live in a sidecar ``<file>.meta.json`` - not in an
extended attribute, which tmpfs, network mounts and many copy tools drop. The sidecar cannot lie
about the bytes: ``put`` writes data and sidecar to temp files, renames the data into place (the
commit point), then the sidecar, which records the size and mtime of the data it describes.
``head`` believes a sidecar only while that data is in place (or, after a copy that lost mtimes,
while its etag still matches the bytes). So a crash or a racing writer between the two renames
leaves data that ``head`` describes from the bytes alone, never with another write's metadata,
and a sidecar without data is invisible. Temp files and sidecars are not valid keys, so ``list``
drops them with ``check_key``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from imgpipe.errors import InternalError, NotFoundError, TooLargeBytesError
from imgpipe.keys import PROCESSED_PREFIX, RAW_PREFIX, check_key, is_key

__all__ = ["FsBlobStore"]

_CHUNK = 1024 * 1024
_SIDECAR = ".meta.json"
_TEMP_PREFIX = ".tmp-"
_LIVE_TEMP_S = 300.0  # a temp file older than this belongs to a write that was killed
_UNKNOWN_TYPE = "application/octet-stream"
_T = TypeVar("_T")
_md5 = partial(hashlib.md5, usedforsecurity=False)  # the S3 etag, not a security measure


class FsBlobStore:
    """Objects as files under ``root`` (POSIX filesystems: directories are fsynced)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for prefix in (RAW_PREFIX, PROCESSED_PREFIX):
            (self.root / prefix).mkdir(parents=True, exist_ok=True)
        _fsync_dir(self.root)

    def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        self._write(key, [data], content_type, metadata, max_bytes=None)

    def put_stream(
        self,
        key: str,
        stream: IO[bytes],
        content_type: str,
        metadata: Mapping[str, str] | None,
        max_bytes: int,
    ) -> int:
        """Copy ``stream`` to ``key`` in 1 MiB chunks and return its size.

        More than ``max_bytes`` raises ``TooLargeBytesError`` and leaves nothing behind: an
        object already stored under ``key`` stays as it was.
        """
        chunks = iter(partial(stream.read, _CHUNK), b"")
        return self._write(key, chunks, content_type, metadata, max_bytes)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        with _os_errors("read", key):
            try:
                return path.read_bytes()
            except FileNotFoundError as exc:
                raise NotFoundError(f"no object {key}") from exc

    def head(self, key: str) -> Mapping[str, str] | None:
        path = self._path(key)
        with _os_errors("describe", key):
            try:
                stat = path.stat()
                info = _read_sidecar(_sidecar(path))
                if info is not None and info["file"] == _identity(stat):
                    return _described(info)
                with path.open("rb") as f:
                    etag = hashlib.file_digest(f, _md5).hexdigest()
            except FileNotFoundError:
                return None
        if info is not None and info["etag"] == etag:  # same bytes, copied without their mtime
            return _described(info)
        return {"content_type": _UNKNOWN_TYPE, "size": str(stat.st_size), "etag": etag}

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _os_errors("delete", key):
            # Data first: a crash in between leaves a sidecar without data, which is invisible.
            path.unlink(missing_ok=True)
            _sidecar(path).unlink(missing_ok=True)
            folder = path.parent
            if key.startswith(PROCESSED_PREFIX):
                _remove_temp_files(folder, time.time() - _LIVE_TEMP_S)
                with suppress(OSError):  # not empty: other renditions, or a put in progress
                    folder.rmdir()
            _fsync_dir(folder if folder.exists() else folder.parent)

    def sweep_temp_files(self, older_than_s: float = 0.0) -> int:
        """Remove temp files that writes killed mid-way left behind (and rendition folders they
        alone kept); return how many. At start-up nothing is in flight: ``older_than_s=0``."""
        removed, cutoff = 0, time.time() - older_than_s
        for folder, _, _ in os.walk(self.root, topdown=False):
            removed += _remove_temp_files(Path(folder), cutoff)
            if Path(folder).parent.name == PROCESSED_PREFIX.rstrip("/"):
                with suppress(OSError):
                    Path(folder).rmdir()
        return removed

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root.joinpath(*prefix.split("/")[:-1]).resolve()
        if not base.is_relative_to(self.root):
            return iter(())
        keys: list[str] = []
        for folder, _, files in os.walk(base):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                key = f"{rel}/{name}"
                if key.startswith(prefix) and is_key(key):
                    keys.append(key)
        return iter(sorted(keys))

    def download_url(self, key: str, filename: str, expires_s: int) -> str | None:
        """None: files are served by the API itself."""
        return None

    def path_for(self, key: str) -> Path:
        """The file holding ``key``'s bytes, for serving; ``NotFoundError`` when missing."""
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"no object {key}")
        return path

    def _path(self, key: str) -> Path:
        check_key(key)
        # Defence in depth: the key pattern already excludes "..", but a symlink planted inside
        # the tree must not lead a write or a read outside it either.
        path = self.root.joinpath(*key.split("/")).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key leads outside the store: {key[:80]!r}")
        return path

    def _write(
        self,
        key: str,
        chunks: Iterable[bytes],
        content_type: str,
        metadata: Mapping[str, str] | None,
        max_bytes: int | None,
    ) -> int:
        path = self._path(key)
        folder = path.parent
        temps: list[Path] = []
        with _os_errors("write", key):
            created = not folder.is_dir()
            if created:
                folder.mkdir(exist_ok=True)
                _fsync_dir(folder.parent)
            try:
                data_tmp, (size, etag) = _temp_file(folder, partial(_copy, chunks, max_bytes))
                temps.append(data_tmp)
                info = {
                    "content_type": content_type,
                    "size": size,
                    "etag": etag,
                    "metadata": dict(metadata or {}),
                    "file": _identity(data_tmp.stat()),
                }
                meta_tmp, _ = _temp_file(folder, lambda f: f.write(json.dumps(info).encode()))
                temps.append(meta_tmp)
                os.replace(data_tmp, path)  # the commit point; a rename keeps size and mtime
                os.replace(meta_tmp, _sidecar(path))
                _fsync_dir(folder)
            except BaseException:
                for temp in temps:
                    temp.unlink(missing_ok=True)
                if created:
                    with suppress(OSError):
                        folder.rmdir()
                raise
        return size


def _remove_temp_files(folder: Path, cutoff: float) -> int:
    removed = 0
    with suppress(OSError):
        for entry in folder.iterdir():
            if entry.name.startswith(_TEMP_PREFIX) and entry.stat().st_mtime <= cutoff:
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def _temp_file(folder: Path, write: Callable[[IO[bytes]], _T]) -> tuple[Path, _T]:
    """Write a durable temp file in ``folder``; nothing is left behind when ``write`` fails."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=_TEMP_PREFIX, delete=False) as f:
        try:
            result = write(f)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()
            Path(f.name).unlink(missing_ok=True)
            raise
    return Path(f.name), result


def _copy(chunks: Iterable[bytes], max_bytes: int | None, out: IO[bytes]) -> tuple[int, str]:
    digest, size = _md5(), 0
    for chunk in chunks:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise TooLargeBytesError(f"the upload is larger than {max_bytes:,} bytes")
        digest.update(chunk)
        out.write(chunk)
    return size, digest.hexdigest()


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns]  # a list, as it comes back from JSON


def _described(info: dict[str, Any]) -> dict[str, str]:
    fixed = {"content_type": info["content_type"], "size": str(info["size"]), "etag": info["etag"]}
    return {**info["metadata"], **fixed}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR)


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return info


def _fsync_dir(folder: Path) -> None:
    """Make renames and unlinks in ``folder`` durable (they live in the directory entry)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _os_errors(action: str, key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise InternalError(f"blob store cannot {action} {key}: {exc.strerror or exc}") from exc
