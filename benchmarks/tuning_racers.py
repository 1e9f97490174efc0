"""The added racers' knobs, chosen on validation: gradual's h and body-rate ratio, LoRA's rank, fine-tune's body rate.

    python -m benchmarks.tuning_racers                 # 3 seeds on the default race (hours on a 2-core CPU)
    python -m benchmarks.tuning_racers --quick --seeds 1   # tiny races: proves the script runs

The criterion, declared before running: each racer's setting is chosen by its mean **final validation
accuracy** over the seeds, as in ``benchmarks/tuning.py`` (docs/tuning.md): what a person takes home is the
network after the last epoch. The page shows whole curves, so the mean validation accuracy over the epochs (a
dip lowers it) and the largest epoch-to-epoch drop of validation accuracy are reported beside it for every
grid point, but never choose. A best within the noise of the runner-up (2 binomial standard errors of the
difference on the validation images, or the seeds' paired 95 % interval) is reported as "within noise". Test
accuracy is read once, for the chosen setting only. Races come from the results store when they ran before.

Grid (each racer alone, default race: fashion-mnist, 500 / 500 / 1,000 images, 96 px, 10 epochs, k = 4):
- gradual: ``head_epochs`` h in {1, 2, 3} x ``gradual_ratio`` in {0.03, 0.1, 0.3} (of ``lr_body`` = 3e-3);
- lora: ``lora_rank`` in {2, 4, 8} (adapters at ``lr_body``);
- finetune: ``lr_body`` in {3e-4, 1e-3, 3e-3} (0.1x, 0.3x, 1x the head's 3e-3): the dip of issue 18.

Writes ``benchmarks/results/tuning_racers.json`` (``--quick``: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tl_engine.config import RaceResult, RunConfig
from tl_engine.experiments import Sample, compare
from tl_engine.store import ResultStore

RESULTS = Path(__file__).parent / "results"
BASE = RunConfig()
QUICK = replace(BASE, train_size=20, val_size=50, test_size=100, epochs=3, resolution=32)
GRID: dict[str, list[dict]] = {
    "gradual": [{"head_epochs": h, "gradual_ratio": r} for h in (1, 2, 3) for r in (0.03, 0.1, 0.3)],
    "lora": [{"lora_rank": r} for r in (2, 4, 8)],
    "finetune": [{"lr_body": lr} for lr in (3e-4, 1e-3, 3e-3)],
}


def run(cfg: RunConfig, store: ResultStore) -> RaceResult:
    got = store.get(cfg)
    if got is not None:
        return got
    from tl_engine.training import Race

    r = Race(cfg)
    list(r)
    res = r.result()
    store.put(res, kind="tuning")
    return res


def curve_numbers(res: RaceResult, s: str) -> dict:
    val = [e.val_acc for e in res.epochs if e.strategy == s]
    return {"final_val": val[-1], "mean_val": statistics.fmean(val),
            "worst_drop": max((a - b for a, b in zip(val, val[1:])), default=0.0),
            "final_test": res.summary[s].final_test_acc}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tuning_racers", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    base = QUICK if a.quick else BASE
    out = Path(tempfile.mkdtemp()) / "tuning_racers.json" if a.quick else RESULTS / "tuning_racers.json"
    store = ResultStore(out.parent / "store.sqlite") if a.quick else ResultStore()
    report = {}
    for s, grid in GRID.items():
        points = []
        for setting in grid:
            per_seed = {seed: curve_numbers(run(replace(base, strategies=(s,), seed=seed, **setting), store), s)
                        for seed in range(a.seeds)}
            points.append({"setting": setting, "seeds": per_seed,
                           **{f"mean_{k}": statistics.fmean(v[k] for v in per_seed.values())
                              for k in ("final_val", "mean_val", "worst_drop")}})
            print(f"{s} {setting}: final val {100 * points[-1]['mean_final_val']:.1f} %, mean over epochs "
                  f"{100 * points[-1]['mean_mean_val']:.1f} %, worst drop {100 * points[-1]['mean_worst_drop']:.1f}",
                  flush=True)
        ranked = sorted(points, key=lambda q: -q["mean_final_val"])
        best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
        gap = None
        if second is not None:
            g = compare(Sample.accuracy({k: v["final_val"] for k, v in best["seeds"].items()}, base.val_size),
                        Sample.accuracy({k: v["final_val"] for k, v in second["seeds"].items()}, base.val_size))
            gap = {"margin": g.margin, "noise": g.noise, "within_noise": not g.clear}
        report[s] = {"points": points, "chosen": best["setting"], "vs_runner_up": gap,
                     "chosen_test_acc": statistics.fmean(v["final_test"] for v in best["seeds"].values())}
    doc = {"criterion": "mean final validation accuracy over seeds (mean over epochs and worst drop reported)",
           "config": base.to_dict(), "seeds": a.seeds, "quick": a.quick, "racers": report,
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")
    for s, r in report.items():
        print(f"{s}: chosen {r['chosen']} (vs runner-up: {r['vs_runner_up']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
