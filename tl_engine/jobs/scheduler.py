"""The server's job system: one queue of races and sweeps for every browser tab, run a few at a time.

Why: a race trained inside a page's thread competes for the GIL with every page rerun, two races that each
use every core run ten times slower each (OpenMP oversubscription), and four tabs with the same settings
would train four times. So one :class:`Scheduler` per server: it runs at most ``workers`` jobs at once, each
in its own process (by default) with its own share of the cores, joins identical requests into one job,
answers finished ones from the results store, and one collector thread turns the workers' messages into
:class:`JobSnapshot` records that pages poll.

Reading order: :class:`JobSnapshot` (what pages read) -> :class:`Scheduler` (submit, snapshot, stop, release)
-> :mod:`tl_engine.jobs.worker` (what a job does) -> :mod:`tl_engine.jobs.backends` (where it runs).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from ..config import RaceResult, RunConfig
from ..errors import StoreError
from ..store import ResultStore, Timings, config_id
from ..training import usable_cpus
from .backends import Backend, backend_name, make_backend
from .model_folders import ModelFolders
from .state import FINAL, Job, JobSnapshot, cuda_count, default_workers, estimate_waits, new_job_id, sweep_plan
from .worker import JobSpec, project_env

__all__ = ["Scheduler", "JobSnapshot", "backend_name", "default_workers"]

log = logging.getLogger(__name__)

KEEP_FINISHED = 256  # finished jobs nobody watches are forgotten beyond this many (memory stays flat)


class Scheduler:
    """Runs races and sweeps for every session of a server; thread-safe, every method returns at once.

    ``workers``: jobs at once (clamped to the usable cores, so every job gets at least one whole core).
    ``backend``: "process" (default; also env ``TL_RACE_BACKEND``), "thread" or "ray".
    ``store_path``: the results store (default: :func:`tl_engine.store.results.default_path`).
    """

    def __init__(self, workers: int | None = None, backend: str | None = None,
                 store_path: str | Path | None = None):
        self.cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.n_cores = usable_cpus()
        self.workers = max(1, min(workers or default_workers(), self.n_cores))
        # The thread budget: every running job gets this many torch threads, so their sum never exceeds the cores.
        self.threads_per_job = max(1, self.n_cores // self.workers)
        assert self.threads_per_job * self.workers <= self.n_cores
        self.gpus = cuda_count()
        self.store = ResultStore(store_path)
        self.backend_name = backend or backend_name()
        self._backend: Backend = make_backend(self.backend_name)
        self.models = ModelFolders()
        self._lock, self._jobs, self._queue = threading.Lock(), {}, deque()  # job id -> Job; queued job ids
        self._slots: list[str | None] = [None] * self.workers  # job id holding each slot (until its "end")
        self._by_key: dict[tuple, str] = {}  # joinable (queued or running, not stopping) jobs
        self._durations: list[tuple[float, float]] = []  # (cost, seconds) of finished fresh races
        self._closed = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="tl-scheduler", daemon=True)
        self._collector.start()

    # ---- submitting --------------------------------------------------------------------------------------

    def submit_race(self, cfg: RunConfig, reuse: bool = True, keep_models: bool = False) -> str:
        """A job id for this race: the running or queued one with the same config (joined), one answered
        from the store at once (``reuse``; not with ``keep_models``: the store holds no networks), or a new
        queued job."""
        key = ("race", config_id(cfg))
        with self._lock:
            joined = self._join(key, keep_models)
            if joined:
                return joined
        if reuse and not keep_models:
            stored = self._stored(cfg)
            if stored is not None:
                return self._add(Job("race", new_job_id(), cfg, key, status="done", events=stored.epochs,
                                     total=cfg.total_epochs, result=stored, started_at=time.time(),
                                     finished_at=time.time(), reused_from=stored.extras.get("created_at")))
        return self._add(Job("race", new_job_id(), cfg, key, total=cfg.total_epochs, keep_models=keep_models))

    def submit_sweep(self, kind: str, cfg: RunConfig, opts: dict | None = None) -> str:
        """A job id for this experiment (joined when the same one is queued or running). Its runs that
        are already stored are reused by the sweep itself."""
        opts = dict(opts or {})
        key = ("sweep", kind, config_id(cfg), json.dumps(opts, sort_keys=True, default=repr))
        with self._lock:
            joined = self._join(key, False)
            if joined:
                return joined
        total, cost = sweep_plan(kind, cfg, opts)
        return self._add(Job("sweep", new_job_id(), cfg, key, total=total, sweep_kind=kind, sweep_opts=opts,
                             cost_estimate=cost))

    def _join(self, key: tuple, keep_models: bool) -> str | None:
        job = self._jobs.get(self._by_key.get(key, ""))
        if job is None or job.status in FINAL or job.stopping:
            return None
        if keep_models and not job.keep_models:
            if job.status != "queued":
                return None  # running without keeping its networks: this request needs its own run
            job.keep_models = True
        job.watchers += 1
        return job.id

    def _stored(self, cfg: RunConfig) -> RaceResult | None:
        try:
            return self.store.get(cfg)
        except StoreError as e:
            log.warning("results store unavailable, training instead: %s", e)
            return None

    def _add(self, job: Job) -> str:
        with self._lock:
            if job.status == "queued":  # another tab may have asked for the same thing a moment ago
                joined = self._join(job.key, job.keep_models)
                if joined:
                    return joined
            self._jobs[job.id] = job
            if job.status == "queued":
                self._queue.append(job.id)
                self._by_key[job.key] = job.id
            self._forget_old()
        self._backend.wake()  # the collector thread starts it: the page's thread never waits for a process
        return job.id

    # ---- reading ------------------------------------------------------------------------------------------

    def snapshot(self, job_id: str) -> JobSnapshot:
        """The job as it is now (a lock and a few references: poll it as often as you like).

        Raises:
            KeyError: no such job (never submitted, or forgotten long after its last watcher left).
        """
        with self._lock:
            job = self._jobs[job_id]
            position = eta = None
            if job.status == "queued":
                position = self._queue.index(job_id) + 1
                eta = estimate_waits(self._running(), [self._jobs[j] for j in self._queue], self.workers,
                                     self._durations, time.time())[position - 1]
            return job.snapshot(position, eta)

    def jobs(self) -> list[JobSnapshot]:
        """Every known job, oldest first (for an admin view)."""
        with self._lock:
            ids = list(self._jobs)
        return [self.snapshot(j) for j in ids if j in self._jobs]

    def watching_tabs(self) -> int:
        """Tabs watching a queued or running job (each of them polls): the pages share a poll budget."""
        with self._lock:
            return sum(j.watchers for j in self._jobs.values() if j.status in ("queued", "running"))

    def threads_in_use(self) -> int:
        """Torch threads of the jobs holding a slot now (never more than the usable cores)."""
        with self._lock:
            return sum(self._jobs[j].threads for j in self._slots if j is not None)

    def _running(self) -> list[Job]:
        return [self._jobs[j] for j in self._slots if j is not None]

    # ---- stopping -----------------------------------------------------------------------------------------

    def stop(self, job_id: str) -> None:
        """Stop the job for everyone watching it: a queued one leaves the queue, a running one ends within a
        batch and keeps what it finished (status "stopped")."""
        with self._lock:
            job = self._jobs[job_id]
            if job.status == "queued":
                self._dequeue(job, "stopped")
                return
            if job.status != "running":
                return
            job.stopping = True
            self._by_key.pop(job.key, None)
        self._backend.stop(job_id)

    def release(self, job_id: str) -> None:
        """A watcher left (a closed tab). The last one leaving takes a queued job out of the queue and ends a
        running one at once (its process is killed, its slot goes to the next job)."""
        kill = False
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.watchers == 0:
                return
            job.watchers -= 1
            if job.watchers > 0:
                return
            if job.status == "queued":
                self._dequeue(job, "stopped")
            elif job.status == "running":
                job.stopping, kill = True, True
                job.status, job.finished_at = "stopped", time.time()
                self._by_key.pop(job.key, None)
        if kill:
            self._backend.kill(job_id)

    def _dequeue(self, job: Job, status: str) -> None:
        self._queue.remove(job.id)
        self._by_key.pop(job.key, None)
        job.status, job.finished_at = status, time.time()

    def shutdown(self) -> None:
        """Kill every worker, stop the collector and delete the kept models. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._backend.wake()
        self._collector.join(timeout=10)
        self._backend.shutdown()
        with self._lock:
            for job in self._jobs.values():
                if job.status in ("queued", "running"):
                    job.status, job.finished_at = "stopped", time.time()
                job.models_dir = None
            self._queue.clear()
        self.models.close()

    # ---- the collector thread: the only place jobs start and messages land -------------------------------

    def _collect(self) -> None:
        while not self._closed.is_set():
            try:
                self._start_ready()
                for job_id, kind, payload in self._backend.poll(0.25):
                    self._on_message(job_id, kind, payload)
            except Exception:  # keep serving every other job; this is a bug to fix, so log it loudly
                log.exception("scheduler collector")
                time.sleep(0.25)

    def _start_ready(self) -> None:
        starts: list[JobSpec] = []
        with self._lock:
            while self._queue and None in self._slots:
                job = self._jobs[self._queue.popleft()]
                slot = self._slots.index(None)
                self._slots[slot] = job.id
                job.status, job.started_at, job.threads = "running", time.time(), self.threads_per_job
                running = sum(self._jobs[j].threads for j in self._slots if j is not None)
                assert running <= self.n_cores, f"thread budget exceeded: {running} threads on {self.n_cores} cores"
                starts.append(self._spec(job, slot))
        for spec in starts:
            try:
                self._backend.start(spec)
            except Exception as e:  # e.g. no memory for another process: this job fails, the others go on
                log.exception("could not start job %s", spec.job_id)
                self._on_message(spec.job_id, "end", {"status": "error", "error": f"The job could not start: {e}"})

    def _spec(self, job: Job, slot: int) -> JobSpec:
        t = self.threads_per_job
        cpus = tuple(self.cores[slot * t:(slot + 1) * t]) if len(self.cores) >= self.workers * t else ()
        if job.keep_models:
            job.models_target = self.models.target(job.id)
        return JobSpec(job.id, job.kind, job.cfg.to_dict(), t, str(self.store.path), job.keep_models,
                       job.models_target, job.sweep_kind, job.sweep_opts, cpus,
                       slot % self.gpus if self.gpus else None, project_env())

    def _on_message(self, job_id: str, kind: str, payload) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if kind == "end":
                self._ended(job, payload)
            elif job.status == "running":  # a released job's late messages are dropped
                job.apply(kind, payload)
        if kind == "end":
            self._prune_models()

    def _ended(self, job: Job, payload: dict) -> None:
        if job.id in self._slots:
            self._slots[self._slots.index(job.id)] = None
        if self._by_key.get(job.key) == job.id:
            del self._by_key[job.key]
        if job.status != "running":
            return  # released: already "stopped"
        job.status, job.error, job.finished_at = payload["status"], payload.get("error"), time.time()
        if job.status == "done" and job.started_at is not None:
            self._durations.append((job.cost(), job.finished_at - job.started_at))
            del self._durations[:-50]
            if not job.reused_from:  # on disk too: the pages' estimates of work not yet queued (store/timings.py)
                Timings.beside(self.store.path).record("race", job.cost(), job.finished_at - job.started_at)

    def _prune_models(self) -> None:
        with self._lock:
            old = self.models.expired(self._jobs.values())
        self.models.delete(old)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINAL and j.watchers == 0 and not j.models_dir]
        for job in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

