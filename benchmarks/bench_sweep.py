"""`make bench` (second part): the freeze-depth sweep against one default race beside it, and reuse from the store.

Targets (engine issue #4, 2-core CPU): the whole freeze sweep (fine-tune at k = 7..0 plus one scratch race) in
at most 4x the wall time of one default race run just before it in the same process; repeating it, answered
from the store, in under 2 s. Uses a fresh temporary store, so nothing is reused by accident.

    python -m benchmarks.bench_sweep
    python -m benchmarks.bench_sweep --quick     # smoke test: tiny races, writes to a temp folder
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import write_results
from tl_engine.config import RunConfig
from tl_engine.experiments import run_sweep
from tl_engine.store import ResultStore
from tl_engine.training import run_race

RESULTS = Path(__file__).parent / "results"
QUICK = replace(RunConfig(), train_size=20, val_size=100, test_size=100, epochs=2, resolution=32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny races; writes to a temp folder")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default benchmarks/results/sweep.json)")
    a = ap.parse_args()
    cfg = QUICK if a.quick else RunConfig()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results.sqlite")
        t0 = time.perf_counter()
        race = run_race(cfg)
        race_s = time.perf_counter() - t0
        print(f"one race (the baseline): {race_s:.1f} s", flush=True)

        t0 = time.perf_counter()
        rows = []
        for run in run_sweep("freeze", cfg, store):
            s = run.config.strategies[0]
            v = run.summary[s]
            rows.append({"k": run.config.frozen_stages if s == "finetune" else None, "strategy": s,
                         "final_test_acc": v.final_test_acc, "final_val_acc": v.final_val_acc,
                         "trainable_params": v.trainable_params, "train_seconds": v.train_seconds,
                         "eval_seconds": v.eval_seconds, "compute_seconds": v.compute_seconds, "reused": run.reused})
            k = "-" if rows[-1]["k"] is None else rows[-1]["k"]
            print(f"  {s:>8} k={k}  test {v.final_test_acc:6.1%}  val {v.final_val_acc:6.1%}  trainable "
                  f"{v.trainable_params:>9,}  {v.train_seconds:6.1f} s train + {v.eval_seconds:5.1f} s eval",
                  flush=True)
        sweep_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        again = list(run_sweep("freeze", cfg, store))
        repeat_s = time.perf_counter() - t0
    fresh = not any(r["reused"] for r in rows)
    reused = all(r.reused for r in again)
    ratio = sweep_s / race_s
    print(f"freeze sweep: {sweep_s:.1f} s = {ratio:.2f}x one race;  repeated from the store: {repeat_s:.2f} s "
          f"({'all' if reused else 'NOT all'} reused)")
    checks = {"freeze sweep <= 4x one race": ratio <= 4 and fresh, "repeated sweep < 2 s": repeat_s < 2 and reused}
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    out = {"config": cfg.to_dict(), "quick": a.quick, "race_seconds": race_s,
           "race_final_test_acc": {s: v.final_test_acc for s, v in race.summary.items()},
           "sweep_seconds": sweep_s, "ratio": ratio, "repeat_seconds": repeat_s, "all_reused": reused, "runs": rows,
           "checks": checks, "when": time.strftime("%Y-%m-%d %H:%M"), "loadavg_before": load_before,
           "loadavg_after": os.getloadavg()}
    path = a.out or (Path(tempfile.gettempdir()) / "tl-bench" / "sweep.json" if a.quick else RESULTS / "sweep.json")
    write_results(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
