"""Experiments: a grid of races (a sweep), each answered from the store when it was run before.

Reading order: :func:`plan` (the grid for each kind) -> :func:`run_sweep` (runs it, yielding a
:class:`SweepRun` per finished race) -> the pure helpers that read results (:func:`curve_points`,
:func:`learning_curve_verdict`, :func:`transfer_gains`) -> CSV export.

The three kinds:
- ``freeze``: fine-tune alone with k = 7, 6, ..., 0 (cheap first: k = 7 trains only the head on cached
  features), then one scratch race as the reference line.
- ``size``: all three strategies at 50, 100, ..., 5000 training images (ascending, cheap first),
  clamped to what the dataset offers.
- ``domain``: all three strategies on every bundled dataset (plus ``base_cfg.dataset`` when it is a user's
  own), at one size, ordered by the dataset's similarity to ImageNet (high, medium, low, unknown).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TextIO

import pandas as pd

from .checks import validate
from .config import NUM_STAGES, STRATEGY_NAMES, EpochResult, RaceResult, RunConfig, StrategySummary
from .errors import ConfigError

KINDS: tuple[str, ...] = ("freeze", "size", "domain")
SIZES: tuple[int, ...] = (50, 100, 200, 500, 1000, 2000, 5000)  # log-spaced learning-curve points
SIMILARITY_ORDER: tuple[str, ...] = ("high", "medium", "low")  # anything else sorts last
CLAIM_SMALL, CLAIM_LARGE = 500, 5000
CLAIM = "a pretrained model fine-tuned on 500 examples outperforms a model trained from scratch on 5,000"


# ---- the grid ---------------------------------------------------------------------------------------------

def plan(kind: str, base_cfg: RunConfig, **opts) -> list[RunConfig]:
    """The configs of one experiment, in the order they run (see the module docstring).

    Args:
        kind: "freeze", "size" or "domain".
        base_cfg: dataset, backbone, size, epochs, ... that every run shares.
        opts: ``ks`` (freeze), ``sizes`` and ``n_train`` (size; ``n_train`` = images the dataset
            offers, looked up when omitted), ``datasets`` (domain: list of DatasetInfo-like records).
    """
    if kind == "freeze":
        ks = opts.get("ks") or range(NUM_STAGES, -1, -1)
        runs = [replace(base_cfg, strategies=("finetune",), frozen_stages=k) for k in ks]
        return runs + [replace(base_cfg, strategies=("scratch",), frozen_stages=0)]  # scratch ignores k
    if kind == "size":
        n_train = opts.get("n_train") or _info(base_cfg.dataset).n_train
        wanted = opts.get("sizes") or SIZES
        sizes = sorted({min(s, n_train) for s in wanted})  # 5000 on a 4000-image set becomes 4000
        return [replace(base_cfg, train_size=s, strategies=STRATEGY_NAMES) for s in sizes]
    if kind == "domain":
        given = opts.get("datasets")
        pairs = [(i.name, i) for i in given] if given else _domain_datasets(base_cfg.dataset)
        pairs.sort(key=lambda p: similarity_rank(p[1].similarity))  # stable: same tag keeps list order
        return [replace(base_cfg, dataset=name, train_size=min(base_cfg.train_size, i.n_train),
                        test_size=min(base_cfg.test_size, i.n_test), strategies=STRATEGY_NAMES) for name, i in pairs]
    raise ConfigError(f"unknown experiment {kind!r}; choose one of: {', '.join(KINDS)}")


def swept_value(kind: str, cfg: RunConfig) -> str:
    """What a run of the sweep varies, for tables and notes: "k = 6", "scratch", "500 images", "mnist"."""
    if kind == "freeze":
        return f"k = {cfg.frozen_stages}" if cfg.strategies == ("finetune",) else "+".join(cfg.strategies)
    return f"{cfg.train_size:,} images" if kind == "size" else cfg.dataset


def similarity_rank(tag: str) -> int:
    return SIMILARITY_ORDER.index(tag) if tag in SIMILARITY_ORDER else len(SIMILARITY_ORDER)


def _info(dataset: str):
    from .data import list_datasets, load_dataset

    return next((i for i in list_datasets() if i.name == dataset), None) or load_dataset(dataset).info


def _domain_datasets(base_dataset: str) -> list[tuple[str, object]]:
    """(dataset argument, DatasetInfo) for the bundled sets, plus the user's own (a path) if that is the base."""
    from .data import list_datasets

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
    share = {"scratch": 1.0, "frozen": 0.1, "finetune": max(0.1, (NUM_STAGES - cfg.frozen_stages) / NUM_STAGES)}
    return cfg.epochs * cfg.train_size * sum(share[s] for s in cfg.strategies) + cfg.test_size


def run_sweep(kind: str, base_cfg: RunConfig, store=None, stop: threading.Event | None = None,
              on_run: Callable[[Progress], None] | None = None, **opts) -> Iterator[SweepRun]:
    """Run the experiment's grid in order, yielding each race once it has finished.

    A config found in ``store`` (a :class:`tl_engine.store.ResultStore`, or None) is yielded at once
    with ``reused=True``; a fresh race is stored when it finishes. Setting ``stop`` ends the sweep
    within a batch; the interrupted race is neither stored nor yielded. ``on_run`` gets a
    :class:`Progress` before each race, after each epoch and at the end.
    """
    from .torchutil import resolve_device  # torch: only when something runs
    from .train import Race, prepare_data

    configs = plan(kind, base_cfg, **opts)
    for c in configs:
        validate(c)  # a bad setting fails now, not after an hour of sweeping
    stop = stop or threading.Event()
    cached = [store.get(c) if store is not None else None for c in configs]
    costs = [0.0 if hit else run_cost(c) for c, hit in zip(configs, cached)]
    clock = {"cost": 0.0, "seconds": 0.0}  # fresh work done so far and the compute seconds it took
    data_key, data = None, None

    def report(i: int, part: float, reused: int, partial_cost: float = 0.0, partial_s: float = 0.0) -> None:
        if on_run is None:
            return
        left = sum(costs[i:]) - partial_cost
        done_cost, done_s = clock["cost"] + partial_cost, clock["seconds"] + partial_s
        eta = left / done_cost * done_s if done_cost > 0 and left > 0 else (0.0 if left <= 0 else None)
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

def curve_points(runs: Iterable[SweepRun]) -> dict[str, list[tuple[int, float]]]:
    """Learning curves: strategy -> [(train_size, final test accuracy)], sorted by size."""
    out: dict[str, dict[int, float]] = {}
    for r in runs:
        for s, v in r.summary.items():
            out.setdefault(s, {})[r.config.train_size] = v.final_test_acc
    return {s: sorted(pts.items()) for s, pts in out.items()}


@dataclass(frozen=True)
class Verdict:
    """Whether a size sweep supports :data:`CLAIM`, with the two numbers compared."""

    supported: bool | None  # None: not testable with the sizes run
    finetune_size: int | None
    finetune_acc: float | None
    scratch_size: int | None
    scratch_acc: float | None
    sentence: str


def learning_curve_verdict(points: Mapping[str, Sequence[tuple[int, float]]]) -> Verdict:
    """Test the claim on :func:`curve_points` output, saying plainly which sizes were compared.

    Accuracies are compared as displayed (0.1 points), so equal-looking numbers are a tie, not a win.
    Fine-tune is taken at 500 images (else the size run nearest to it), scratch at 5,000 (else the
    largest size run, and the sentence says so).
    """
    ft, sc = dict(points.get("finetune", ())), dict(points.get("scratch", ()))
    if not ft or not sc:
        return Verdict(None, None, None, None, None, "Not enough results yet to test the claim.")
    ft_n = min(ft, key=lambda n: (abs(n - CLAIM_SMALL), n))
    sc_n = CLAIM_LARGE if CLAIM_LARGE in sc else max(sc)
    notes = []
    if ft_n != CLAIM_SMALL:
        notes.append(f"{CLAIM_SMALL:,} training images were not run, so fine-tune is taken at {ft_n:,}.")
    if sc_n != CLAIM_LARGE:
        notes.append(f"{CLAIM_LARGE:,} training images were not run (the largest size run is {sc_n:,}), "
                     f"so scratch is taken at {sc_n:,}.")
    note = " ".join(notes) + (" " if notes else "")
    if sc_n <= ft_n:
        return Verdict(None, ft_n, ft[ft_n], sc_n, sc[sc_n],
                       f"{note}The claim cannot be tested: it needs scratch on more images than fine-tune.")
    a, b = round(100 * ft[ft_n], 1), round(100 * sc[sc_n], 1)
    supported = a > b
    how = "supports" if supported else "does not support"
    rel = "above" if a > b else "below" if a < b else "equal to"
    sentence = (f"{note}This run {how} the claim: fine-tuned on {ft_n:,} images the pretrained model reached "
                f"{a:.1f} % test accuracy, {rel} the {b:.1f} % of the model trained from scratch on {sc_n:,}.")
    return Verdict(supported, ft_n, ft[ft_n], sc_n, sc[sc_n], sentence)


@dataclass(frozen=True)
class Gain:
    """Transfer gain on one dataset: accuracy points that pretraining adds over scratch."""

    dataset: str
    similarity: str
    train_size: int
    scratch_acc: float
    frozen_acc: float
    finetune_acc: float

    @property
    def finetune_gain(self) -> float:
        return self.finetune_acc - self.scratch_acc

    @property
    def frozen_gain(self) -> float:
        return self.frozen_acc - self.scratch_acc


def transfer_gains(runs: Iterable[SweepRun], similarity: Mapping[str, str]) -> list[Gain]:
    """Gains per dataset, ordered by similarity tag (high first; unknown tags last; ties keep run order)."""
    gains = []
    for r in runs:
        s = r.summary
        if not all(k in s for k in STRATEGY_NAMES):
            continue
        gains.append(Gain(r.config.dataset, similarity.get(r.config.dataset, "unknown"), r.config.train_size,
                          s["scratch"].final_test_acc, s["frozen"].final_test_acc,
                          s["finetune"].final_test_acc))
    return sorted(gains, key=lambda g: similarity_rank(g.similarity))


# ---- CSV: one row per strategy × epoch, with the run's config ---------------------------------------------------

_CONFIG_COLS = [f.name for f in fields(RunConfig)]
_EPOCH_COLS = [f.name for f in fields(EpochResult)]
CSV_COLUMNS = ["run", "reused", "device", *_CONFIG_COLS, *_EPOCH_COLS]


def to_frame(runs: Iterable[SweepRun]) -> pd.DataFrame:
    """One row per run x strategy x epoch, with the run's config columns (what the CSV holds)."""
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
