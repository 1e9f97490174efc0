"""The background worker: runs one race in a daemon thread and keeps its events in a plain object.

The worker never touches Streamlit (it has no ScriptRunContext: writes would be lost silently). The page
reads :meth:`RaceRun.snapshot` from its own thread, so the only thing shared is a lock-guarded list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tl_engine.config import EpochResult, RunConfig, summarize
from tl_engine.errors import ConfigError, DataError, WeightsMissingError
from tl_engine.store import ResultStore

log = logging.getLogger(__name__)

RaceFn = Callable[[RunConfig, threading.Event], Iterator[EpochResult]]
# Errors whose messages are written for people: shown as they are, without a traceback.
HUMAN_ERRORS = (ConfigError, DataError, WeightsMissingError)


def guarded(body: Callable[[], None], what: str) -> str | None:
    """Run a worker's body; None if it went well, else the message a person should read.

    Engine errors carry messages written for people and are shown as they are; anything else is
    logged with its traceback and summarised, so the page shows something rather than spin forever.
    """
    try:
        body()
    except HUMAN_ERRORS as e:
        return str(e)
    except Exception as e:
        log.exception("%s failed", what)
        return f"The {what} failed unexpectedly: {type(e).__name__}: {e}"
    return None


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of a run's state at one instant."""

    events: list[EpochResult]
    status: str  # "running" | "done" | "stopped" | "error"
    error: str | None
    cfg: RunConfig
    started_at: float
    finished_at: float | None
    reused_from: str | None = None  # when the result came from the store: when that race was run

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def total(self) -> int:
        """Planned number of events: one per strategy and epoch."""
        return self.cfg.epochs * len(self.cfg.strategies)

    @property
    def progress(self) -> float:
        return min(1.0, len(self.events) / self.total) if self.total else 1.0


@dataclass
class RaceRun:
    """One race: its config, the events so far, and how it ended."""

    cfg: RunConfig
    events: list[EpochResult] = field(default_factory=list)
    status: str = "running"
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)
    store: ResultStore | None = field(default=None, repr=False)  # where a finished race is kept
    reused_from: str | None = None

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(list(self.events), self.status, self.error, self.cfg, self.started_at,
                            self.finished_at, self.reused_from)

    def stop(self) -> None:
        """Ask the worker to stop; the engine checks the event between batches, so this is prompt."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _work(self, race: RaceFn) -> None:
        def body() -> None:
            for ev in race(self.cfg, self.stop_event):
                with self.lock:
                    self.events.append(ev)

        error = guarded(body, "race")
        complete = len(self.events) == self.cfg.epochs * len(self.cfg.strategies)
        status = "error" if error else "done" if complete else "stopped"
        finished_at = time.time()
        if status == "done" and self.store is not None:
            self._keep(finished_at)  # before "done" is visible: a click right after it finds the stored race
        with self.lock:
            self.status, self.error, self.finished_at = status, error, finished_at

    def _keep(self, finished_at: float) -> None:
        """Store the finished race so that the experiments (and this page) can reuse it."""
        from tl_engine.torchutil import resolve_device

        result = {"config": self.cfg.to_dict(), "device": str(resolve_device(self.cfg.device)),
                  "wall_seconds": finished_at - self.started_at, "completed": True,
                  "epochs": [e.to_dict() for e in self.events], "summary": summarize(self.events)}
        try:
            self.store.put(self.cfg, result)
        except Exception:  # a full disk must not turn a finished race into an error on the projector
            log.exception("could not store the finished race")


def start_race(cfg: RunConfig, race: RaceFn | None = None, store: ResultStore | None = None,
               reuse: bool = True) -> RaceRun:
    """Start ``race(cfg, stop)`` (default: the engine's) in a daemon thread and return its RaceRun at once.

    With a ``store``: a race that already ran with exactly this config (here or in a sweep) is answered
    from it at once (``reused_from`` says when it ran) unless ``reuse`` is False; a race that finishes
    is stored.
    """
    if store is not None and reuse:
        record = store.get(cfg)
        if record is not None:
            now = time.time()
            return RaceRun(cfg, [EpochResult(**e) for e in record["epochs"]], status="done", started_at=now,
                           finished_at=now, store=store, reused_from=record["created_at"])
    if race is None:
        from tl_engine.train import race  # torch-heavy: imported only when a race starts

    run = RaceRun(cfg, store=store)
    # Daemon: a closed tab or a stopped server never waits for a training loop.
    run.thread = threading.Thread(target=run._work, args=(race,), name="tl-race", daemon=True)
    run.thread.start()
    return run
