"""How much of a race's curve is the seed, and how much is float summation order.

The default race, same code, same seed, run with 1 and with 2 torch threads (a different order of the float sums
inside every convolution, nothing else) and, for one seed, twice with 2 threads (is the same setting
bit-reproducible?). Why: `race.json` (2026-11-23) and `recipes.json` (2026-12-07) gave scratch 67.7 % and 71.7 %
on seed 2 while frozen and fine-tune agreed to the last digit; this measures whether summation order alone can do
that. Writes ``benchmarks/results/float_order.json``: each run's per-epoch test accuracy, and per strategy the
largest epoch-wise and final differences between 1 and 2 threads over the seeds.

    python -m benchmarks.float_order [--seeds 3]
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import cpu, write_results
from tl_engine.config import RunConfig

OUT = Path(__file__).parent / "results" / "float_order.json"
STRATEGIES = ("scratch", "frozen", "finetune")
BASE = replace(RunConfig(), device="cpu", strategies=STRATEGIES)


def curves(seed: int, threads: int) -> dict[str, list[float]]:
    from tl_engine.training import Race

    race = Race(replace(BASE, seed=seed), threads=threads)
    list(race)
    return {s: [e.test_acc for e in race.result().epochs if e.strategy == s] for s in STRATEGIES}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.float_order")
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args(argv)
    t0, runs, by = time.time(), [], {}
    for seed in range(a.seeds):
        for threads in (1, 2):
            by[seed, threads] = curves(seed, threads)
            runs.append({"seed": seed, "threads": threads, "curves": by[seed, threads]})
            print(runs[-1], flush=True)
    same = curves(a.seeds - 1, 2) == by[a.seeds - 1, 2]  # the same seed and thread count again
    gaps = {}
    for s in STRATEGIES:
        pairs = [(by[seed, 1][s], by[seed, 2][s]) for seed in range(a.seeds)]
        gaps[s] = {"max_epoch_gap_points": round(100 * max(abs(x - y) for one, two in pairs
                                                              for x, y in zip(one, two)), 1),
                   "final_gap_points": [round(100 * abs(one[-1] - two[-1]), 1) for one, two in pairs]}
    write_results(OUT, {"config": BASE.to_dict(), "runs": runs, "repeat_seed": a.seeds - 1,
                        "repeat_identical": same, "gaps": gaps,
                        "machine": {"platform": platform.platform(), "cpu": cpu(),
                                    "when": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.time() - t0)}})
    print(gaps, "repeat identical:", same)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
