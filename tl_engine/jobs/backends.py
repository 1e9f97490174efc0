"""Where the scheduler's jobs run: threads of this process, or one fresh process per job.

Every backend has the same small surface (:class:`Backend`) and one promise: each started job produces
exactly one ``"end"`` message, even when its worker dies (a crash becomes an error message, a kill a
"stopped"). The scheduler's single collector thread is the only caller of :meth:`Backend.poll`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.forkserver
import os
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from .worker import JobSpec, process_main, run_job

Message = tuple[str, str, Any]  # (job id, kind, payload): see tl_engine.jobs.worker
START_METHODS = ("spawn", "forkserver")  # never fork: the server has threads (a forked lock stays locked)
# What the fork server imports once, before any job forks from it (torch and the engine).
FORKSERVER_PRELOAD = ["tl_engine.training.race", "tl_engine.jobs.worker"]


class Backend(Protocol):
    name: str

    def start(self, spec: JobSpec) -> None:
        """Start the job now (the scheduler has already reserved its cores)."""

    def poll(self, timeout: float) -> list[Message]:
        """Messages that arrived, waiting at most ``timeout`` seconds for the first one."""

    def stop(self, job_id: str) -> None:
        """Ask the job to end between two batches; it still reports its partial result."""

    def kill(self, job_id: str) -> None:
        """Nobody watches any more: free the job's cores as soon as possible, results are dropped."""

    def wake(self) -> None:
        """Make a waiting :meth:`poll` return (new work to start)."""

    def shutdown(self) -> None: ...


class ThreadBackend:
    """Jobs as daemon threads of this process: no start-up cost, for tests and tiny machines.

    The training still holds the GIL between torch calls, so pages feel it; use "process" on a server.
    """

    name = "thread"

    def __init__(self) -> None:
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._stops: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self, spec: JobSpec) -> None:
        # setdefault: a Stop that came between "running" and this start must not be lost.
        stop = self._stops.setdefault(spec.job_id, threading.Event())

        def body() -> None:
            try:
                run_job(spec, lambda kind, payload: self._inbox.put((spec.job_id, kind, payload)), stop)
            finally:
                self._stops.pop(spec.job_id, None)

        thread = threading.Thread(target=body, name=f"tl-job-{spec.job_id}", daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def poll(self, timeout: float) -> list[Message]:
        try:
            out = [self._inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._inbox.get_nowait())
        return [m for m in out if m is not None]

    def stop(self, job_id: str) -> None:
        self._stops.setdefault(job_id, threading.Event()).set()

    kill = stop  # a thread cannot be killed; it ends within a batch

    def wake(self) -> None:
        self._inbox.put(None)

    def shutdown(self) -> None:
        for ev in list(self._stops.values()):
            ev.set()
        for t in self._threads:  # they end within a batch; torch's threads must not die under a running op
            t.join(timeout=30)


@dataclass
class _Proc:
    process: Any  # multiprocessing.Process of the chosen context
    conn: multiprocessing.connection.Connection
    stop: Any  # multiprocessing Event
    killed: bool = False
    ended: bool = False
    started: bool = False


class ProcessBackend:
    """One fresh process per job, talking over its own pipe.

    A pipe per job (not one shared Queue): terminating a worker mid-message can only damage its own pipe,
    and a dead worker shows up as end-of-file on it, so a crash is reported instead of waited for forever.
    """

    name = "process"

    def __init__(self, start_method: str | None = None) -> None:
        start_method = start_method or default_start_method()
        if start_method not in START_METHODS:
            raise ValueError(f"start method must be one of {START_METHODS}, got {start_method!r}")
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            # The fork server imports torch and the engine once; each job forks from it, ready to train.
            # Nothing runs in it before a fork, so no OpenMP or CUDA state is copied into the jobs.
            self._ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        self._jobs: dict[str, _Proc] = {}
        self._exiting: list[Any] = []  # processes that said "end" and are tearing down (reaped without waiting)
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)

    def start(self, spec: JobSpec) -> None:
        recv, send = self._ctx.Pipe(duplex=False)
        stop = self._ctx.Event()
        proc = self._ctx.Process(target=process_main, args=(spec, send, stop), name=f"tl-job-{spec.job_id}",
                                 daemon=True)
        job = _Proc(proc, recv, stop)
        with self._lock:  # registered before it starts: a Stop or a closed tab meanwhile is not lost
            self._jobs[spec.job_id] = job
        proc.start()
        send.close()  # only the child holds the write end now: its death is end-of-file here
        with self._lock:
            job.started = True
            if job.killed:
                proc.terminate()

    def poll(self, timeout: float) -> list[Message]:
        self._exiting = [p for p in self._exiting if p.is_alive()]  # is_alive() reaps the finished ones
        with self._lock:
            conns = {j.conn: jid for jid, j in self._jobs.items()}
        out: list[Message] = []
        for ready in multiprocessing.connection.wait([*conns, self._wake_r], timeout):
            if ready is self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                continue
            jid = conns[ready]  # type: ignore[index]
            job = self._jobs[jid]
            while True:
                try:
                    kind, payload = job.conn.recv()
                except (EOFError, OSError):
                    out.extend(self._finish(jid))
                    break
                out.append((jid, kind, payload))
                job.ended = job.ended or kind == "end"
                if not job.conn.poll():
                    break
        return out

    def _finish(self, jid: str) -> list[Message]:
        """The worker's pipe closed: reap it, and report its end if it never did."""
        with self._lock:
            job = self._jobs.pop(jid)
        job.conn.close()
        if job.ended:
            self._exiting.append(job.process)  # interpreter teardown: no reason to hold up other jobs' events
            return []
        job.process.join(timeout=5)  # it died without a word: wait briefly for its exit code
        if job.killed:
            return [(jid, "end", {"status": "stopped", "error": None})]
        return [(jid, "end", {"status": "error", "error": (
            f"The worker process ended unexpectedly (exit code {job.process.exitcode}); the server may be out "
            "of memory. Try fewer training images or a lower resolution.")})]

    def stop(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.stop.set()

    def kill(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.stop.set()
            with self._lock:
                job.killed = True
                if job.started:
                    job.process.terminate()  # SIGTERM: the cores are free in milliseconds, not after a batch

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.killed = True
            if job.started:
                job.process.terminate()
        for job in jobs:
            if job.started:
                job.process.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()


def default_start_method() -> str:
    """forkserver where the platform has it (Linux): measured on a tiny race, a job's first epoch arrives
    1.9 s after submit instead of 3.8 s with spawn, because torch and the engine are imported once."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def warm(name: str) -> bool:
    """Start the fork server of backend ``name`` now, if it has one, without waiting for it.

    The fork server imports torch and the engine (~3.4 s, measured) before its first job can fork; started
    ahead of time (the pages do it once the server has been quiet for a few seconds: tl_ui.jobs), that is off
    the path of the first race a server runs: all three first epochs came 4.3 s sooner (19.7 s -> 15.4 s from
    submit, default race, this 2-core machine). Idempotent: one fork server per process, shared with
    :class:`ProcessBackend`. Returns whether this backend has one."""
    base, _, method = name.partition(":")
    if base != "process" or (method or default_start_method()) != "forkserver":
        return False
    mp.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    multiprocessing.forkserver.ensure_running()  # spawns it and returns; it imports in its own process
    return True


BACKEND_ENV = "TL_RACE_BACKEND"


def backend_name() -> str:
    """The server's backend: env ``TL_RACE_BACKEND``, else "process"."""
    return os.environ.get(BACKEND_ENV, "").strip() or "process"


def make_backend(name: str) -> Backend:
    """"process" (default), "thread", "ray" (imports Ray only now), or "process:spawn" / "process:forkserver"."""
    base, _, method = name.partition(":")
    if base == "process":
        return ProcessBackend(method or default_start_method())
    if base == "thread":
        return ThreadBackend()
    if base == "ray":
        from .ray_backend import RayBackend

        return RayBackend()
    raise ValueError(f"unknown backend {name!r}; choose process, thread or ray")
