"""A quick forgetting check: fine-tune at lr_body 0.03 vs 0.0003 (head at 3e-3) beside frozen, 3 seeds, small race.

200 training / 100 validation / 200 test Fashion-MNIST images, 96 px, 3 epochs, k = 4, MobileNetV2, one thread.
Prints one line per racer: seed, lr_body, racer, test accuracy, ImageNet agreement (ImageNet's BatchNorm
statistics), its noise, agreement with the racer's own statistics, compute seconds; and writes
``benchmarks/results/forgetting_small.json``. The full-size version over 3 seeds is part of benchmarks/recipes.py.

    python -m benchmarks.forgetting_small [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from tl_engine.config import RunConfig

OUT = Path(__file__).parent / "results" / "forgetting_small.json"


def main(argv: list[str] | None = None) -> int:
    from tl_engine.training import Race

    p = argparse.ArgumentParser(prog="python -m benchmarks.forgetting_small")
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args(argv)
    rows = []
    for seed in range(a.seeds):
        for lr in (0.03, 0.0003):
            cfg = RunConfig(train_size=200, val_size=100, test_size=200, epochs=3, device="cpu",
                            strategies=("frozen", "finetune"), lr_body=lr, seed=seed)
            r = Race(cfg, threads=1)
            list(r)
            for s, v in r.result().summary.items():
                rows.append({"seed": seed, "lr_body": lr, "racer": s, "test_acc": v.final_test_acc,
                             "imagenet_agreement": v.imagenet_agreement, "noise": v.imagenet_agreement_noise,
                             "own_stats": v.imagenet_agreement_own_stats, "compute_seconds": v.compute_seconds})
                print(*rows[-1].values(), flush=True)
    OUT.write_text(json.dumps({"rows": rows, "load_avg_1m": os.getloadavg()[0],
                               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
