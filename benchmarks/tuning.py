"""The tuning grid of docs/tuning.md, chosen on validation and scored on test once.

    python -m benchmarks.tuning             # runs what the store lacks, then writes the results
    python -m benchmarks.tuning --status    # trains nothing: writes what the store holds so far

On the default race (fashion-mnist, 500 training, 500 validation and 1,000 test images, 96 px, 10 epochs,
k = 4) and seeds 0, 1, 2, every strategy runs alone (strategies are paired by seed, so a strategy's numbers
do not depend on who races beside it):

- frozen (head only): ``lr_head`` in {1e-3, 3e-3, 1e-2};
- fine-tune (k = 4): (``lr_head``, ``lr_body``) in {(3e-3, 3e-4), (3e-3, 1e-3), (3e-3, 3e-3), (1e-3, 1e-3)};
- scratch: ``lr_scratch`` in {1e-3, 3e-3, 1e-2}, then scratch's BatchNorm momentum 0.1 vs 0.5 at the chosen
  learning rate.

Each setting is chosen by its mean *final validation* accuracy over the seeds, always (the old defaults were
once chosen on test images: a tie-break in their favour would let the test set choose again). When the best
is within the noise of the runner-up (the rule of :mod:`tl_engine.experiments.noise` with the validation set's size: 2
binomial standard errors of the difference, or the seeds' paired 95 % interval, whichever is larger), the
choice is reported as "within noise": the grid could not tell those settings apart. Test accuracy is read
only for the chosen settings, once, after every choice is made; validation is reported for every grid point.

Races come from the results store (``$TL_RACE_DATA`` or ``data/``) when they ran before, so a rerun is free.
BatchNorm momentum is strategy data, not a RunConfig field, so the store's key cannot tell momentum 0.1 from
0.5: the momentum-0.1 scratch runs replace the ``scratch`` entry of ``tl_engine.models.strategies.STRATEGIES``
(``dataclasses.replace``) for the duration of the run only, and are kept in a separate store next to the
default one so that they can never answer an ordinary scratch race.

Writes ``benchmarks/results/tuning.json`` and prints a markdown table for docs/tuning.md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from tl_engine.config import RaceResult, RunConfig
from tl_engine.experiments import Sample, compare, pts
from tl_engine.models import STRATEGIES, strategies
from tl_engine.store import ResultStore, default_path
from tl_engine.training import Race, prepare_data, resolve_device, strategy_run, usable_cpus

RESULTS = Path(__file__).parent / "results"
SEEDS: tuple[int, ...] = (0, 1, 2)
BASE = RunConfig()  # the default race: every field not tuned here stays at its default
GRID: dict[str, list[dict[str, float]]] = {
    "frozen": [{"lr_head": 1e-3}, {"lr_head": 3e-3}, {"lr_head": 1e-2}],
    "finetune": [{"lr_head": 3e-3, "lr_body": 3e-4}, {"lr_head": 3e-3, "lr_body": 1e-3},
                 {"lr_head": 3e-3, "lr_body": 3e-3}, {"lr_head": 1e-3, "lr_body": 1e-3}],
    "scratch": [{"lr_scratch": 1e-3}, {"lr_scratch": 3e-3}, {"lr_scratch": 1e-2}],
}
BN_MOMENTA: tuple[float, ...] = (0.1, 0.5)  # scratch's BatchNorm momentum: torch's default vs the project's
PATCHED_STORE_DIR = "tuning-scratch-bn-momentum-{m}"  # under the default store's folder, one per momentum


# ---- running (or reusing) one race ---------------------------------------------------------------------------

@contextmanager
def patched_strategy(name: str, **changes) -> Iterator[None]:
    """``STRATEGIES[name]`` replaced by ``dataclasses.replace(STRATEGIES[name], **changes)`` until exit."""
    old = STRATEGIES[name]
    STRATEGIES[name] = replace(old, **changes)
    try:
        assert strategy_run.STRATEGIES is strategies.STRATEGIES  # the engine reads the dict we patched
        assert strategy_run.STRATEGIES[name].bn_momentum == STRATEGIES[name].bn_momentum
        yield
    finally:
        STRATEGIES[name] = old


class Runner:
    """Answers each config from its store or runs it (storing it); keeps one seed's preprocessed images."""

    def __init__(self, store_only: bool = False) -> None:
        self.store_only = store_only  # True: never train, answer only what the stores hold (None otherwise)
        self.device = resolve_device(BASE.device)
        self.stores: dict[float | None, ResultStore] = {None: ResultStore()}
        self._data: tuple[int, object] | None = None
        self.loads: list[float] = [os.getloadavg()[0]]
        self.fresh = self.reused = 0
        self.fresh_seconds = 0.0

    def store(self, bn_momentum: float | None) -> ResultStore:
        if bn_momentum not in self.stores:
            self.stores[bn_momentum] = ResultStore(
                default_path().parent / PATCHED_STORE_DIR.format(m=bn_momentum) / "results.sqlite")
        return self.stores[bn_momentum]

    def data(self, cfg: RunConfig):
        if self._data is None or self._data[0] != cfg.seed:
            self._data = (cfg.seed, prepare_data(cfg, self.device))
        return self._data[1]

    def run(self, cfg: RunConfig, bn_momentum: float | None = None) -> tuple[RaceResult | None, bool, float]:
        """The finished race of ``cfg`` (one strategy), whether it was reused, and its wall seconds if fresh.

        ``bn_momentum``: run scratch with this BatchNorm momentum instead of the strategy table's (None or
        equal to the table's: no patch, the default store).
        """
        (name,) = cfg.strategies
        if bn_momentum == STRATEGIES[name].bn_momentum:
            bn_momentum = None
        store = self.store(bn_momentum)
        hit = store.get(cfg)
        if hit is not None:
            self.reused += 1
            return hit, True, 0.0
        if self.store_only:
            return None, False, 0.0
        t0 = time.perf_counter()
        patch = patched_strategy(name, bn_momentum=bn_momentum) if bn_momentum is not None else _nothing()
        with patch:
            race = Race(cfg, data=self.data(cfg))
            for _ in race:
                pass
            result = race.result()
        store.put(result, kind="tuning")
        wall = time.perf_counter() - t0
        self.fresh += 1
        self.fresh_seconds += wall
        self.loads.append(os.getloadavg()[0])
        return result, False, wall


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ---- one grid point over the seeds ---------------------------------------------------------------------------

def label_of(setting: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in setting.items())


def measure(runner: Runner, strategy: str, setting: dict[str, float], bn_momentum: float | None = None) -> dict:
    """Run ``setting`` for every seed; validation numbers are public, test numbers stay private (``_test``)."""
    per_seed, test, missing = [], {}, []
    for seed in SEEDS:
        cfg = replace(BASE, strategies=(strategy,), seed=seed, **setting)
        result, reused, wall = runner.run(cfg, bn_momentum)
        if result is None:  # --status: not run yet
            missing.append(seed)
            continue
        s = result.summary[strategy]
        curve = [e.val_acc for e in result.epochs if e.strategy == strategy]
        per_seed.append({"seed": seed, "final_val_acc": s.final_val_acc, "val_curve": curve,
                         "compute_seconds": round(s.compute_seconds, 2), "reused": reused,
                         "wall_seconds": round(wall, 1)})
        test[seed] = s.final_test_acc
        print(f"  {strategy:>8}  {label_of(setting):<32} "
              f"{'' if bn_momentum is None else f'bn_momentum {bn_momentum:g}  '}seed {seed}:  "
              f"val {s.final_val_acc:6.1%}  ({'stored' if reused else f'ran in {wall:.0f} s'}, "
              f"load {os.getloadavg()[0]:.1f})", flush=True)
    vals = [p["final_val_acc"] for p in per_seed]
    return {"setting": setting, **({} if bn_momentum is None else {"bn_momentum": bn_momentum}),
            "val": {"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals)} if vals else None,
            "per_seed": per_seed, **({"missing_seeds": missing} if missing else {}), "_test": test}


def choose(points: list[dict], default_index: int) -> dict:
    """The best mean validation accuracy, and whether the runner-up is within noise of it."""
    samples = [Sample.accuracy({p["seed"]: p["final_val_acc"] for p in pt["per_seed"]}, BASE.val_size)
               for pt in points]
    order = sorted(range(len(points)), key=lambda i: samples[i].mean, reverse=True)
    best, runner_up = order[0], order[1]
    gaps = {i: compare(samples[best], samples[i], test_size=BASE.val_size) for i in order[1:]}
    tied = [best] + [i for i in order[1:] if not gaps[i].clear]
    gap = gaps[runner_up]
    within_noise = not gap.clear
    chosen = best
    return {
        "best_by_val": best, "runner_up": runner_up, "chosen": chosen, "default": default_index,
        "status": "within noise" if within_noise else "clear",
        "tied_with_best": tied,
        "kept_default": chosen == default_index,
        "best_minus_runner_up": {"margin": gap.margin, "noise": gap.noise, "noise_source": gap.source,
                                 "words": f"{pts(gap.margin)} ± {pts(gap.noise)} points ("
                                          + ("the 3 seeds' paired 95 % interval" if gap.source == "seeds"
                                             else f"2 binomial SE on {BASE.val_size} validation images") + ")"},
    }


def test_once(point: dict) -> dict:
    t = point["_test"]
    return {"mean": statistics.fmean(t.values()), "min": min(t.values()), "max": max(t.values()),
            "per_seed": {str(s): v for s, v in sorted(t.items())}}


def public(point: dict) -> dict:
    return {k: v for k, v in point.items() if k != "_test"}


# ---- the whole grid ------------------------------------------------------------------------------------------

def default_index(strategy: str) -> int:
    grid = GRID[strategy]
    now = {k: getattr(BASE, k) for k in grid[0]}
    return next(i for i, s in enumerate(grid) if s == now)


def main() -> int:
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    runner = Runner()
    print(f"tuning grid on {runner.device}, {usable_cpus()} usable CPUs, load average {load_start[0]:.2f}; "
          f"seeds {SEEDS}; store {default_path()}", flush=True)
    out: dict = {"strategies": {}}
    chosen_points: dict[str, dict] = {}
    for strategy in ("frozen", "finetune", "scratch"):  # cheap first
        points = [measure(runner, strategy, s) for s in GRID[strategy]]
        choice = choose(points, default_index(strategy))
        out["strategies"][strategy] = {"grid": [public(p) for p in points], "choice": choice,
                                       "chosen_setting": points[choice["chosen"]]["setting"]}
        chosen_points[strategy] = points[choice["chosen"]]
        print(f"{strategy}: chose {label_of(points[choice['chosen']]['setting'])} ({choice['status']}; "
              f"best - runner-up {choice['best_minus_runner_up']['words']})", flush=True)

    # Scratch's BatchNorm momentum at the chosen learning rate (the 0.5 runs are the grid's, reused).
    lr = chosen_points["scratch"]["setting"]
    default_m = STRATEGIES["scratch"].bn_momentum
    mpoints = [measure(runner, "scratch", lr, bn_momentum=m) for m in BN_MOMENTA]
    mchoice = choose(mpoints, BN_MOMENTA.index(default_m))
    out["scratch_bn_momentum"] = {
        "at": lr, "grid": [public(p) for p in mpoints], "choice": mchoice,
        "chosen_bn_momentum": BN_MOMENTA[mchoice["chosen"]],
        "how": "BatchNorm momentum is strategy data (tl_engine/strategies.py), not a RunConfig field: each "
               "non-default momentum ran with STRATEGIES['scratch'] monkeypatched to dataclasses.replace("
               "STRATEGIES['scratch'], bn_momentum=m) for that run only (strategies.py not edited), stored "
               f"in a separate store ({PATCHED_STORE_DIR.format(m='<m>')}/results.sqlite next to the default "
               "one) because the store's key does not include the momentum.",
    }
    print(f"scratch bn_momentum: chose {BN_MOMENTA[mchoice['chosen']]:g} ({mchoice['status']}; "
          f"best - runner-up {mchoice['best_minus_runner_up']['words']})", flush=True)
    chosen_points["scratch"] = mpoints[mchoice["chosen"]]

    # Every choice is made: now, and only now, the test set, once, for the chosen settings.
    out["test_once"] = {s: {"setting": p["setting"], **({"bn_momentum": p["bn_momentum"]} if "bn_momentum" in p
                                                        else {"bn_momentum": STRATEGIES[s].bn_momentum}),
                            "test": test_once(p)} for s, p in chosen_points.items()}
    changes = default_changes(out)
    out["default_changes"] = changes
    wall = time.perf_counter() - t0
    out["race"] = {**{k: v for k, v in BASE.to_dict().items() if k not in ("lr_head", "lr_body", "lr_scratch",
                                                                          "seed", "strategies")},
                   "seeds": list(SEEDS)}
    out["rule"] = ("choose by mean final validation accuracy over the seeds; a best within the noise of the "
                   "runner-up (tl_engine.experiments.compare with the validation size: the larger of 2 binomial SE "
                   "of the difference and the seeds' paired 95 % t interval) is reported as 'within noise' "
                   "but still chosen (no tie-break in favour of the old, test-chosen defaults). Test accuracy "
                   "is read only for the chosen settings, after all choices.")
    out["machine"] = {"device": str(runner.device), "usable_cpus": usable_cpus(), "cpu_count": os.cpu_count(),
                      "load_average_start": [round(x, 2) for x in load_start],
                      "load_average_end": [round(x, 2) for x in os.getloadavg()],
                      "load_1min_after_each_fresh_race": {"min": round(min(runner.loads), 2),
                                                          "mean": round(statistics.fmean(runner.loads), 2),
                                                          "max": round(max(runner.loads), 2)},
                      "note": "2 CPU cores shared with other engineers' jobs: seconds are inflated 2-4x; "
                              "accuracies are not affected"}
    out["wall_seconds"] = round(wall, 1)
    out["races"] = {"fresh": runner.fresh, "from_store": runner.reused,
                    "fresh_wall_seconds": round(runner.fresh_seconds, 1)}
    out["when"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(out, indent=1) + "\n")
    print()
    print(table(out))
    print()
    for line in changes or ["no default changes: every chosen value is the current default"]:
        print(f"- {line}")
    print(f"\nwall {wall:.0f} s ({runner.fresh} races run, {runner.reused} from the store); "
          f"load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


def default_changes(out: dict) -> list[str]:
    lines = []
    for d in out["strategies"].values():
        for k, v in d["chosen_setting"].items():
            if v != getattr(BASE, k):
                lines.append(f"tl_engine/config.py: RunConfig.{k} = {getattr(BASE, k):g} -> {v:g}")
    m = out["scratch_bn_momentum"]["chosen_bn_momentum"]
    if m != STRATEGIES["scratch"].bn_momentum:
        lines.append(f"tl_engine/strategies.py: STRATEGIES['scratch'].bn_momentum = "
                     f"{STRATEGIES['scratch'].bn_momentum:g} -> {m:g}")
    return sorted(set(lines))


def _pct(x: dict) -> str:
    return f"{100 * x['mean']:.1f} ({100 * x['min']:.1f}-{100 * x['max']:.1f})"


def table(out: dict) -> str:
    """The docs/tuning.md table: validation for every grid point, test once for the chosen one."""
    rows = ["| strategy | tried | final validation accuracy, mean (min-max) of 3 seeds, % | chosen | "
            "test accuracy of the chosen, mean (min-max), % |", "|---|---|---|---|---|"]
    names = {"frozen": "frozen (`lr_head`)", "finetune": "fine-tune (`lr_head`, `lr_body`)",
             "scratch": "scratch (`lr_scratch`)"}

    def fmt(setting: dict) -> str:
        vals = [f"{v:g}" for v in setting.values()]
        return vals[0] if len(vals) == 1 else f"({', '.join(vals)})"

    for s, d in out["strategies"].items():
        c = d["choice"]
        tried = " / ".join(("**" + fmt(p["setting"]) + "**") if i == c["chosen"] else fmt(p["setting"])
                           for i, p in enumerate(d["grid"]))
        vals = " / ".join(("**" + _pct(p["val"]) + "**") if i == c["chosen"] else _pct(p["val"])
                          for i, p in enumerate(d["grid"]))
        why = c["status"]
        test = out["test_once"][s]["test"] if s != "scratch" else None
        rows.append(f"| {names[s]} | {tried} | {vals} | {fmt(d['chosen_setting'])} ({why}: best - runner-up "
                    f"{c['best_minus_runner_up']['words']}) | {_pct(test) if test else 'see next row'} |")
    m = out["scratch_bn_momentum"]
    c = m["choice"]
    tried = " / ".join(("**" + f"{p['bn_momentum']:g}" + "**") if i == c["chosen"] else f"{p['bn_momentum']:g}"
                       for i, p in enumerate(m["grid"]))
    vals = " / ".join(("**" + _pct(p["val"]) + "**") if i == c["chosen"] else _pct(p["val"])
                      for i, p in enumerate(m["grid"]))
    why = c["status"]
    rows.append(f"| scratch BatchNorm momentum (at `lr_scratch` = {m['at']['lr_scratch']:g}) | {tried} | {vals} | "
                f"{m['chosen_bn_momentum']:g} ({why}: best - runner-up {c['best_minus_runner_up']['words']}) | "
                f"{_pct(out['test_once']['scratch']['test'])} |")
    return "\n".join(rows)


def status() -> int:
    """``--status``: write tuning.json from what the stores hold now, training nothing.

    A strategy is chosen only when its whole grid has every seed; its test accuracy is then read, once, for
    the chosen setting (scratch's only once the momentum comparison at its chosen rate is complete too).
    """
    runner = Runner(store_only=True)
    out: dict = {"complete": False, "strategies": {}, "test_once": {}}
    chosen_lr = None
    for strategy in GRID:
        points = [measure(runner, strategy, s) for s in GRID[strategy]]
        entry: dict = {"grid": [public(p) for p in points]}
        if all("missing_seeds" not in p for p in points):
            choice = choose(points, default_index(strategy))
            p = points[choice["chosen"]]
            entry |= {"choice": choice, "chosen_setting": p["setting"]}
            if strategy == "scratch":
                chosen_lr = p["setting"]
            else:
                out["test_once"][strategy] = {"setting": p["setting"], "test": test_once(p)}
        out["strategies"][strategy] = entry
    mom: dict = {"at": chosen_lr, "grid": []}
    for lr in [chosen_lr] if chosen_lr else GRID["scratch"]:
        mpoints = [measure(runner, "scratch", lr, bn_momentum=m) for m in BN_MOMENTA]
        mom["grid"] += [public(p) for p in mpoints if p["per_seed"]]
        if chosen_lr and all("missing_seeds" not in p for p in mpoints):
            mchoice = choose(mpoints, BN_MOMENTA.index(STRATEGIES["scratch"].bn_momentum))
            p = mpoints[mchoice["chosen"]]
            mom |= {"choice": mchoice, "chosen_bn_momentum": BN_MOMENTA[mchoice["chosen"]]}
            out["test_once"]["scratch"] = {"setting": p["setting"], "bn_momentum": BN_MOMENTA[mchoice["chosen"]],
                                           "test": test_once(p)}
    out["scratch_bn_momentum"] = mom
    out["complete"] = set(out["test_once"]) == set(GRID)
    out["note"] = ("partial: written by `python -m benchmarks.tuning --status` from the stores; grid points "
                   "list missing_seeds; `python -m benchmarks.tuning` runs what is missing and rewrites this file")
    out["machine"] = {"device": str(runner.device), "usable_cpus": usable_cpus(), "cpu_count": os.cpu_count(),
                      "load_average_now": [round(x, 2) for x in os.getloadavg()]}
    out["when"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k in ("complete", "test_once")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(status() if "--status" in sys.argv[1:] else main())
