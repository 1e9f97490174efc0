"""The pages' view of the server's jobs: one scheduler per server, and which jobs each browser tab watches.

Training never runs in a page's thread: :class:`tl_engine.jobs.scheduler.Scheduler` owns worker processes, a queue
and the thread budget, and joins tabs that ask for the same race. A page only submits, polls snapshots (a lock
and a tuple copy) and stops. When a tab's session ends, Streamlit calls ``on_release`` and every job that tab
watched loses a watcher; a job nobody watches leaves the queue or stops, freeing its slot.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from tl_engine.config import RunConfig
from tl_engine.errors import UserError
from tl_engine.jobs import JobSnapshot, Scheduler, backend_name, warm

# How often a tab asks for news while its job is queued or running. A poll costs the browser ~0.08 s of CPU
# (Streamlit's frontend redraws the fragment) and a new epoch ~0.1 s more (the Plotly redraw), measured: on a
# teacher's laptop that is both server and projector, that is taken from training. So: once a second until every
# curve has its first point (they should appear at once), then every 3 s (an epoch of the default race takes
# 2-7 s; a poll then usually brings one or two new points). Tabs share a budget: POLLS_PER_SECOND fragment runs a
# second for all tabs together (four tabs on one machine poll every 2 s from the start), capped at
# POLL_MAX_SECONDS so that a class of 20 still sees its counters move.
POLL_FIRST_SECONDS = 1.0
POLL_SECONDS = 3.0
POLLS_PER_SECOND = 2.0
POLL_MAX_SECONDS = 5.0
ACTIVE = ("queued", "running")


QUIET_SECONDS = 5.0  # the server is "quiet" when no page was drawn for this long


class _Warmer:
    """Starts the worker processes' fork server once the server has been quiet for :data:`QUIET_SECONDS` (no
    page drawn meanwhile): its imports take ~3.4 s of a core, measured, and a class's first page loads should
    not share the cores with them. A thread that ends once it has warmed (or found nothing to warm)."""

    def __init__(self) -> None:
        self.last_page = time.monotonic()
        threading.Thread(target=self._run, name="tl-warm-workers", daemon=True).start()

    def _run(self) -> None:
        while time.monotonic() - self.last_page < QUIET_SECONDS:
            time.sleep(0.5)
        warm(backend_name())


@st.cache_resource(show_spinner=False)
def _warmer() -> _Warmer:
    return _Warmer()


def warm_workers() -> None:
    """Called at the end of every race page run: the first race of a fresh server then does not wait for the
    workers' imports (see :func:`tl_engine.jobs.backends.warm`). No scheduler is made."""
    _warmer().last_page = time.monotonic()


@st.cache_resource(show_spinner=False)
def scheduler() -> Scheduler:
    """The one scheduler of this server (global: every session shares it, so equal races are joined)."""
    return Scheduler()


class Watching:
    """The jobs one browser session watches, by role ("race", "sweep"): at most one of each."""

    def __init__(self) -> None:
        # The scheduler is kept here once a job is watched: on_release runs outside any script run, where
        # scheduler() is unsafe. Not before: a tab that never starts a job never starts the scheduler.
        self.sched: Scheduler | None = None
        self.lock = threading.Lock()
        self.jobs: dict[str, str] = {}

    def watch(self, sched: Scheduler, role: str, job_id: str) -> None:
        with self.lock:
            self.sched = sched
            old = self.jobs.get(role)
            self.jobs[role] = job_id
        if old is not None and old != job_id:
            sched.release(old)

    def drop(self, role: str) -> None:
        """Stop watching this role's job (a job nobody watches leaves the queue or stops)."""
        with self.lock:
            job_id = self.jobs.pop(role, None)
        if job_id is not None and self.sched is not None:
            self.sched.release(job_id)

    def release_all(self) -> None:
        with self.lock:
            ids, self.jobs = list(self.jobs.values()), {}
        for job_id in ids:
            if self.sched is not None:
                self.sched.release(job_id)


def _release(w: Watching) -> None:
    w.release_all()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def watching() -> Watching:
    return Watching()


SEED_ROLES = ("seed2", "seed3")  # "▷ Race 3 seeds": the same race with the next two seeds (tl_ui.seeds)


def start_race(cfg: RunConfig, reuse: bool = True, role: str = "race") -> str:
    """Submit (or join, or answer from the store) a race for this tab; returns its job id.

    A race the results store holds is answered from it at once, without its networks (the store keeps none;
    "▷ Race it live" trains them again); every other race trains and keeps its networks for "Look inside".
    A new race in the "race" role ends this tab's extra seeds of the one before; the extra seeds keep no networks.
    """
    sched = scheduler()
    keep = role == "race" and not (reuse and _stored(sched, cfg))
    job_id = sched.submit_race(cfg, reuse=reuse, keep_models=keep)
    w = watching()
    w.watch(sched, role, job_id)
    if role == "race":
        for r in SEED_ROLES:
            w.drop(r)
    return job_id


def _stored(sched: Scheduler, cfg: RunConfig) -> bool:
    try:
        return sched.store.get(cfg) is not None
    except UserError:  # a damaged store: train (and keep the networks) instead
        return False


def start_sweep(kind: str, cfg: RunConfig, opts: dict) -> str:
    sched = scheduler()
    job_id = sched.submit_sweep(kind, cfg, opts)
    watching().watch(sched, "sweep", job_id)
    return job_id


def current(role: str) -> JobSnapshot | None:
    """The snapshot of the job this tab watches in ``role``, or None."""
    job_id = watching().jobs.get(role)
    return scheduler().snapshot(job_id) if job_id else None


def stop(role: str) -> None:
    """Stop this tab's job in ``role`` (the race's Stop also stops its extra seeds)."""
    for r in (role, *SEED_ROLES) if role == "race" else (role,):
        job_id = watching().jobs.get(r)
        if job_id:
            scheduler().stop(job_id)


def poll_every(snap: JobSnapshot | None, tabs: int = 1) -> float | None:
    """The live fragment's ``run_every``: while the job is queued or running (never when idle), every
    :data:`POLL_FIRST_SECONDS` until every strategy has its first epoch, then :data:`POLL_SECONDS`; slower when
    ``tabs`` (all tabs polling this server) would exceed the budget."""
    if snap is None or snap.status not in ACTIVE:
        return None
    if snap.kind == "race":  # every curve's first point, not just scratch's
        first = len({e.strategy for e in snap.events}) < len(snap.cfg.strategies)
    else:
        first = not snap.events
    own = POLL_FIRST_SECONDS if snap.status == "running" and first else POLL_SECONDS
    return min(POLL_MAX_SECONDS, max(own, tabs / POLLS_PER_SECOND))


def poll_plan(snap: JobSnapshot | None) -> float | None:
    """:func:`poll_every` for this server now (asks the scheduler only when this tab has a job)."""
    return poll_every(snap, scheduler().watching_tabs() if snap is not None else 1)


def poll_drifted(snap: JobSnapshot | None, run_every: float | None) -> bool:
    """Whether the interval a page's fragment was given is now off by 1.5x or more (the first points are in, or
    tabs came or went): the page then reruns once in full (~0.2 s of browser CPU), which recomputes it."""
    want = poll_plan(snap)
    if want is None or run_every is None:
        return False
    return want >= 1.5 * run_every or run_every >= 1.5 * want
