"""`make bench`: the default race against the textbook implementation, plus the teaching story.

Each measurement runs in its own child process so that peak memory (ru_maxrss) belongs to it
alone. Prints a table with the targets from the engine issue and writes
``benchmarks/results/race.json``. Not a test: numbers depend on the machine.

    python -m benchmarks.bench_race [--seeds 3] [--skip-textbook]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from tl_engine.config import RunConfig

RESULTS = Path(__file__).parent / "results"
DEFAULT = RunConfig()  # fashion-mnist, 500 train, 1000 test, 96 px, 10 epochs, k=4


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def part_engine(seed: int) -> dict:
    import torchvision.models  # noqa: F401  (imported before the clock, as benchmarks.textbook does)

    from tl_engine.train import run_race

    t0 = time.perf_counter()
    first_round: list[float] = []

    def on_event(e):
        if e.epoch == 1:
            first_round.append(time.perf_counter() - t0)

    result = run_race(replace(DEFAULT, seed=seed), on_event=on_event)
    epochs = result["epochs"]
    frozen = [e["seconds"] for e in epochs if e["strategy"] == "frozen"]
    return {"wall_seconds": time.perf_counter() - t0, "first_round_seconds": max(first_round),
            "summary": result["summary"], "frozen_epoch_seconds": frozen, "peak_mb": _peak_mb(),
            "curves": {s: [e["test_acc"] for e in epochs if e["strategy"] == s] for s in result["summary"]},
            "device": result["device"]}


def part_textbook(seed: int) -> dict:
    from benchmarks.textbook import textbook_race

    t0 = time.perf_counter()
    out = textbook_race(replace(DEFAULT, seed=seed), log=lambda m: print(m, file=sys.stderr, flush=True))
    frozen = out["frozen"]["epochs"]
    frozen_epochs = [b["cum_seconds"] - a["cum_seconds"] for a, b in zip([{"cum_seconds": 0.0}] + frozen, frozen)]
    return {"wall_seconds": time.perf_counter() - t0, "peak_mb": _peak_mb(), "frozen_epoch_seconds": frozen_epochs,
            "summary": {s: {k: v for k, v in r.items() if k != "epochs"} for s, r in out.items()}}


def child(part: str, seed: int) -> dict:
    """Run one part in a fresh interpreter and return its JSON (stdout's last line)."""
    print(f"-- {part}, seed {seed} ...", flush=True)
    r = subprocess.run([sys.executable, "-m", "benchmarks.bench_race", "--part", part, "--seed", str(seed)],
                       stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def report(engine: list[dict], textbook: dict | None) -> dict:
    e0 = engine[0]
    rows, checks = [], {}
    acc = {s: [r["summary"][s]["final_test_acc"] for r in engine] for s in ("scratch", "frozen", "finetune")}
    med = {s: statistics.median(v) for s, v in acc.items()}
    first = {s: statistics.median(r["curves"][s][0] for r in engine) for s in acc}
    checks["first round of epochs within 10 s"] = e0["first_round_seconds"] <= 10
    checks["peak memory under 3 GB"] = e0["peak_mb"] < 3072
    checks["story: frozen far ahead of scratch after epoch 1"] = first["frozen"] >= first["scratch"] + 0.2
    checks["story: fine-tune >= frozen > scratch at the end"] = med["finetune"] >= med["frozen"] > med["scratch"]
    checks["story: scratch well above chance"] = med["scratch"] > 0.3
    rows.append(f"engine race wall time      {e0['wall_seconds']:7.1f} s   (first round of epochs at "
                f"{e0['first_round_seconds']:.1f} s, peak {e0['peak_mb']:.0f} MB)")
    out = {"engine": engine, "median_final_acc": med, "median_epoch1_acc": first}
    if textbook:
        ratio = textbook["wall_seconds"] / e0["wall_seconds"]
        fz_e, fz_t = statistics.median(e0["frozen_epoch_seconds"]), statistics.median(textbook["frozen_epoch_seconds"])
        fz_total = sum(textbook["frozen_epoch_seconds"]) / sum(e0["frozen_epoch_seconds"])
        rows.append(f"textbook race wall time    {textbook['wall_seconds']:7.1f} s   "
                    f"(peak {textbook['peak_mb']:.0f} MB)")
        rows.append(f"speed-up                   {ratio:7.1f} x")
        rows.append(f"frozen epoch (median)      {fz_e:7.3f} s vs {fz_t:.2f} s: {fz_t / fz_e:.0f} x "
                    f"(all frozen compute incl. feature caching: {fz_total:.0f} x)")
        for s in acc:
            rows.append(f"final acc {s:<9}        engine {e0['summary'][s]['final_test_acc']:6.1%}   textbook "
                        f"{textbook['summary'][s]['final_test_acc']:6.1%}")
        checks["engine race >= 3x faster than textbook"] = ratio >= 3
        checks["frozen epochs >= 20x faster"] = fz_t / fz_e >= 20
        checks["no strategy > 3 points below textbook"] = all(
            e0["summary"][s]["final_test_acc"] >= textbook["summary"][s]["final_test_acc"] - 0.03 for s in acc)
        out.update(textbook=textbook, speedup=ratio, frozen_epoch_speedup=fz_t / fz_e)
    rows.append("median final test acc over seeds: " + ", ".join(f"{s} {v:.1%}" for s, v in med.items()))
    rows.append("median epoch-1 test acc:          " + ", ".join(f"{s} {v:.1%}" for s, v in first.items()))
    print("\n".join(rows))
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    out["checks"] = checks
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["engine", "textbook"], help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=3, help="engine races for the story check (median); default 3")
    ap.add_argument("--skip-textbook", action="store_true", help="skip the (slow) textbook baseline")
    a = ap.parse_args()
    if a.part:
        print(json.dumps(part_engine(a.seed) if a.part == "engine" else part_textbook(a.seed)))
        return 0
    engine = [child("engine", s) for s in range(a.seeds)]
    textbook = None if a.skip_textbook else child("textbook", 0)
    out = report(engine, textbook)
    out["machine"] = {"platform": platform.platform(), "processor": platform.processor(), "device": engine[0]["device"],
                      "when": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "race.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'race.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
