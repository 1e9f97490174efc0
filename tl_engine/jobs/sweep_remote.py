"""A sweep whose races run as separate jobs of a :class:`~tl_engine.jobs.scheduler.Scheduler` backend.

``python -m tl_engine sweep ... --backend ray`` sends each race of the grid to Ray (a local Ray, or a cluster
named by ``RAY_ADDRESS``): they run side by side, as many as the backend's workers allow, with the same events,
the same results store and the same reuse as a local sweep. Races the store already holds are answered from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from ..config import RunConfig
from ..errors import UserError
from ..experiments import SweepRun, plan

POLL_SECONDS = 0.2


def run_sweep_on(backend: str, kind: str, base_cfg: RunConfig, stop: threading.Event | None = None,
                 workers: int | None = None, **opts) -> Iterator[SweepRun]:
    """Yield each finished race of the sweep as a SweepRun, in the order they finish (grid order per batch).

    Raises:
        UserError: a race failed with a message for people (the other races are stopped first).
    """
    from .scheduler import Scheduler

    stop = stop or threading.Event()
    configs = plan(kind, base_cfg, **opts)
    sched = Scheduler(workers=workers, backend=backend)
    try:
        pending = [sched.submit_race(c) for c in configs]
        while pending:
            if stop.is_set():
                for job_id in pending:
                    sched.stop(job_id)
                return
            for job_id in list(pending):
                snap = sched.snapshot(job_id)
                if not snap.finished:
                    continue
                pending.remove(job_id)
                if snap.status == "error":
                    raise UserError(f"a race of the sweep failed: {snap.error}")
                if snap.status == "done" and snap.result is not None:
                    yield SweepRun(snap.result, snap.reused_from is not None)
            time.sleep(POLL_SECONDS)
    finally:
        sched.shutdown()
