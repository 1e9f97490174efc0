"""One race: config checks, torch helpers, one strategy's life, and the round-robin race itself."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "Race": "race",
    "fit_to_dataset": "checks",
    "prepare_data": "race",
    "resolve_device": "torchutil",
    "run_race": "race",
    "usable_cpus": "machine",
    "validate": "checks",
    "warmup_cosine": "torchutil",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
