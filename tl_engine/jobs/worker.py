"""What one job does, wherever it runs: a race or a sweep, reported as a stream of plain messages.

A job's whole conversation with the :class:`~tl_engine.jobs.scheduler.Scheduler` is ``emit(kind, payload)`` with
payloads made only of JSON types, so the same body runs in a thread, in a spawned process (over a pipe) or
in a Ray task (over a Ray queue). The messages, in order:

- ``("worker", {...})``: a process's pid, torch threads and cores (see :func:`worker_info`);
- ``("total", n)``: a sweep's planned runs (races know theirs from the config);
- ``("event", EpochResult.to_dict())``: a race's epoch;
- ``("progress", {...})`` and ``("run", {"result": RaceResult.to_dict(), "reused": bool})``: a sweep's;
- ``("result", RaceResult.to_dict())``: a race's result, finished or stopped (sent as soon as the last
  epoch is in: a page shows the verdict while the models below are still being written);
- ``("models", folder)``: with ``keep_models``, the folder :func:`tl_engine.inspect.keep.save_trained` filled
  (``<strategy>.pt`` TorchScript files, ``inside.npz``);
- ``("end", {"status": "done" | "stopped" | "error", "error": message or None})``: always last.

A finished race is written to the results store *before* "end", so a page that sees "done" and asks again
is answered from the store. This module imports no torch at the top: a spawned worker sets its thread
budget in the environment first, and torch reads OMP_NUM_THREADS when it loads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..config import RunConfig
from ..errors import StoreError, UserError

log = logging.getLogger(__name__)

Emit = Callable[[str, Any], None]
ENV_PREFIX = "TL_RACE_"


class StopFlag(Protocol):
    """``threading.Event``, ``multiprocessing.Event`` or anything else with ``is_set``."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs, picklable and torch-free."""

    job_id: str
    kind: str  # "race" | "sweep"
    cfg: dict  # RunConfig.to_dict()
    threads: int  # torch threads this job may use (its share of the cores)
    store_path: str
    keep_models: bool = False
    models_dir: str | None = None  # where to write TorchScript files (keep_models only)
    sweep_kind: str | None = None  # "freeze" | "size" | "domain"
    sweep_opts: dict = field(default_factory=dict)
    cpus: tuple[int, ...] = ()  # cores to pin a worker process to (empty: leave the affinity alone)
    gpu: int | None = None  # CUDA device a worker process should see (None: leave CUDA_VISIBLE_DEVICES alone)
    env: dict = field(default_factory=dict)  # the server's TL_RACE_* settings when the job was started


def project_env() -> dict[str, str]:
    """The server's ``TL_RACE_*`` variables (data folder, uploads...): a worker forked from a long-lived fork
    server would otherwise see them as they were when that server started."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def apply_env(env: dict[str, str]) -> None:
    for k in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in env]:
        del os.environ[k]
    os.environ.update(env)


def run_job(spec: JobSpec, emit: Emit, stop: StopFlag) -> None:
    """Run the job to its end; never raises (errors become an "end" message a person can read)."""
    status, error = "error", None
    try:
        status = _race(spec, emit, stop) if spec.kind == "race" else _sweep(spec, emit, stop)
    except UserError as e:  # written for people: shown as it is
        error = str(e)
    except Exception as e:  # a bug: logged with its traceback where the worker runs, summarised for the page
        log.exception("job %s (%s) failed", spec.job_id, spec.kind)
        error = f"The {spec.kind} failed unexpectedly: {type(e).__name__}: {e}"
    emit("end", {"status": status, "error": error})


def _race(spec: JobSpec, emit: Emit, stop: StopFlag) -> str:
    from ..store import ResultStore
    from ..training import Race

    cfg = RunConfig.from_dict(spec.cfg)
    race = Race(cfg, stop, keep_models=spec.keep_models, threads=spec.threads)  # type: ignore[arg-type]
    for event in race:
        emit("event", event.to_dict())
    result = race.result()
    if result.completed:
        try:
            ResultStore(spec.store_path).put(result, kind="race")
        except StoreError as e:  # a damaged store must not turn a finished race into an error
            log.warning("finished race not stored: %s", e)
    # The result first: a page shows the verdict now, not after the exports below (seconds of compute).
    emit("result", result.to_dict())
    if result.completed and spec.keep_models and spec.models_dir:
        from ..inspect import save_trained  # TorchScript per strategy + what the look-inside views need

        emit("models", save_trained(race, spec.models_dir))
    return "done" if result.completed else "stopped"


def _sweep(spec: JobSpec, emit: Emit, stop: StopFlag) -> str:
    from ..experiments import plan, run_sweep
    from ..store import ResultStore

    cfg = RunConfig.from_dict(spec.cfg)
    kind, opts = spec.sweep_kind or "", dict(spec.sweep_opts)
    total = len(plan(kind, cfg, **opts))
    emit("total", total)
    store: ResultStore | None = ResultStore(spec.store_path)
    try:
        store.get(cfg)  # probe once: a damaged store means running without reuse, not failing
    except StoreError as e:
        log.warning("sweep runs without the results store: %s", e)
        store = None

    def progress(p) -> None:
        d = asdict(p)
        d["current"] = p.current.to_dict() if p.current is not None else None
        emit("progress", d)

    n = 0
    for run in run_sweep(kind, cfg, store, stop, on_run=progress, **opts):  # type: ignore[arg-type]
        emit("run", {"result": run.result.to_dict(), "reused": run.reused})
        n += 1
    return "done" if n == total else "stopped"


def worker_info() -> dict:
    """Where a job runs, as the worker itself sees it (the thread budget is checked against this)."""
    import torch

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {"pid": os.getpid(), "ppid": os.getppid(), "torch_threads": torch.get_num_threads(), "cpus": cpus,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def process_main(spec: JobSpec, conn, stop: StopFlag) -> None:
    """Entry point of a worker process: set its thread budget and cores, run the job, send every message.

    Runs before torch is imported in this process (spawn), so OMP_NUM_THREADS takes effect when it loads.
    """
    apply_env(spec.env)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(spec.threads)
    if spec.gpu is not None:  # the spec counts the GPUs the server sees; keep an existing mask's numbering
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        os.environ["CUDA_VISIBLE_DEVICES"] = visible[spec.gpu] if spec.gpu < len(visible) else str(spec.gpu)
    if spec.cpus and hasattr(os, "sched_setaffinity"):
        # Pinned to this job's own cores: even code that asks usable_cpus() (a sweep's races) stays inside it.
        os.sched_setaffinity(0, spec.cpus)
    logging.basicConfig(level=logging.INFO, format=f"[worker {spec.job_id}] %(levelname)s %(message)s")
    import torch

    torch.set_num_threads(spec.threads)
    try:
        conn.send(("worker", worker_info()))
        run_job(spec, lambda kind, payload: conn.send((kind, payload)), stop)
    except (BrokenPipeError, EOFError):  # the server went away or dropped this job: nobody to tell
        pass
    finally:
        conn.close()
