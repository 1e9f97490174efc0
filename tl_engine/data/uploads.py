"""Uploaded datasets on a shared server: checked in memory, decoded once, kept privately, named by content.

An upload is parsed from its bytes (every cap in :mod:`tl_engine.data.user` applies) *before* anything is
written, so a rejected file never touches the disk. An accepted one is stored decoded, as
``<uploads>/<sha256[:16]>.npz`` (compressed: a zip of 21,000 one-pixel PNGs must not become a gigabyte) plus
a small ``.json`` with its original file name, under a folder only this
server's user may read (0700). Its dataset name is ``upload:<sha256[:16]>``: the same file is always the same
dataset (so the results store can reuse its races), the URL shows no server path, and every race and worker
process loads the decoded arrays instead of decoding the upload again. Uploads unused (neither uploaded again
nor raced) for :data:`MAX_AGE_DAYS`, and the oldest beyond :data:`MAX_UPLOADS` or :data:`MAX_UPLOADS_BYTES` on
disk, are deleted when the next one arrives. A write that fails (full disk, read-only folder) is a
:class:`~tl_engine.errors.StorageError` and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, StorageError
from .imageset import DatasetInfo, ImageSet
from .memory import upload_scope

PREFIX = "upload:"
DIR_NAME = "uploads"
MAX_AGE_DAYS = 7  # an upload (and its races' reuse) lives this long after its last use
MAX_UPLOADS = 200  # the oldest beyond this many are deleted, whatever their age
MAX_UPLOADS_BYTES = 2 * 2**30  # the uploads folder on disk; the oldest beyond it are deleted (never the newest)


@dataclass(frozen=True)
class Upload:
    name: str  # "upload:<sha16>": what RunConfig.dataset holds
    filename: str  # what the person uploaded, for titles and messages
    info: DatasetInfo
    skipped: int
    skipped_reasons: tuple[str, ...]


def uploads_dir() -> Path:
    """``$TL_RACE_DATA/uploads`` (default ``data/uploads``), created private to this user (0700)."""
    from ..store import default_path  # the results folder is where everything this server keeps lives

    folder = default_path().parent / DIR_NAME
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new data folder is private too
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_mode & 0o077:  # made by an older version, or by hand: uploads are nobody else's
        os.chmod(folder, 0o700)
    return folder


def is_upload(name: str) -> bool:
    return str(name).startswith(PREFIX)


def save_upload(filename: str, data: bytes) -> Upload:
    """Check and decode an upload in memory, then keep it (atomically, under a unique temp name) and return it.

    Raises:
        DataError: the file cannot be used; nothing was written.
    """

    digest = hashlib.sha256(data).hexdigest()[:16]
    name, title = PREFIX + digest, Path(filename).name
    try:
        folder = uploads_dir()
        if (folder / f"{digest}.npz").exists() and (folder / f"{digest}.json").exists():
            touch(name)  # recently used: not cleaned up
            return load_meta(name)
    except OSError as e:
        raise _storage_error(title, e) from e
    with upload_scope():  # its decoded images count against the process's pool until they are written
        _store(folder, digest, filename, data)
    with contextlib.suppress(OSError):  # the upload is kept; old ones are tried again with the next
        cleanup(folder)
    return load_meta(name)


def _store(folder: Path, digest: str, filename: str, data: bytes) -> None:
    """Parse ``data`` and write its arrays (compressed) and its .json; the arrays are freed on return."""
    from .user import load_upload

    ds = load_upload(filename, data)
    title = Path(filename).name
    meta = {"filename": title, "classes": list(ds.info.classes), "skipped": ds.skipped,
            "skipped_reasons": list(ds.skipped_reasons), "splits": ds.info.splits}
    try:
        _write_atomic(folder / f"{digest}.npz", lambda f: np.savez_compressed(
            f, train_images=ds.train_x, train_labels=ds.train_y, val_images=ds.val_x, val_labels=ds.val_y,
            test_images=ds.test_x, test_labels=ds.test_y))
        _write_atomic(folder / f"{digest}.json", lambda f: f.write(json.dumps(meta).encode()))
    except OSError as e:
        (folder / f"{digest}.npz").unlink(missing_ok=True)  # no half-kept upload: its data without its name
        raise _storage_error(title, e) from e


def _storage_error(title: str, e: OSError) -> StorageError:
    from ..store import is_disk_full, os_reason

    fix = "free disk space on the server" if is_disk_full(e) else "check the server's data folder ($TL_RACE_DATA)"
    return StorageError(f"{title} could not be kept on this server ({os_reason(e)}); nothing was stored. Whoever "
                        f"runs the server can {fix}; then upload it again (reload the page first).")


def touch(name: str) -> None:
    """Mark an upload as used now (uploaded again, or raced): its :data:`MAX_AGE_DAYS` start again."""
    with contextlib.suppress(OSError, DataError):  # read-only folder, vanished upload: only the age stays
        for p in _paths(name):
            os.utime(p)


def _write_atomic(path: Path, write) -> None:
    # A unique temp name per write: two identical uploads at the same moment never share a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _paths(name: str) -> tuple[Path, Path]:
    digest = name[len(PREFIX):]
    if not (len(digest) == 16 and all(c in "0123456789abcdef" for c in digest)):
        raise DataError(f"{name!r} is not an uploaded dataset name.")
    folder = uploads_dir()
    npz, meta = folder / f"{digest}.npz", folder / f"{digest}.json"
    if not (npz.exists() and meta.exists()):
        raise DataError("This uploaded dataset is not on this server (any more): uploads are kept for "
                        f"{MAX_AGE_DAYS} days. Upload the file again.")
    return npz, meta


def load_meta(name: str) -> Upload:
    """What the page shows about an upload, without loading its images."""
    npz, meta_path = _paths(name)
    meta = json.loads(meta_path.read_text())
    k = len(meta["classes"])
    with np.load(npz, allow_pickle=False) as z:  # labels only: a few bytes per image
        counts = tuple(tuple(int(c) for c in np.bincount(z[f"{s}_labels"], minlength=k)[:k])
                       for s in ("train", "val", "test"))
    info = DatasetInfo(name, f"Your data: {meta['filename']}", f"your images ({meta['filename']})", sum(counts[0]),
                       sum(counts[1]), sum(counts[2]), tuple(meta["classes"]), "yours", meta["filename"],
                       str(meta.get("splits", "")), counts)
    return Upload(name, meta["filename"], info, int(meta["skipped"]), tuple(meta["skipped_reasons"]))


def load(name: str) -> ImageSet:
    """The decoded images of an upload (fast: no image is decoded again); racing it refreshes its age."""
    up = load_meta(name)
    npz, _ = _paths(name)
    touch(name)
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return ImageSet(up.info, arrays["train_images"], arrays["train_labels"], arrays["val_images"],
                    arrays["val_labels"], arrays["test_images"], arrays["test_labels"], up.skipped,
                    up.skipped_reasons)


def delete_upload(name: str) -> None:
    """Forget an upload now (the builder's, when its session ends). Unknown names are ignored."""
    try:
        npz, meta = _paths(name)
    except DataError:
        return
    npz.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def cleanup(folder: Path | None = None, now: float | None = None) -> int:
    """Delete uploads unused for MAX_AGE_DAYS, the oldest beyond MAX_UPLOADS or MAX_UPLOADS_BYTES (the most
    recently used is always kept), stray temp files, and halves of uploads (a ``.json`` without its ``.npz``
    or the other way round) older than an hour. Returns how many uploads were deleted."""
    folder = folder or uploads_dir()
    now = time.time() if now is None else now
    removed = 0
    for part in folder.glob(".*.part"):
        if now - part.stat().st_mtime > 3600:  # a write that died more than an hour ago
            part.unlink(missing_ok=True)
    for half in [*folder.glob("*.json"), *folder.glob("*.npz")]:
        other = half.with_suffix(".npz" if half.suffix == ".json" else ".json")
        if not other.exists() and now - _mtime(half, now) > 3600:  # an hour: never one being written now
            half.unlink(missing_ok=True)
    uploads = sorted(((st.st_mtime, st.st_size + _size(npz.with_suffix(".json")), npz)
                      for npz in folder.glob("*.npz") if (st := _stat(npz))), key=lambda u: u[0], reverse=True)
    used = 0
    for i, (mtime, size, npz) in enumerate(uploads):
        used += size
        if i >= MAX_UPLOADS or (i and used > MAX_UPLOADS_BYTES) or now - mtime > MAX_AGE_DAYS * 86400:
            npz.unlink(missing_ok=True)
            npz.with_suffix(".json").unlink(missing_ok=True)
            removed += 1
    return removed


def _mtime(p: Path, default: float) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return default  # deleted meanwhile (by another process's cleanup): nothing to do


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:  # deleted by another session's cleanup meanwhile
        return None


def _size(path: Path) -> int:
    st = _stat(path)
    return st.st_size if st else 0
