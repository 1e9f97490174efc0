"""`make bench` (second part): the freeze-depth sweep against one default race, and reuse from the store.

Targets (engine issue #4, 2-core CPU): the whole freeze sweep (fine-tune at k = 7..0 plus one
scratch race) in at most 4x the wall time of one default race; repeating it, answered from the
store, in under 2 s. Uses a fresh temporary store so nothing is reused by accident.

    python -m benchmarks.bench_sweep
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tl_engine.config import RunConfig
from tl_engine.store import ResultStore
from tl_engine.sweep import run_sweep
from tl_engine.train import run_race

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    cfg = RunConfig()
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results.sqlite")
        t0 = time.perf_counter()
        run_race(cfg)
        race_s = time.perf_counter() - t0
        print(f"one default race: {race_s:.1f} s", flush=True)

        t0 = time.perf_counter()
        rows = []
        for run in run_sweep("freeze", cfg, store):
            s = run.config.strategies[0]
            rows.append({"k": run.config.frozen_stages if s == "finetune" else None, "strategy": s,
                         "final_test_acc": run.summary[s]["final_test_acc"],
                         "trainable_params": run.summary[s]["trainable_params"],
                         "compute_seconds": run.summary[s]["compute_seconds"]})
            k = "-" if rows[-1]["k"] is None else rows[-1]["k"]
            print(f"  {s:>8} k={k}  acc {rows[-1]['final_test_acc']:6.1%}  "
                  f"trainable {rows[-1]['trainable_params']:>9,}  {rows[-1]['compute_seconds']:6.1f} s", flush=True)
        sweep_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        again = list(run_sweep("freeze", cfg, store))
        repeat_s = time.perf_counter() - t0
    reused = all(r.reused for r in again)
    ratio = sweep_s / race_s
    print(f"freeze sweep: {sweep_s:.1f} s = {ratio:.2f}x one race;  repeated from the store: {repeat_s:.2f} s "
          f"({'all' if reused else 'NOT all'} reused)")
    checks = {"freeze sweep <= 4x one race": ratio <= 4, "repeated sweep < 2 s": repeat_s < 2 and reused}
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep.json").write_text(json.dumps(
        {"race_seconds": race_s, "sweep_seconds": sweep_s, "ratio": ratio, "repeat_seconds": repeat_s,
         "runs": rows, "checks": checks, "when": time.strftime("%Y-%m-%d %H:%M")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
