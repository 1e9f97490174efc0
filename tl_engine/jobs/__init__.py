"""The server's job queue: job state, worker processes, backends (process, thread, Ray) and the scheduler."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "JobSnapshot": "state",
    "Scheduler": "scheduler",
    "backend_name": "backends",
    "run_sweep_on": "sweep_remote",
    "warm": "backends",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
