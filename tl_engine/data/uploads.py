"""Uploaded datasets on a shared server: checked in memory, decoded once, kept privately, named by content.

An upload is parsed from its bytes (every cap in :mod:`tl_engine.data.user` applies) *before* anything is
written, so a rejected file never touches the disk. An accepted one is stored decoded, as
``<uploads>/<sha256[:16]>.npz`` (compressed: a zip of 21,000 one-pixel PNGs must not become a gigabyte) plus
a small ``.json`` with its original file name, under a folder only this
server's user may read (0700). Its dataset name is ``upload:<sha256[:16]>``: the same file is always the same
dataset (so the results store can reuse its races), the URL shows no server path, and every race and worker
process loads the decoded arrays instead of decoding the upload again. Uploads older than
:data:`MAX_AGE_DAYS`, and the oldest beyond :data:`MAX_UPLOADS` or :data:`MAX_UPLOADS_BYTES` on disk, are
deleted when the next one arrives.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
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
    folder.mkdir(parents=True, exist_ok=True)
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
    name, folder = PREFIX + digest, uploads_dir()
    if (folder / f"{digest}.npz").exists():
        os.utime(folder / f"{digest}.npz")  # recently used: not cleaned up
        return load_meta(name)
    with upload_scope():  # its decoded images count against the process's pool until they are written
        _store(folder, digest, filename, data)
    cleanup(folder)
    return load_meta(name)


def _store(folder: Path, digest: str, filename: str, data: bytes) -> None:
    """Parse ``data`` and write its arrays (compressed) and its .json; the arrays are freed on return."""
    from .user import load_upload

    ds = load_upload(filename, data)
    meta = {"filename": Path(filename).name, "classes": list(ds.info.classes), "skipped": ds.skipped,
            "skipped_reasons": list(ds.skipped_reasons)}
    _write_atomic(folder / f"{digest}.npz", lambda f: np.savez_compressed(
        f, train_images=ds.train_x, train_labels=ds.train_y, val_images=ds.val_x, val_labels=ds.val_y,
        test_images=ds.test_x, test_labels=ds.test_y))
    _write_atomic(folder / f"{digest}.json", lambda f: f.write(json.dumps(meta).encode()))


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
    with np.load(npz, allow_pickle=False) as z:
        n = {s: int(z[f"{s}_labels"].shape[0]) for s in ("train", "val", "test")}
    info = DatasetInfo(name, f"Your data: {meta['filename']}", f"your images ({meta['filename']})", n["train"],
                       n["val"], n["test"], tuple(meta["classes"]), "yours", meta["filename"])
    return Upload(name, meta["filename"], info, int(meta["skipped"]), tuple(meta["skipped_reasons"]))


def load(name: str) -> ImageSet:
    """The decoded images of an upload (fast: no image is decoded again)."""
    up = load_meta(name)
    npz, _ = _paths(name)
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
    recently used is always kept), and stray temp files. Returns how many uploads were deleted."""
    folder = folder or uploads_dir()
    now = time.time() if now is None else now
    removed = 0
    for part in folder.glob(".*.part"):
        if now - part.stat().st_mtime > 3600:  # a write that died more than an hour ago
            part.unlink(missing_ok=True)
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


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:  # deleted by another session's cleanup meanwhile
        return None


def _size(path: Path) -> int:
    st = _stat(path)
    return st.st_size if st else 0
