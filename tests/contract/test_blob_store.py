"""The ``BlobStore`` contract, run against every adapter; then the local adapter's own promises."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import aws_support
from imgpipe.adapters.local.fs_blob_store import FsBlobStore
from imgpipe.errors import NotFoundError, TooLargeBytesError
from imgpipe.ports import BlobStore
from imgpipe.testing import InMemoryBlobStore

# One line per adapter.
_BACKENDS: dict[str, Callable[[Path], BlobStore]] = {
    "memory": lambda _: InMemoryBlobStore(),
    "local": lambda tmp: FsBlobStore(tmp / "blobs"),
    "aws": lambda _: aws_support.s3_blob_store(),  # two fresh buckets on the moto server
}

ID_A, ID_B = "0" * 27 + "a", "0" * 27 + "b"
RAW_A, RAW_B = f"raw/{ID_A}", f"raw/{ID_B}"
THUMB_A, LARGE_A = f"processed/{ID_A}/thumb.webp", f"processed/{ID_A}/large.jpg"
THUMB_B = f"processed/{ID_B}/thumb.webp"
BAD_KEYS = [
    "raw/../../etc/passwd",
    "raw/ABC",
    "/etc/passwd",
    f"/raw/{ID_A}",
    "",
    "raw/",
    f"raw/{ID_A}/x",
    f"processed/{ID_A}/../../../x.jpg",
    f"processed/{ID_A}/thumb.exe",
    f"processed/{ID_A}",
    f"raw/{ID_A}.meta.json",
]


@pytest.fixture(params=aws_support.backend_params(_BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return _BACKENDS[request.param](tmp_path)


@pytest.fixture
def fs(tmp_path: Path) -> FsBlobStore:
    return FsBlobStore(tmp_path / "blobs")


def test_put_then_get_returns_the_bytes(store: BlobStore) -> None:
    """What was put is what get returns."""
    store.put(RAW_A, b"\xff\xd8 some jpeg", "image/jpeg")
    assert store.get(RAW_A) == b"\xff\xd8 some jpeg"


def test_head_describes_the_object(store: BlobStore) -> None:
    """head gives content type, size, the S3-style md5 etag and the user metadata."""
    store.put(THUMB_A, b"webp bytes", "image/webp", {"filename": "cat.webp"})
    assert store.head(THUMB_A) == {
        "content_type": "image/webp",
        "size": "10",
        "etag": hashlib.md5(b"webp bytes").hexdigest(),
        "filename": "cat.webp",
    }


def test_empty_object_round_trips(store: BlobStore) -> None:
    """A zero-byte object is stored, read and described like any other."""
    store.put(RAW_A, b"", "application/octet-stream")
    assert store.get(RAW_A) == b""
    assert store.head(RAW_A) == {
        "content_type": "application/octet-stream",
        "size": "0",
        "etag": hashlib.md5(b"").hexdigest(),
    }


def test_put_overwrites_data_and_metadata(store: BlobStore) -> None:
    """A second put replaces the bytes, the content type and the whole user metadata."""
    store.put(RAW_A, b"old", "image/png", {"filename": "old.png", "extra": "x"})
    store.put(RAW_A, b"newer", "image/jpeg", {"filename": "new.jpg"})
    assert store.get(RAW_A) == b"newer"
    assert store.head(RAW_A) == {
        "content_type": "image/jpeg",
        "size": "5",
        "etag": hashlib.md5(b"newer").hexdigest(),
        "filename": "new.jpg",
    }


def test_get_missing_raises_not_found(store: BlobStore) -> None:
    """get of a key never put raises NotFoundError."""
    with pytest.raises(NotFoundError):
        store.get(RAW_A)


def test_head_missing_is_none(store: BlobStore) -> None:
    """head of a key never put is None."""
    assert store.head(RAW_A) is None


def test_delete_removes_the_object(store: BlobStore) -> None:
    """After delete the object is gone for get, head and list; its neighbours stay."""
    store.put(RAW_A, b"a", "image/jpeg")
    store.put(RAW_B, b"b", "image/jpeg")
    store.delete(RAW_A)
    with pytest.raises(NotFoundError):
        store.get(RAW_A)
    assert store.head(RAW_A) is None
    assert list(store.list("raw/")) == [RAW_B]


def test_delete_is_idempotent(store: BlobStore) -> None:
    """Deleting a missing key, or the same key twice, is a no-op."""
    store.delete(THUMB_A)
    store.put(THUMB_A, b"t", "image/webp")
    store.delete(THUMB_A)
    store.delete(THUMB_A)
    assert store.head(THUMB_A) is None


def test_list_is_sorted_and_limited_to_the_prefix(store: BlobStore) -> None:
    """list yields exactly the keys under the prefix, in key order."""
    for key in (THUMB_B, RAW_B, THUMB_A, RAW_A, LARGE_A):
        store.put(key, b"x", "image/jpeg")
    assert list(store.list("raw/")) == [RAW_A, RAW_B]
    assert list(store.list(f"processed/{ID_A}/")) == [LARGE_A, THUMB_A]
    assert list(store.list("processed/")) == [LARGE_A, THUMB_A, THUMB_B]
    assert list(store.list("")) == [LARGE_A, THUMB_A, THUMB_B, RAW_A, RAW_B]
    assert list(store.list(f"raw/{ID_B}")) == [RAW_B]


def test_list_of_an_empty_prefix_yields_nothing(store: BlobStore) -> None:
    """A prefix with no objects under it (or that no key could have) lists nothing."""
    store.put(RAW_A, b"x", "image/jpeg")
    assert list(store.list(f"processed/{ID_A}/")) == []
    assert list(store.list("../")) == []


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected(store: BlobStore, key: str) -> None:
    """Every operation on a key imgpipe could not have made raises ValueError."""
    with pytest.raises(ValueError):
        store.put(key, b"x", "image/jpeg")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        store.head(key)
    with pytest.raises(ValueError):
        store.delete(key)
    assert list(store.list("")) == []


# --- the local adapter's own promises ----------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_local_layout_mirrors_the_keys(fs: FsBlobStore) -> None:
    """Key raw/<id> is the file root/raw/<id>, and path_for points at it."""
    fs.put(RAW_A, b"raw bytes", "image/jpeg")
    fs.put(THUMB_A, b"thumb", "image/webp")
    assert (fs.root / "raw" / ID_A).read_bytes() == b"raw bytes"
    assert fs.path_for(THUMB_A) == fs.root / "processed" / ID_A / "thumb.webp"
    assert fs.path_for(THUMB_A).read_bytes() == b"thumb"


def test_local_path_for_missing_raises_not_found(fs: FsBlobStore) -> None:
    """path_for of a missing object raises NotFoundError rather than naming a ghost."""
    with pytest.raises(NotFoundError):
        fs.path_for(RAW_A)


def test_local_put_leaves_no_temp_files(fs: FsBlobStore) -> None:
    """After puts and an overwrite only data files and their sidecars remain."""
    fs.put(RAW_A, b"one", "image/jpeg")
    fs.put(RAW_A, b"two", "image/jpeg")
    fs.put(THUMB_A, b"t", "image/webp")
    assert _files(fs.root) == sorted([RAW_A, f"{RAW_A}.meta.json", THUMB_A, f"{THUMB_A}.meta.json"])


def test_local_list_ignores_stray_temp_files_and_sidecars(fs: FsBlobStore) -> None:
    """Leftovers of a crashed put (a temp file, a sidecar without data) are not objects."""
    fs.put(RAW_A, b"a", "image/jpeg")
    (fs.root / "raw" / ".tmp-crashed").write_bytes(b"half an upl")
    (fs.root / "raw" / f"{ID_B}.meta.json").write_text('{"content_type": "image/png"}')
    assert list(fs.list("")) == [RAW_A]
    assert fs.head(RAW_B) is None
    with pytest.raises(NotFoundError):
        fs.get(RAW_B)


def test_local_head_never_pairs_data_with_another_writes_metadata(fs: FsBlobStore) -> None:
    """A crash between the data and the sidecar rename leaves head describing the new bytes."""
    fs.put(RAW_A, b"old bytes", "image/png", {"filename": "old.png"})
    replacement = fs.root / "raw" / ".tmp-next"
    replacement.write_bytes(b"new bytes, longer")
    os.replace(replacement, fs.root / "raw" / ID_A)  # the data commit, without its sidecar
    assert fs.head(RAW_A) == {
        "content_type": "application/octet-stream",
        "size": "17",
        "etag": hashlib.md5(b"new bytes, longer").hexdigest(),
    }


def test_local_head_survives_a_copy_that_lost_mtimes(fs: FsBlobStore) -> None:
    """A tree copied without timestamps keeps its metadata: the sidecar's etag still matches."""
    fs.put(RAW_A, b"same bytes", "image/png", {"filename": "a.png"})
    os.utime(fs.root / "raw" / ID_A, ns=(1_000_000_000, 1_000_000_000))
    assert fs.head(RAW_A) == {
        "content_type": "image/png",
        "size": "10",
        "etag": hashlib.md5(b"same bytes").hexdigest(),
        "filename": "a.png",
    }


def test_local_delete_removes_sidecar_and_empty_folder(fs: FsBlobStore) -> None:
    """Deleting the last rendition of an image removes its sidecar and processed/<id>/."""
    fs.put(THUMB_A, b"t", "image/webp")
    fs.put(LARGE_A, b"l", "image/jpeg")
    fs.delete(THUMB_A)
    assert _files(fs.root / "processed") == [f"{ID_A}/large.jpg", f"{ID_A}/large.jpg.meta.json"]
    fs.delete(LARGE_A)
    assert not (fs.root / "processed" / ID_A).exists()


def test_local_symlink_out_of_the_tree_is_refused(fs: FsBlobStore, tmp_path: Path) -> None:
    """A valid key whose folder is a symlink leading outside the root raises ValueError."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (fs.root / "processed" / ID_A).symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        fs.put(THUMB_A, b"x", "image/webp")
    with pytest.raises(ValueError):
        fs.get(THUMB_A)
    assert list(outside.iterdir()) == []


def test_local_put_stream_copies_across_chunks(fs: FsBlobStore) -> None:
    """put_stream stores a multi-chunk stream whole and returns its size."""
    data = os.urandom(1024 * 1024 * 2 + 123)
    size = fs.put_stream(RAW_A, io.BytesIO(data), "image/jpeg", {"filename": "a.jpg"}, len(data))
    assert size == len(data)
    assert fs.get(RAW_A) == data
    head = fs.head(RAW_A)
    assert head is not None
    assert head["etag"] == hashlib.md5(data).hexdigest()
    assert head["filename"] == "a.jpg"


def test_local_put_stream_over_the_cap_leaves_nothing(fs: FsBlobStore) -> None:
    """More than max_bytes raises TooLargeBytesError and leaves no file behind."""
    data = b"x" * (1024 * 1024 + 1)
    with pytest.raises(TooLargeBytesError):
        fs.put_stream(THUMB_A, io.BytesIO(data), "image/webp", None, 1024 * 1024)
    assert _files(fs.root) == []
    assert fs.head(THUMB_A) is None


def test_local_put_stream_over_the_cap_keeps_the_old_object(fs: FsBlobStore) -> None:
    """A refused overwrite leaves the object already stored exactly as it was."""
    fs.put(RAW_A, b"original", "image/png")
    with pytest.raises(TooLargeBytesError):
        fs.put_stream(RAW_A, io.BytesIO(b"too long"), "image/jpeg", None, 3)
    assert fs.get(RAW_A) == b"original"
    assert fs.head(RAW_A) == {
        "content_type": "image/png",
        "size": "8",
        "etag": hashlib.md5(b"original").hexdigest(),
    }
    assert _files(fs.root) == [RAW_A, f"{RAW_A}.meta.json"]


def test_local_sweep_removes_temp_files_of_killed_writes(fs: FsBlobStore) -> None:
    """Temp files a killed write left (and a rendition folder only they kept) are swept; stored
    objects and young temp files (a write in progress) stay."""
    key = f"processed/{ID_A}/thumb.jpg"
    fs.put(key, b"kept", "image/jpeg")
    kept_folder = fs.path_for(key).parent
    (kept_folder / ".tmp-dead").write_bytes(b"partial")
    orphan = kept_folder.parent / ID_B
    orphan.mkdir()
    (orphan / ".tmp-dead").write_bytes(b"partial")
    assert fs.sweep_temp_files(older_than_s=3600) == 0  # all young: maybe in progress
    assert fs.sweep_temp_files() == 2
    assert not orphan.exists()
    assert not [p.name for p in kept_folder.iterdir() if p.name.startswith(".tmp-")]
    assert fs.get(key) == b"kept"
