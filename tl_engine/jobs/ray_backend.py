"""The scheduler's jobs as Ray tasks: the same messages, the same store, on a Ray cluster or a local one.

Optional (``pip install ray``); imported only when ``backend="ray"`` or env ``TL_RACE_BACKEND=ray`` is chosen.
``ray.init(address=$RAY_ADDRESS or None)``: without the variable a local Ray starts inside this server.
Each job is one task asking for ``num_cpus`` = its thread budget (and one GPU when the scheduler gave it one),
so Ray's own bookkeeping keeps the sum within the cluster's cores. Workers stream their messages into a
Ray queue (an actor) that the scheduler's collector thread reads; Stop is a flag in a small actor that the
task polls. The results store path must be one the workers can reach (same machine, or a shared disk).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import ray
from ray.util.queue import Empty, Queue

from .worker import JobSpec, apply_env, run_job, worker_info

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
POLL_STOP_S = 0.2  # how often a task asks whether it was stopped (a batch takes longer than this)


@ray.remote(num_cpus=0)
class _StopFlags:
    """Which jobs were asked to stop (one tiny actor for every job of a scheduler)."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()

    def set(self, job_id: str) -> None:
        self.stopped.add(job_id)

    def is_set(self, job_id: str) -> bool:
        return job_id in self.stopped


class _PolledStop:
    """A threading.Event mirror of the job's remote flag, so the race checks a local bool between batches."""

    def __init__(self, flags, job_id: str) -> None:
        self.event, self.done = threading.Event(), threading.Event()

        def watch() -> None:
            while not self.done.wait(POLL_STOP_S):
                with contextlib.suppress(Exception):  # the scheduler went away: keep running, nobody reads
                    if ray.get(flags.is_set.remote(job_id)):
                        self.event.set()
                        return

        threading.Thread(target=watch, daemon=True).start()

    def is_set(self) -> bool:
        return self.event.is_set()


@ray.remote(max_retries=0)
def _ray_job(spec: JobSpec, queue: Queue, flags) -> None:
    import torch

    apply_env(spec.env)
    torch.set_num_threads(spec.threads)  # Ray reuses worker processes: set it per task, not per process
    stop = _PolledStop(flags, spec.job_id)
    emit = lambda kind, payload: queue.put((spec.job_id, kind, payload))  # noqa: E731
    try:
        emit("worker", worker_info())
        run_job(spec, emit, stop)
    finally:
        stop.done.set()


class RayBackend:
    name = "ray"

    def __init__(self) -> None:
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
            ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path}})  # workers import tl_engine from here
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._flags = _StopFlags.remote()
        self._refs: dict[str, Any] = {}  # job id -> ObjectRef of its task
        self._ended: set[str] = set()
        self._killed: set[str] = set()
        self._lock = threading.Lock()

    def start(self, spec: JobSpec) -> None:
        # Ray places tasks by num_cpus; pinning to the scheduler's core ids would mean nothing on a cluster.
        spec = JobSpec(**{**spec.__dict__, "cpus": ()})
        opts: dict[str, Any] = {"num_cpus": spec.threads}
        if spec.gpu is not None:
            opts["num_gpus"] = 1  # Ray sets CUDA_VISIBLE_DEVICES for the task itself
            spec = JobSpec(**{**spec.__dict__, "gpu": None})
        ref = _ray_job.options(**opts).remote(spec, self._queue, self._flags)
        with self._lock:
            self._refs[spec.job_id] = ref
            killed = spec.job_id in self._killed  # a closed tab between "running" and this start
        if killed:
            ray.cancel(ref, force=True)

    def _drain(self, timeout: float) -> list:
        out = []
        try:
            out.append(self._queue.get(block=timeout > 0, timeout=timeout or None))
            out.extend(self._queue.get_nowait_batch(self._queue.qsize()))
        except Empty:
            pass
        self._ended.update(jid for jid, kind, _ in out if kind == "end")
        return out

    def poll(self, timeout: float) -> list:
        out = self._drain(min(timeout, 0.1))  # short: new jobs are started between two polls
        with self._lock:
            refs = dict(self._refs)
        if not refs:
            return out
        done, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=0)
        if done:
            out += self._drain(0)  # a finished task's messages are all in the queue by now
        for jid, ref in refs.items():
            if ref not in done:
                continue
            with self._lock:
                self._refs.pop(jid, None)
            if jid in self._ended:
                self._ended.discard(jid)
                continue
            try:
                ray.get(ref)
                error = "The Ray task ended without reporting its end."
            except Exception as e:  # a crashed or cancelled worker
                error = f"The Ray task failed: {type(e).__name__}: {e}"
            status = "stopped" if jid in self._killed else "error"
            out.append((jid, "end", {"status": status, "error": None if status == "stopped" else error}))
        return out

    def stop(self, job_id: str) -> None:
        self._flags.set.remote(job_id)

    def kill(self, job_id: str) -> None:
        with self._lock:
            ref = self._refs.get(job_id)
            self._killed.add(job_id)
        self.stop(job_id)
        if ref is not None:
            ray.cancel(ref, force=True)  # ends the worker process: its cores are free at once

    def wake(self) -> None:
        pass  # poll() returns every 0.1 s anyway

    def shutdown(self) -> None:
        with self._lock:
            refs = list(self._refs.values())
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        with contextlib.suppress(Exception):
            self._queue.shutdown()
        with contextlib.suppress(Exception):
            ray.kill(self._flags)
        if self._owns_ray:
            ray.shutdown()
