"""Where finished races leave their trained networks (TorchScript files and look-inside data) for the pages.

One temporary folder per server, one sub-folder per job that asked to keep its models; only the newest
``TL_RACE_MODEL_JOBS`` (default 8) are kept, so a long lesson does not fill the disk. The folder is deleted at
shutdown and when the process exits; one left by a server that was killed (its name holds the process id) is
deleted when the next server makes its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from .state import FINAL, Job

MODEL_JOBS_ENV = "TL_RACE_MODEL_JOBS"
PREFIX = "tl-race-models-"  # then "<pid>-" and mkdtemp's random part
OLD_UNNAMED_SECONDS = 86400  # a folder without a process id (older versions) is removed after a day


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's live process: not ours to judge
    return True


def remove_stale(root: str | Path | None = None, now: float | None = None) -> int:
    """Delete model folders left in ``root`` (the temp folder) by servers that no longer run; how many."""
    root, now, removed = Path(root or tempfile.gettempdir()), time.time() if now is None else now, 0
    for d in root.glob(PREFIX + "*"):
        pid = d.name[len(PREFIX):].split("-", 1)[0]
        try:
            stale = not _alive(int(pid)) if pid.isdigit() else now - d.stat().st_mtime > OLD_UNNAMED_SECONDS
        except OSError:
            continue
        if stale and d.is_dir() and not d.is_symlink():
            shutil.rmtree(d, ignore_errors=True)
            removed += not d.exists()
    return removed


class ModelFolders:
    """The kept networks' folders of one scheduler. Not thread-safe: the scheduler calls it under its lock,
    except :meth:`delete` and :meth:`close`, which only remove folders nobody points to any more."""

    def __init__(self) -> None:
        self.keep = max(1, int(os.environ.get(MODEL_JOBS_ENV, "") or 8))
        self._root: Path | None = None

    def target(self, job_id: str) -> str:
        """The folder a job writes its networks to (the server's root folder is made on first use)."""
        if self._root is None:
            remove_stale()
            self._root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
            atexit.register(self.close)  # shutdown() may never run (Ctrl-C on the server): exit still cleans up
        return str(self._root / job_id)

    def expired(self, jobs: Iterable[Job]) -> list[Job]:
        """The finished jobs beyond the newest :attr:`keep` that still hold networks; their ``models_dir`` is
        cleared here (the pages stop offering them), the folders go with :meth:`delete`."""
        kept = sorted((j for j in jobs if j.models_dir and j.status in FINAL), key=lambda j: j.finished_at or 0.0)
        old = kept[:max(0, len(kept) - self.keep)]
        for job in old:
            job.models_dir = None
        return old

    @staticmethod
    def delete(jobs: Iterable[Job]) -> None:
        for job in jobs:
            shutil.rmtree(job.models_target or "", ignore_errors=True)

    def close(self) -> None:
        """Delete every kept network of this server (at shutdown, at exit; never from a forked child)."""
        if self._root is not None and self._root.name.startswith(f"{PREFIX}{os.getpid()}-"):
            shutil.rmtree(self._root, ignore_errors=True)
