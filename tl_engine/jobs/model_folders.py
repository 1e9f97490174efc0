"""Where finished races leave their trained networks (TorchScript files and look-inside data) for the pages.

One temporary folder per server, one sub-folder per job that asked to keep its models; only the newest
``TL_RACE_MODEL_JOBS`` (default 8) are kept, so a long lesson does not fill the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .state import FINAL, Job

MODEL_JOBS_ENV = "TL_RACE_MODEL_JOBS"


class ModelFolders:
    """The kept networks' folders of one scheduler. Not thread-safe: the scheduler calls it under its lock,
    except :meth:`delete` and :meth:`close`, which only remove folders nobody points to any more."""

    def __init__(self) -> None:
        self.keep = max(1, int(os.environ.get(MODEL_JOBS_ENV, "") or 8))
        self._root: Path | None = None

    def target(self, job_id: str) -> str:
        """The folder a job writes its networks to (the server's root folder is made on first use)."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="tl-race-models-"))
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
        """Delete every kept network of this server (at shutdown)."""
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
