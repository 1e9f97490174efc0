"""Many races with seeds: the sweeps, the noise rule and the verdicts."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "CLAIM": "verdicts",
    "CLAIM_LARGE": "verdicts",
    "CLAIM_SMALL": "verdicts",
    "DOMAIN_PER_CLASS": "sweep",
    "DomainGain": "verdicts",
    "KINDS": "sweep",
    "Point": "noise",
    "Progress": "sweep",
    "SEED_CHOICES": "sweep",
    "SIZES": "sweep",
    "Sample": "noise",
    "SweepRun": "sweep",
    "Verdict": "verdicts",
    "best_of": "verdicts",
    "compare": "noise",
    "compare_curves": "verdicts",
    "csv_text": "sweep",
    "curves_from_events": "verdicts",
    "domain_gains": "verdicts",
    "gap_noise": "noise",
    "noise_sentence": "noise",
    "plan": "sweep",
    "points": "sweep",
    "pts": "noise",
    "run_cost": "sweep",
    "run_sweep": "sweep",
    "sweep_verdict": "sweep",
    "swept_value": "sweep",
    "to_csv": "sweep",
    "x_of": "sweep",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
