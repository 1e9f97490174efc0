"""Experiments: a grid of races (a sweep) over one or more seeds, each answered from the store when it ran before.

Reading order: :func:`plan` (the grid for each kind, repeated per seed) -> :func:`run_sweep` (runs it,
yielding a :class:`SweepRun` per finished race) -> :func:`points` (per point and strategy: mean, min, max,
n_seeds over the seeds) and :func:`sweep_verdict` (the experiment's verdict, see :mod:`tl_engine.experiments.verdicts`)
-> CSV export.

The three kinds:
- ``freeze``: fine-tune alone with k = 7, 6, ..., 0 (cheap first: k = 7 trains only the head on cached
  features), then one scratch race as the reference line.
- ``size``: all three strategies at 50, 100, ..., 5000 training images (ascending, cheap first),
  clamped to what the dataset offers.
- ``domain``: all three strategies on every bundled dataset (plus ``base_cfg.dataset`` when it is a user's
  own) with the same number of training images *per class* on each, ordered by the measured similarity
  score to ImageNet (highest first; unmeasured last).
With ``seeds = N`` the whole grid runs for seed ``base.seed``, then ``base.seed + 1``, ... (seed-major: a full
first picture early, and consecutive runs of one seed share their preprocessed images).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, TextIO

from ..config import NUM_STAGES, STRATEGY_NAMES, EpochResult, RaceResult, RunConfig, StrategySummary
from ..errors import ConfigError
from ..store import Timings
from ..training import validate
from .noise import Point
from .verdicts import Verdict, best_k, claim_500_vs_5000, domain_gains, domain_verdict

if TYPE_CHECKING:  # pandas loads only for the CSV (0.3 s: not on a page's first paint)
    import pandas as pd

KINDS: tuple[str, ...] = ("freeze", "size", "domain")
SIZES: tuple[int, ...] = (50, 100, 200, 500, 1000, 2000, 5000)  # log-spaced learning-curve points
SEED_CHOICES: tuple[int, ...] = (1, 3, 5)  # what the app offers; the CLI takes any N >= 1
DOMAIN_PER_CLASS = 50  # training images per class in the domain experiment (500 on a 10-class set)


# ---- the grid ---------------------------------------------------------------------------------------------

def plan(kind: str, base_cfg: RunConfig, seeds: int = 1, **opts) -> list[RunConfig]:
    """The configs of one experiment, in the order they run (see the module docstring).

    Args:
        kind: "freeze", "size" or "domain".
        base_cfg: dataset, backbone, size, epochs, ... that every run shares.
        seeds: how many seeds each grid point runs: ``base_cfg.seed`` .. ``base_cfg.seed + seeds - 1``.
        opts: ``ks`` (freeze), ``sizes`` and ``n_train`` (size; ``n_train`` = images the dataset offers,
            looked up when omitted), ``datasets`` (domain: DatasetInfo-like records with name, classes,
            n_train, n_val, n_test), ``scores`` (domain: dataset -> measured similarity score) and
            ``per_class`` (domain: training images per class, default :data:`DOMAIN_PER_CLASS`).
    """
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    grid = _grid(kind, base_cfg, **opts)
    return [replace(c, seed=base_cfg.seed + i) for i in range(seeds) for c in grid]


def _grid(kind: str, base_cfg: RunConfig, ks=None, sizes=None, n_train=None, datasets=None,
          scores: Mapping[str, float] | None = None, per_class: int | None = None) -> list[RunConfig]:
    if kind == "freeze":
        runs = [replace(base_cfg, strategies=("finetune",), frozen_stages=k) for k in ks or range(NUM_STAGES, -1, -1)]
        return runs + [replace(base_cfg, strategies=("scratch",), frozen_stages=0)]  # scratch ignores k
    if kind == "size":
        n_train = n_train or _info(base_cfg.dataset).n_train
        sizes = sorted({min(s, n_train) for s in sizes or SIZES})  # 5000 on a 4000-image set becomes 4000
        return [replace(base_cfg, train_size=s, strategies=STRATEGY_NAMES) for s in sizes]
    if kind == "domain":
        pairs = [(i.name, i) for i in datasets] if datasets else _domain_datasets(base_cfg.dataset)
        scores = scores or {}
        # Most ImageNet-like first; unmeasured last; ties keep the given order (sort is stable).
        pairs.sort(key=lambda p: (p[0] not in scores, -scores.get(p[0], 0.0)))
        # Fair: every dataset gets the same images per class, so the largest count all of them can supply.
        per = min([per_class or DOMAIN_PER_CLASS] + [i.n_train // len(i.classes) for _, i in pairs])
        return [replace(base_cfg, dataset=name, train_size=per * len(i.classes), test_size=min(base_cfg.test_size,
                        i.n_test), val_size=min(base_cfg.val_size, getattr(i, "n_val", base_cfg.val_size)),
                        strategies=STRATEGY_NAMES) for name, i in pairs]
    raise ConfigError(f"unknown experiment {kind!r}; choose one of: {', '.join(KINDS)}")


def swept_value(kind: str, cfg: RunConfig) -> str:
    """What a run of the sweep varies, for tables and notes: "k = 6", "scratch", "500 images", "mnist"."""
    if kind == "freeze":
        return f"k = {cfg.frozen_stages}" if cfg.strategies == ("finetune",) else "+".join(cfg.strategies)
    return f"{cfg.train_size:,} images" if kind == "size" else cfg.dataset


def _info(dataset: str):
    from ..data import list_datasets, load_dataset

    return next((i for i in list_datasets() if i.name == dataset), None) or load_dataset(dataset).info


def _domain_datasets(base_dataset: str) -> list[tuple[str, object]]:
    """(dataset argument, DatasetInfo) for the bundled sets, plus the user's own (a path) if that is the base."""
    from ..data import list_datasets

    pairs = [(i.name, i) for i in list_datasets()]
    return pairs + ([] if base_dataset in dict(pairs) else [(base_dataset, _info(base_dataset))])


# ---- running it -------------------------------------------------------------------------------------------

@dataclass
class SweepRun:
    """One finished race of a sweep."""

    result: RaceResult
    reused: bool  # True: read from the store, not trained now

    @property
    def config(self) -> RunConfig:
        return self.result.config

    @property
    def summary(self) -> dict[str, StrategySummary]:
        return self.result.summary

    def to_dict(self) -> dict:
        d = self.result.to_dict()
        return {"config": d["config"], "summary": d["summary"], "reused": self.reused, "device": d["device"]}


@dataclass(frozen=True)
class Progress:
    """Where a sweep stands: ``done`` of ``total`` runs, plus the running one's share in ``fraction``."""

    done: int
    total: int
    reused: int
    fraction: float  # 0..1, counting the running race's finished epochs
    seconds_left: float | None  # None until a race has been timed (or when nothing is left to train)
    current: RunConfig | None


def run_cost(cfg: RunConfig) -> float:
    """Rough relative cost of a race (images × trained share of the network), for the time-left estimate."""
    body = max(0.1, (NUM_STAGES - cfg.frozen_stages) / NUM_STAGES)  # gradual and LoRA run stages k..6 too
    share = {"scratch": 1.0, "finetune": body, "gradual": body, "lora": body}  # the rest: a head on a cache
    return cfg.epochs * cfg.train_size * sum(share.get(s, 0.1) for s in cfg.strategies) + cfg.test_size


def run_sweep(kind: str, base_cfg: RunConfig, store=None, stop: threading.Event | None = None,
              on_run: Callable[[Progress], None] | None = None, **opts) -> Iterator[SweepRun]:
    """Run the experiment's grid in order, yielding each race once it has finished.

    A config found in ``store`` (a :class:`tl_engine.store.results.ResultStore`, or None) is yielded at once
    with ``reused=True``; a fresh race is stored when it finishes. Setting ``stop`` ends the sweep
    within a batch; the interrupted race is neither stored nor yielded. ``on_run`` gets a
    :class:`Progress` before each race, after each epoch and at the end.
    """
    from ..training import (
        Race,
        prepare_data,
        resolve_device,  # torch: only when something runs
    )

    configs = plan(kind, base_cfg, **opts)
    for c in configs:
        validate(c)  # a bad setting fails now, not after an hour of sweeping
    stop = stop or threading.Event()
    cached = [store.get(c) if store is not None else None for c in configs]
    costs = [0.0 if hit else run_cost(c) for c, hit in zip(configs, cached)]
    clock = {"cost": 0.0, "seconds": 0.0}  # fresh work done so far and the compute seconds it took
    prior = Timings.beside(store.path).rate("race") if getattr(store, "path", None) else None  # before 1st epoch
    data_key, data = None, None

    def report(i: int, part: float, reused: int, partial_cost: float = 0.0, partial_s: float = 0.0) -> None:
        if on_run is None:
            return
        left = sum(costs[i:]) - partial_cost
        done_cost, done_s = clock["cost"] + partial_cost, clock["seconds"] + partial_s
        rate = done_s / done_cost if done_cost > 0 else prior  # seconds per cost unit, measured on this machine
        eta = 0.0 if left <= 0 else None if rate is None else left * rate
        on_run(Progress(i, len(configs), reused, (i + part) / len(configs), eta,
                        configs[i] if i < len(configs) else None))

    reused = 0
    for i, (cfg, hit) in enumerate(zip(configs, cached)):
        if stop.is_set():
            return
        report(i, 0.0, reused)
        hit = hit or (store.get(cfg) if store is not None else None)  # another process may have run it
        if hit:
            reused += 1
            yield SweepRun(hit, True)
            continue
        # Consecutive races on the same images (the freeze sweep) share one preprocessed copy.
        t0 = time.perf_counter()
        key = (cfg.dataset, cfg.train_size, cfg.val_size, cfg.test_size, cfg.seed, cfg.backbone, cfg.resolution,
               cfg.device)
        if key != data_key:
            data_key, data = key, None
            data = prepare_data(cfg, resolve_device(cfg.device))
        r = Race(cfg, stop, data=data)
        for n, _ in enumerate(r, start=1):
            part = n / cfg.total_epochs
            report(i, part, reused, part * costs[i], time.perf_counter() - t0)
        result = r.result()
        if not result.completed:
            return  # stopped: a partial race is never stored nor shown as finished
        clock["cost"] += costs[i]
        clock["seconds"] += time.perf_counter() - t0
        if store is not None:
            store.put(result, kind=kind)
        yield SweepRun(result, False)
    report(len(configs), 0.0, reused)


# ---- reading the results (pure) -----------------------------------------------------------------------------

def x_of(kind: str, cfg: RunConfig) -> int | str:
    """The swept value of a run as data: k (freeze), training images (size) or the dataset (domain)."""
    return {"freeze": cfg.frozen_stages, "size": cfg.train_size}.get(kind, cfg.dataset)


def points(kind: str, runs: Iterable[SweepRun | RaceResult]) -> dict[str, list[Point]]:
    """strategy -> one :class:`Point` per swept value (sorted), aggregating the seeds that ran it.

    A seed that appears twice (the same race reused) counts once: the later result wins.
    """
    groups: dict[tuple[str, int | str], dict[int, tuple[RunConfig, StrategySummary]]] = {}
    for r in runs:
        res = r.result if isinstance(r, SweepRun) else r
        for s, v in res.summary.items():
            groups.setdefault((s, x_of(kind, res.config)), {})[res.config.seed] = (res.config, v)
    out: dict[str, list[Point]] = {}
    for (s, x), by_seed in groups.items():
        seeds = sorted(by_seed)
        cfg = by_seed[seeds[0]][0]
        out.setdefault(s, []).append(Point(
            x, s, tuple((k, by_seed[k][1].final_test_acc) for k in seeds),
            tuple((k, by_seed[k][1].final_val_acc) for k in seeds), cfg.test_size, cfg.train_size,
            by_seed[seeds[0]][1].trainable_params, fmean(by_seed[k][1].compute_seconds for k in seeds)))
    for pts in out.values():
        if kind != "domain":  # k and sizes ascending; datasets keep the run order (the similarity order)
            pts.sort(key=lambda p: p.x)
    return out


def sweep_verdict(kind: str, pts: Mapping[str, list[Point]], scores: Mapping[str, float] | None = None) -> Verdict:
    """The experiment's verdict: best k (freeze), the 500-vs-5,000 claim (size), the domain ends (domain)."""
    if kind == "freeze":
        return best_k(pts.get("finetune", []))
    if kind == "size":
        return claim_500_vs_5000(pts)
    return domain_verdict(domain_gains(pts, scores or {}))


# ---- CSV: one row per strategy × epoch, with the run's config ---------------------------------------------------

_CONFIG_COLS = [f.name for f in fields(RunConfig)]
_EPOCH_COLS = [f.name for f in fields(EpochResult)]
CSV_COLUMNS = ["run", "reused", "device", *_CONFIG_COLS, *_EPOCH_COLS]


def to_frame(runs: Iterable[SweepRun]) -> pd.DataFrame:
    """One row per run x strategy x epoch, with the run's config columns (what the CSV holds)."""
    import pandas as pd

    rows = [{"run": i, "reused": r.reused, "device": r.result.device,
             **{**r.config.to_dict(), "strategies": "+".join(r.config.strategies)}, **e.to_dict()}
            for i, r in enumerate(runs) for e in r.result.epochs]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def to_csv(runs: Iterable[SweepRun], path: str | Path | TextIO) -> None:
    """Write the runs' epochs as CSV to a path or an open text stream."""
    to_frame(runs).to_csv(path, index=False)


def csv_text(runs: Iterable[SweepRun]) -> str:
    return to_frame(runs).to_csv(index=False)


def read_csv(path: str | Path | TextIO) -> list[SweepRun]:
    """Inverse of :func:`to_csv` (summaries are recomputed from the epochs)."""
    import pandas as pd

    casts = {"int": int, "float": float, "str": str, "bool": lambda v: str(v).lower() in ("true", "1")}
    types = {f.name: str(f.type) for f in (*fields(RunConfig), *fields(EpochResult))}

    def typed(row: dict, cols: list[str]) -> dict:
        return {k: casts.get(types[k], str)(row[k]) for k in cols if k != "strategies"}

    runs = []
    for _, group in pd.read_csv(path, keep_default_na=False).groupby("run", sort=True):
        rows = group.to_dict("records")
        cfg = RunConfig(**typed(rows[0], _CONFIG_COLS), strategies=tuple(str(rows[0]["strategies"]).split("+")))
        events = [EpochResult(**typed(row, _EPOCH_COLS)) for row in rows]
        result = RaceResult.build(cfg, str(rows[0]["device"]), None, events)
        runs.append(SweepRun(result, casts["bool"](rows[0]["reused"])))
    return runs
