"""Which k the freeze sweep chose on validation for this dataset, when one is stored (a sentence, pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tl_engine.config import RaceResult, RunConfig
from tl_engine.experiments import points, sweep_verdict


def chosen_k_note(stored: Sequence[RaceResult], cfg: RunConfig) -> str | None:
    """"The freeze sweep on this dataset chose k = 3 on validation ..." or None when no freeze sweep is stored.

    Only freeze-sweep races on the same dataset, backbone and training size count; of their settings (epochs,
    resolution, learning rates ...) the group with the most races is read, and its verdict is the sweep's own
    (chosen on validation, checked on test with the noise rule).
    """
    mine = [r for r in stored if r.extras.get("kind") == "freeze" and r.completed
            and (r.config.dataset, r.config.backbone, r.config.train_size)
            == (cfg.dataset, cfg.backbone, cfg.train_size)]
    groups: dict[RunConfig, list[RaceResult]] = {}
    for r in mine:
        groups.setdefault(replace(r.config, seed=0, frozen_stages=0, strategies=()), []).append(r)
    if not groups:
        return None
    setting, runs = max(groups.items(), key=lambda kv: len(kv[1]))
    ft = points("freeze", runs).get("finetune", [])
    if len(ft) < 2:
        return None
    v = sweep_verdict("freeze", {"finetune": ft})
    best = v.numbers.get("best")
    if best is None:
        return None
    n = int(v.numbers.get("n_seeds", 0))
    here = f"; this race uses k = {cfg.frozen_stages}" if f"k = {cfg.frozen_stages}" != str(best).split(" (")[0] else ""
    return (f"The freeze sweep stored for this dataset ({len(ft)} depths, {n} seed{'s' if n != 1 else ''}, "
            f"{setting.epochs} epochs) chose {best} on validation ({100 * v.numbers['best_val_acc']:.1f} %); "
            f"on test: {v.status}{here}.")
