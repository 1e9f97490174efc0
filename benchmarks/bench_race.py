"""`make bench`: the default race against the textbook implementation, and the teaching numbers over seeds.

For each seed (default 3: seeds 0, 1, 2) the engine race and then the textbook race (benchmarks/textbook.py)
run, each in its own fresh interpreter so that its peak memory (ru_maxrss) is its own; the engine/textbook
wall-time ratio is taken per seed, from two runs side by side. Recorded, as mean and range (min..max) over the
seeds: per strategy the final and epoch-1 test accuracy and the compute seconds split into training and
evaluation; the race's wall time, its first-epoch time (until all three strategies' epoch 1 is done, from
before the race is created: data preparation and weight loading included), peak RSS; the textbook's wall
time and the speed-up. Prints the targets of the engine issue and writes ``benchmarks/results/race.json``.
Not a test: the numbers depend on the machine; measure on a quiet one (the load average is recorded).

    python -m benchmarks.bench_race [--seeds 3] [--skip-textbook]
    python -m benchmarks.bench_race --quick      # smoke test: tiny races, writes to a temp folder
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import cpu, write_results
from tl_engine.config import STRATEGY_NAMES, RunConfig

RESULTS = Path(__file__).parent / "results"
DEFAULT = RunConfig()  # fashion-mnist, 500 train / 500 val / 1000 test, 96 px, 10 epochs, k=4
QUICK = replace(DEFAULT, train_size=20, val_size=100, test_size=100, epochs=2, resolution=32)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def part_engine(cfg: RunConfig) -> dict:
    import torchvision.models  # noqa: F401  (imported before the clock, as benchmarks.textbook does)

    from tl_engine.training import Race

    t0 = time.perf_counter()
    race = Race(cfg)
    first_epoch = None
    for e in race:
        if first_epoch is None and e.epoch == 1 and sum(x.epoch == 1 for x in race.events) == len(cfg.strategies):
            first_epoch = time.perf_counter() - t0
    result = race.result()
    wall = time.perf_counter() - t0
    epochs = result.epochs
    return {"wall_seconds": wall, "first_epoch_seconds": first_epoch, "peak_mb": _peak_mb(), "device": result.device,
            "completed": result.completed,
            "strategies": {s: {"final_test_acc": v.final_test_acc,
                               "epoch1_test_acc": next(e.test_acc for e in epochs if e.strategy == s and e.epoch == 1),
                               "train_seconds": v.train_seconds, "eval_seconds": v.eval_seconds,
                               "compute_seconds": v.compute_seconds, "trainable_params": v.trainable_params}
                           for s, v in result.summary.items()},
            "frozen_epoch_seconds": [e.seconds for e in epochs if e.strategy == "frozen"],
            "curves": {s: [e.test_acc for e in epochs if e.strategy == s] for s in result.summary}}


def part_textbook(cfg: RunConfig) -> dict:
    from benchmarks.textbook import textbook_race

    t0 = time.perf_counter()
    out = textbook_race(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    frozen = out["frozen"]["epochs"]
    return {"wall_seconds": time.perf_counter() - t0, "peak_mb": _peak_mb(),
            "frozen_epoch_seconds": [e["train_seconds"] + e["eval_seconds"] for e in frozen],
            "strategies": {s: {k: v for k, v in r.items() if k != "epochs"} for s, r in out.items()}}


def child(part: str, cfg: RunConfig) -> dict:
    """Run one part in a fresh interpreter and return its JSON (stdout's last line)."""
    print(f"-- {part}, seed {cfg.seed} ...", flush=True)
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_race", "--part", part, "--config",
                        json.dumps(cfg.to_dict())], stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict:
    """Mean and range of a list of numbers (what docs/benchmarks.md quotes)."""
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict, f: str = ".1%") -> str:
    return f"{s['mean']:{f}} ({s['min']:{f}}..{s['max']:{f}})"


def report(engine: list[dict], textbook: list[dict]) -> dict:
    names = [s for s in STRATEGY_NAMES if s in engine[0]["strategies"]]
    per = {s: {k: spread([r["strategies"][s][k] for r in engine])
               for k in ("final_test_acc", "epoch1_test_acc", "train_seconds", "eval_seconds", "compute_seconds")}
           for s in names}
    out: dict = {"strategies": per,
                 "wall_seconds": spread([r["wall_seconds"] for r in engine]),
                 "first_epoch_seconds": spread([r["first_epoch_seconds"] for r in engine]),
                 "peak_rss_mb": spread([r["peak_mb"] for r in engine])}
    rows = [f"seeds {len(engine)}: mean (min..max)"]
    for s in names:
        p = per[s]
        rows.append(f"  {s:<9} final test {fmt(p['final_test_acc'])}   epoch 1 {fmt(p['epoch1_test_acc'])}   "
                    f"train {fmt(p['train_seconds'], '.1f')} s + eval {fmt(p['eval_seconds'], '.1f')} s")
    rows.append(f"engine race wall time  {fmt(out['wall_seconds'], '.1f')} s;  first epoch of all three at "
                f"{fmt(out['first_epoch_seconds'], '.1f')} s;  peak RSS {fmt(out['peak_rss_mb'], '.0f')} MB")
    mean = {s: per[s]["final_test_acc"]["mean"] for s in names}
    first = {s: per[s]["epoch1_test_acc"]["mean"] for s in names}
    checks = {"first epoch of all three within 10 s (every seed)": out["first_epoch_seconds"]["max"] <= 10,
              "peak memory under 3 GB (every seed)": out["peak_rss_mb"]["max"] < 3072}
    if set(names) == set(STRATEGY_NAMES):
        checks["story: frozen far ahead of scratch after epoch 1 (mean)"] = first["frozen"] >= first["scratch"] + 0.2
        checks["story: fine-tune >= frozen > scratch at the end (mean)"] = (
            mean["finetune"] >= mean["frozen"] > mean["scratch"])
        checks["story: scratch well above chance (mean)"] = mean["scratch"] > 0.3
    if textbook:
        pairs = list(zip(engine, textbook))  # side by side: same seed, run one after the other
        ratio = spread([t["wall_seconds"] / e["wall_seconds"] for e, t in pairs])
        fz = spread([sorted(t["frozen_epoch_seconds"])[len(t["frozen_epoch_seconds"]) // 2]
                     / sorted(e["frozen_epoch_seconds"])[len(e["frozen_epoch_seconds"]) // 2] for e, t in pairs])
        tb = {s: {k: spread([t["strategies"][s][k] for t in textbook])
                  for k in ("final_test_acc", "epoch1_test_acc", "train_seconds", "eval_seconds", "compute_seconds")}
              for s in names}
        out["textbook"] = {"wall_seconds": spread([t["wall_seconds"] for t in textbook]),
                           "peak_rss_mb": spread([t["peak_mb"] for t in textbook]), "strategies": tb}
        out["speedup"] = ratio  # textbook wall time / engine wall time, per seed
        out["frozen_epoch_speedup"] = fz  # median frozen epoch, textbook / engine
        rows.append(f"textbook race wall time {fmt(out['textbook']['wall_seconds'], '.1f')} s;  "
                    f"peak RSS {fmt(out['textbook']['peak_rss_mb'], '.0f')} MB")
        rows.append(f"speed-up (textbook / engine wall time, per seed) {fmt(ratio, '.2f')} x;  "
                    f"median frozen epoch {fmt(fz, '.0f')} x")
        for s in names:
            rows.append(f"  final test {s:<9} engine {fmt(per[s]['final_test_acc'])}   textbook "
                        f"{fmt(tb[s]['final_test_acc'])}")
        checks["engine race >= 3x faster than textbook (mean)"] = ratio["mean"] >= 3
        checks["frozen epochs >= 20x faster (mean)"] = fz["mean"] >= 20
        checks["no strategy > 3 points below textbook (mean)"] = all(
            mean[s] >= tb[s]["final_test_acc"]["mean"] - 0.03 for s in names)
    print("\n".join(rows))
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    out["checks"] = checks
    out["runs"] = {"engine": engine, "textbook": textbook}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["engine", "textbook"], help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, engine and textbook each (default 3)")
    ap.add_argument("--skip-textbook", action="store_true", help="skip the (slow) textbook baseline")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny races (20 train, 100 val/test, 2 epochs, "
                                                         "32 px); writes to a temp folder unless --out is given")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default benchmarks/results/race.json)")
    a = ap.parse_args()
    if a.part:
        cfg = RunConfig.from_dict(json.loads(a.config))
        print(json.dumps(part_engine(cfg) if a.part == "engine" else part_textbook(cfg)))
        return 0
    base = QUICK if a.quick else DEFAULT
    load_before = os.getloadavg()
    engine, textbook = [], []
    for seed in range(a.seeds):
        cfg = replace(base, seed=seed)
        engine.append(child("engine", cfg))
        if not a.skip_textbook:
            textbook.append(child("textbook", cfg))
    out = report(engine, textbook)
    out["config"] = base.to_dict()
    out["quick"] = a.quick
    out["machine"] = {"platform": platform.platform(), "cpu": cpu(), "cpus": os.cpu_count(),
                      "device": engine[0]["device"], "when": time.strftime("%Y-%m-%d %H:%M"),
                      "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    path = a.out or (Path(tempfile.gettempdir()) / "tl-bench" / "race.json" if a.quick else RESULTS / "race.json")
    write_results(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
