"""A job's state inside the scheduler (:class:`Job`, guarded by the scheduler's lock) and the one record pages
read (:class:`JobSnapshot`), plus the queue's waiting-time estimate. Streamlit-free; torch only to count GPUs.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..config import EpochResult, RaceResult, RunConfig
from ..experiments import Progress, SweepRun, plan, run_cost
from ..training import usable_cpus

WORKERS_ENV = "TL_RACE_WORKERS"
CORES_PER_JOB = 2  # below two threads a race barely uses its core's vector units; one job per two cores
FINAL = ("done", "stopped", "error")
STATUSES = ("queued", "running", *FINAL)


@dataclass(frozen=True)
class JobSnapshot:
    """One job at one instant: the one contract every page reads (races and sweeps alike)."""

    kind: str  # "race" | "sweep"
    id: str
    cfg: RunConfig  # the race's config, or the sweep's base config
    status: str  # "queued" | "running" | "done" | "stopped" | "error"
    events: tuple  # EpochResult for races, SweepRun for sweeps, in the order they finished
    total: int  # planned events (a sweep's is 0 until known)
    progress: float  # 0..1
    error: str | None  # a message for people, never a traceback
    queue_position: int | None  # 1 = next to start; None when not queued
    eta_seconds: float | None  # queued: estimated wait, from finished jobs' measured durations (None: no data)
    started_at: float | None  # time.time() when it began running (or was answered from the store)
    finished_at: float | None
    result: RaceResult | None  # a race's result: complete when "done", partial when stopped
    reused_from: str | None  # answered from the store: when that race was run (its created_at)
    watchers: int  # sessions watching it (a joined job has several)
    models_dir: str | None  # with keep_models, once done: <strategy>.pt TorchScript files + model.json
    sweep_progress: Progress | None  # a sweep's latest progress
    sweep_kind: str | None = None  # "freeze" | "size" | "domain" for sweeps
    threads: int = 0  # torch threads it runs with (its share of the cores)
    worker: dict | None = None  # process/task backends: pid, torch_threads, cpus, as the worker reported them

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass
class Job:
    """The scheduler's mutable record of one job (always read and written under the scheduler's lock)."""

    kind: str
    id: str
    cfg: RunConfig
    key: tuple  # what identical requests share (joined while queued or running)
    status: str = "queued"
    events: tuple = ()  # replaced, never mutated: a snapshot shares it without copying
    total: int = 0
    result: RaceResult | None = None
    started_at: float | None = None
    finished_at: float | None = None
    reused_from: str | None = None
    watchers: int = 1
    keep_models: bool = False
    models_dir: str | None = None  # reported by the worker
    models_target: str | None = None  # where the worker was told to write them (deleted with the job)
    sweep_kind: str | None = None
    sweep_opts: dict = field(default_factory=dict)
    sweep_progress: Progress | None = None
    error: str | None = None
    stopping: bool = False
    threads: int = 0
    worker: dict | None = None
    cost_estimate: float | None = None  # relative cost (sweep.run_cost units) before it runs; None: unknown

    def __post_init__(self) -> None:
        if self.kind == "race" and self.cost_estimate is None:
            self.cost_estimate = run_cost(self.cfg)

    def apply(self, kind: str, payload: Any) -> None:
        """One message from the worker (see :mod:`tl_engine.jobs.worker`)."""
        if kind == "event":
            self.events = (*self.events, EpochResult.from_dict(payload))
        elif kind == "run":
            self.events = (*self.events, SweepRun(RaceResult.from_dict(payload["result"]), bool(payload["reused"])))
        elif kind == "progress":
            current = payload.get("current")
            self.sweep_progress = Progress(**{**payload, "current": RunConfig.from_dict(current) if current else None})
        elif kind == "total":
            self.total = int(payload)
        elif kind == "result":
            self.result = RaceResult.from_dict(payload)
        elif kind == "models":
            self.models_dir = str(payload)
        elif kind == "worker":
            self.worker = dict(payload)

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        if self.sweep_progress is not None:
            return float(self.sweep_progress.fraction)
        return min(1.0, len(self.events) / self.total) if self.total else 0.0

    def cost(self) -> float:
        """Relative cost of the work this job actually did (a sweep's reused runs cost nothing)."""
        if self.kind == "race":
            return run_cost(self.cfg)
        return sum(run_cost(r.config) for r in self.events if not r.reused)

    def snapshot(self, queue_position: int | None, eta: float | None) -> JobSnapshot:
        return JobSnapshot(self.kind, self.id, self.cfg, self.status, self.events, self.total, self.progress,
                           self.error, queue_position, eta, self.started_at, self.finished_at, self.result,
                           self.reused_from, self.watchers, self.models_dir, self.sweep_progress, self.sweep_kind,
                           self.threads, self.worker)


def estimate_waits(running: list[Job], queued: list[Job], workers: int, durations: list[tuple[float, float]],
                   now: float | None = None) -> list[float | None]:
    """Seconds until each queued job starts: the running jobs' time left, then the queue played out on
    ``workers`` slots, each job taking its cost times the measured seconds per cost of finished jobs.

    None where it cannot be measured yet: no job has finished, or a job ahead has no cost estimate.
    """
    now = time.time() if now is None else now
    cost = sum(c for c, _ in durations)
    rate = sum(s for _, s in durations) / cost if cost > 0 else None
    if rate is None:
        return [None] * len(queued)

    def duration(job: Job) -> float | None:
        return None if job.cost_estimate is None else job.cost_estimate * rate

    free: list[float | None] = []
    for job in running:
        elapsed = now - (job.started_at or now)
        p = job.progress
        if job.status != "running":
            free.append(0.0)  # released or failed, its worker is winding down: the slot is about to free
        elif job.sweep_progress is not None and job.sweep_progress.seconds_left is not None:
            free.append(job.sweep_progress.seconds_left)
        elif p > 0:
            free.append(elapsed * (1 - p) / p)  # measured on this job: the best guess there is
        else:
            d = duration(job)
            free.append(None if d is None else max(0.0, d - elapsed))
    free += [0.0] * max(0, workers - len(running))
    out: list[float | None] = []
    for job in queued:
        if not free or any(t is None for t in free):
            out.append(None)
            continue
        t = min(free)  # type: ignore[type-var]
        out.append(t)
        d = duration(job)
        free[free.index(t)] = None if d is None else t + d
    return out


def cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # no torch, or a broken driver: plan for the CPU
        return 0


def default_workers() -> int:
    """Env ``TL_RACE_WORKERS``, else one job per GPU, else one per :data:`CORES_PER_JOB` cores (at least 1)."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        return max(1, int(env))
    return cuda_count() or max(1, usable_cpus() // CORES_PER_JOB)


def sweep_plan(kind: str, cfg: RunConfig, opts: dict) -> tuple[int, float | None]:
    """Planned runs and their cost, when that is cheap to know (a bundled dataset); else (0, None) and the
    worker reports the total. The cost ignores reuse: a sweep's estimate errs on the long side."""
    from ..data import list_datasets
    try:
        if cfg.dataset not in {i.name for i in list_datasets()}:
            return 0, None  # a user's dataset: planning would decode it here, in the page's thread
        configs = plan(kind, cfg, **opts)
    except Exception:  # a bad setting: the worker reports it as the job's error
        return 0, None
    return len(configs), sum(run_cost(c) for c in configs)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]
