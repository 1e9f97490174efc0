"""Every racer on the default race and on the textures set, over seeds: ``benchmarks/results/recipes.json``.

One race per (dataset, seed) with all seven racers (the engine races any number; the page shows up to five),
the classroom defaults otherwise (500 train / 500 validation / 1000 test images, 96 px, 10 epochs, k = 4).
Recorded per dataset and racer, as mean and range (min..max) over the seeds: final test and validation
accuracy, trainable parameters, compute seconds (training + evaluation) and ImageNet agreement (under
ImageNet's BatchNorm statistics, and with the racer's own). Then the forgetting check of issue 18: fine-tune
alone at ``--lr-body`` 0.03 and 0.0003 (the head at 3e-3), same seeds, agreement and accuracy.

Not a test: the numbers depend on the machine and its load (recorded). ``--quick`` races tiny sets to prove the
script runs (and writes to a temporary folder unless ``--out`` is given).

    python -m benchmarks.recipes [--seeds 3] [--datasets fashion-mnist,textures]
    python -m benchmarks.recipes --quick --seeds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tl_engine.config import KNOWN_STRATEGIES, RunConfig

RESULTS = Path(__file__).parent / "results"
DEFAULT = replace(RunConfig(), strategies=KNOWN_STRATEGIES)
QUICK = replace(DEFAULT, train_size=20, val_size=50, test_size=100, epochs=2, resolution=32, head_epochs=1)
FIELDS = ("final_test_acc", "final_val_acc", "trainable_params", "compute_seconds", "imagenet_agreement",
          "imagenet_agreement_own_stats")
FORGET_RATES = (0.03, 0.0003)


def spread(values: list[float | None]) -> dict | None:
    """Mean and range over seeds (None where a racer has no such number)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def race(cfg: RunConfig) -> dict:
    from tl_engine.training import Race

    t0 = time.perf_counter()
    r = Race(cfg)
    list(r)
    res = r.result()
    return {"wall_seconds": time.perf_counter() - t0, "device": res.device,
            "summary": {s: {f: getattr(v, f) for f in FIELDS} | {"agreement_noise": v.imagenet_agreement_noise}
                        for s, v in res.summary.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--datasets", default="fashion-mnist,textures")
    p.add_argument("--quick", action="store_true", help="tiny races: proves the script runs")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    base = QUICK if a.quick else DEFAULT
    out = a.out or (Path(tempfile.mkdtemp()) / "recipes.json" if a.quick else RESULTS / "recipes.json")
    runs = []
    for dataset in a.datasets.split(","):
        for seed in range(a.seeds):
            cfg = replace(base, dataset=dataset, seed=seed)
            runs.append({"dataset": dataset, "seed": seed, **race(cfg)})
            print(f"{dataset} seed {seed}: {runs[-1]['wall_seconds']:.0f} s", flush=True)
    forgetting = []
    for seed in range(a.seeds):
        for lr in FORGET_RATES:
            cfg = replace(base, seed=seed, strategies=("finetune",), lr_body=lr)
            forgetting.append({"seed": seed, "lr_body": lr, **race(cfg)["summary"]["finetune"]})
            print(f"forgetting seed {seed} lr_body {lr}: agreement {forgetting[-1]['imagenet_agreement']}", flush=True)
    table = {d: {s: {f: spread([r["summary"][s][f] for r in runs if r["dataset"] == d]) for f in FIELDS}
                 for s in base.strategies} for d in a.datasets.split(",")}
    forget = {str(lr): {f: spread([r[f] for r in forgetting if r["lr_body"] == lr])
                        for f in ("final_test_acc", "imagenet_agreement", "imagenet_agreement_own_stats")}
              for lr in FORGET_RATES}
    doc = {"config": base.to_dict(), "seeds": a.seeds, "quick": a.quick, "recipes": table, "forgetting": forget,
           "runs": runs, "forgetting_runs": forgetting,
           "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "python": platform.python_version(),
                       "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")
    for d, rows in table.items():
        print(f"\n{d}: racer, final test accuracy mean (min..max), trainable, compute s, ImageNet agreement")
        for s, v in rows.items():
            acc, agree = v["final_test_acc"], v["imagenet_agreement"]
            print(f"  {s:<9} {100 * acc['mean']:5.1f} % ({100 * acc['min']:.1f}..{100 * acc['max']:.1f})  "
                  f"{v['trainable_params']['mean']:>10,.0f}  {v['compute_seconds']['mean']:6.1f} s  "
                  + ("–" if agree is None else f"{100 * agree['mean']:.0f} %"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
