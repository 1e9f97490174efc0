"""What outlives a process: the SQLite results store keyed by RunConfig, measured durations, atomic files."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "ResultStore": "results",
    "Timings": "timings",
    "check_writable": "files",
    "config_id": "results",
    "default_path": "results",
    "file_stamp": "files",
    "is_disk_full": "files",
    "os_reason": "files",
    "timings_path": "timings",
    "write_json_atomic": "files",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
