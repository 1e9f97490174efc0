"""Files written so that a reader never sees half of one, and checked before work that would be lost."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError

# Why a write failed, in words (callers say what was being written; no path: server folders are nobody's business).
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied: the folder is not writable",
    errno.EPERM: "permission denied: the folder is not writable",
    errno.EISDIR: "it is a folder, not a file",
}


def is_disk_full(e: BaseException) -> bool:
    """True for "no space left" and "quota exceeded": a full disk, not a damaged file."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def os_reason(e: OSError) -> str:
    """``e`` in words, without the path it names (e.g. "the disk is full")."""
    return _REASONS.get(e.errno or 0) or (e.strerror or type(e).__name__).lower()


def file_stamp(*paths: str | Path) -> tuple:
    """(modification time, size) of each file, None for a missing one: a cache key that changes with them."""
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def write_json_atomic(path: str | Path, obj: dict) -> None:
    """Write to a temp file then rename: a reader never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | Path | None, what: str = "--json") -> None:
    """Fail before any training when an output file cannot be written (a missing folder loses no race).

    A folder is not a file, and permission bits are not enough (root may write anywhere, a read-only disk
    refuses everyone): a temporary file is made and removed in the target folder.
    """
    if path is None:
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name, e.g. {target / 'result.json'}.")
    folder = target.resolve().parent
    if not folder.is_dir():
        raise UserError(f"{what} {path}: the folder {folder} does not exist; create it or choose another path.")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UserError(f"{what} {path}: the folder {folder} is not writable; choose another path.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{what} {path} cannot be written ({os_reason(e)}); choose another path.") from e
