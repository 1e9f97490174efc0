"""Sweeps: the grids (with seeds), the aggregates, CSV/JSON shapes, and real tiny sweeps with reuse, stop and CLI."""

from __future__ import annotations

import io
import itertools
import json
import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import tl_engine.training.race
from tl_engine.cli import main as cli
from tl_engine.cli.sweep import format_table, sweep_json
from tl_engine.config import STRATEGY_NAMES, EpochResult, RaceResult, RunConfig
from tl_engine.errors import ConfigError
from tl_engine.experiments.sweep import (
    DOMAIN_PER_CLASS,
    SweepRun,
    csv_text,
    plan,
    points,
    read_csv,
    run_sweep,
    sweep_verdict,
    to_csv,
)
from tl_engine.store.results import ResultStore

TINY = RunConfig(dataset="mnist", train_size=20, test_size=20, val_size=20, epochs=1, resolution=32, device="cpu")


# ---- grids -------------------------------------------------------------------------------------------------------

def test_freeze_grid_runs_k_from_7_down_to_0_then_scratch():
    base = replace(TINY, frozen_stages=3, epochs=2)
    grid = plan("freeze", base)
    assert [(c.strategies, c.frozen_stages) for c in grid] == [(("finetune",), k) for k in range(7, -1, -1)] + [
        (("scratch",), 0)]
    assert all(replace(c, strategies=base.strategies, frozen_stages=3) == base for c in grid)  # nothing else moves
    assert [c.frozen_stages for c in plan("freeze", base, ks=[2, 5])][:2] == [2, 5]


def test_seeds_repeat_the_whole_grid_seed_after_seed():
    base = replace(TINY, seed=10)
    grid = plan("freeze", base, seeds=3, ks=[7, 6])
    assert [(c.seed, c.frozen_stages, c.strategies) for c in grid] == [
        (s, k, st) for s in (10, 11, 12) for k, st in ((7, ("finetune",)), (6, ("finetune",)), (0, ("scratch",)))]
    assert plan("size", base, seeds=1, n_train=5000) == plan("size", base, n_train=5000)
    with pytest.raises(ConfigError, match="seeds"):
        plan("size", base, seeds=0, n_train=5000)


def test_size_grid_is_log_spaced_ascending_and_clamped_to_the_dataset():
    base = replace(TINY, train_size=123)
    assert [c.train_size for c in plan("size", base, n_train=5000)] == [50, 100, 200, 500, 1000, 2000, 5000]
    assert [c.train_size for c in plan("size", base, n_train=4000)] == [50, 100, 200, 500, 1000, 2000, 4000]
    assert [c.train_size for c in plan("size", base, n_train=150)] == [50, 100, 150]
    grid = plan("size", replace(base, strategies=("scratch",)), sizes=[40, 20], n_train=5000)
    assert [(c.train_size, c.strategies) for c in grid] == [(20, STRATEGY_NAMES), (40, STRATEGY_NAMES)]


def info(name: str, classes: int, n_train: int = 5000, n_val: int = 1000, n_test: int = 1000) -> SimpleNamespace:
    return SimpleNamespace(name=name, classes=tuple(range(classes)), n_train=n_train, n_val=n_val, n_test=n_test)


def test_domain_grid_orders_by_measured_score_with_the_same_images_per_class():
    infos = [info("digits", 10, 4000), info("mine", 3, 900, 60, 100), info("clothes", 10), info("bricks", 3)]
    scores = {"digits": 0.2, "clothes": 0.55, "bricks": 0.8}
    grid = plan("domain", replace(TINY, test_size=200, val_size=500), datasets=infos, scores=scores)
    assert [c.dataset for c in grid] == ["bricks", "clothes", "digits", "mine"]  # unmeasured last
    per_class = {c.dataset: c.train_size // len(i.classes) for c, i in zip(grid, [infos[3], infos[2], infos[0],
                                                                                   infos[1]])}
    assert set(per_class.values()) == {DOMAIN_PER_CLASS}  # fair: the same images per class everywhere
    assert [c.train_size for c in grid] == [150, 500, 500, 150]
    assert [(c.test_size, c.val_size) for c in grid][-1] == (100, 60)  # clamped to what the set holds
    assert all(c.strategies == STRATEGY_NAMES for c in grid)
    # A set that cannot supply 200 per class lowers every set to what all can supply: 300 // 3 = 100.
    small = plan("domain", TINY, datasets=[*infos, info("tiny", 3, 300)], per_class=200)
    assert {c.train_size // (3 if c.dataset in ("bricks", "mine", "tiny") else 10) for c in small} == {100}
    assert [c.dataset for c in plan("domain", TINY, datasets=infos)] == ["digits", "mine", "clothes", "bricks"]


def test_domain_grid_defaults_to_the_bundled_datasets_and_adds_the_users_own_last(tmp_path):
    from tl_engine.data.bundled import list_datasets

    assert [c.dataset for c in plan("domain", TINY)] == [i.name for i in list_datasets()]
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, train_images=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
             train_labels=np.arange(30) % 3, test_images=rng.integers(0, 255, (15, 28, 28), dtype=np.uint8),
             test_labels=np.arange(15) % 3)
    grid = plan("domain", replace(TINY, dataset=str(path)), scores={"mnist": 0.9})
    assert grid[0].dataset == "mnist" and grid[-1].dataset == str(path)
    per_class = grid[-1].train_size // 3  # all the upload's train split offers per class (< 50)
    classes = {i.name: len(i.classes) for i in list_datasets()}
    assert per_class < DOMAIN_PER_CLASS and all(c.train_size == per_class * classes[c.dataset] for c in grid[:-1])


def test_unknown_experiment_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown experiment"):
        plan("depth", TINY)


# ---- aggregates and shapes (pure, hand-made results) ------------------------------------------------------------

def fake_run(cfg: RunConfig, accs: dict[str, float], reused: bool = False) -> SweepRun:
    events = [EpochResult(s, e, 0.9, 0.5, 1.0, accs[s] - 0.05 * (cfg.epochs - e), 1000 + i, 0.25, 0.25 * e, 80.5,
                          5000, 0.2, 0.05, 1.0, accs[s] - 0.01) for e in range(1, cfg.epochs + 1)
              for i, s in enumerate(cfg.strategies)]
    return SweepRun(RaceResult.build(cfg, "cpu", 1.0, events), reused)


def size_runs(table: dict[tuple[int, int], tuple[float, float, float]]) -> list[SweepRun]:
    """(train_size, seed) -> (scratch, frozen, finetune) accuracies."""
    return [fake_run(replace(TINY, train_size=n, seed=seed, test_size=1000), dict(zip(STRATEGY_NAMES, a)))
            for (n, seed), a in table.items()]


def test_points_aggregate_seeds_into_mean_min_max():
    runs = size_runs({(500, 0): (0.5, 0.8, 0.9), (500, 1): (0.6, 0.7, 0.86), (500, 2): (0.55, 0.75, 0.88),
                      (50, 0): (0.2, 0.5, 0.5)})
    pts = points("size", runs)
    ft = pts["finetune"]
    assert [p.x for p in ft] == [50, 500] and [p.n_seeds for p in ft] == [1, 3]
    assert (ft[1].mean, ft[1].min, ft[1].max) == (pytest.approx(0.88), 0.86, 0.9)
    assert ft[1].val_mean == pytest.approx(0.87) and ft[1].test_size == 1000
    d = ft[1].to_dict()
    assert {"mean", "min", "max", "n_seeds"} <= set(d) and d["seeds"] == [0, 1, 2]
    again = points("size", runs + runs[:1])  # the same seed reused counts once
    assert again["finetune"][1].n_seeds == 3


def test_sweep_verdicts_per_kind():
    runs = size_runs({(500, 0): (0.5, 0.8, 0.9), (5000, 0): (0.8, 0.85, 0.95)})
    v = sweep_verdict("size", points("size", runs))
    assert v.status == "supported" and v.margin == pytest.approx(0.1)
    freeze = [fake_run(replace(TINY, strategies=("finetune",), frozen_stages=k, test_size=1000), {"finetune": a})
              for k, a in [(7, 0.6), (4, 0.9), (0, 0.7)]]
    assert sweep_verdict("freeze", points("freeze", freeze)).numbers["best"] == "k = 4"


def test_json_carries_points_and_the_verdict_status():
    runs = size_runs({(500, s): (0.5, 0.8, 0.9 - s / 100) for s in range(3)})
    doc = json.loads(json.dumps(sweep_json("size", runs, 3)))
    assert doc["kind"] == "size" and doc["seeds"] == 3 and len(doc["runs"]) == 3
    p = doc["points"]["finetune"][0]
    assert (p["x"], p["n_seeds"], p["min"], p["max"]) == (500, 3, 0.88, 0.9) and p["mean"] == pytest.approx(0.89)
    assert doc["verdict"]["status"] == "inconclusive" and "5,000" in doc["verdict"]["sentence"]
    table = format_table("size", runs)
    assert "88.0..90.0" in table and "verdict: inconclusive" in table


def test_domain_json_has_gains_ordered_by_score():
    runs = [fake_run(replace(TINY, dataset=d, seed=s, test_size=1000), dict(zip(STRATEGY_NAMES, a)))
            for s in (0, 1) for d, a in [("mnist", (0.95, 0.7, 0.96)), ("textures", (0.6, 0.9, 0.93))]]
    doc = sweep_json("domain", runs, 2, {"mnist": 0.1, "textures": 0.7})
    fin = [g for g in doc["gains"] if g["strategy"] == "finetune"]
    assert [g["dataset"] for g in fin] == ["textures", "mnist"]
    assert fin[0]["mean"] == pytest.approx((0.93 - 0.6) / 0.4) and fin[0]["n_seeds"] == 2
    assert doc["verdict"]["status"] in ("supported", "not supported", "inconclusive")


def test_csv_round_trips_and_has_one_row_per_run_strategy_and_epoch(tmp_path):
    runs = [fake_run(replace(TINY, epochs=2, augment=True, lr_head=0.0123456789, seed=s), {"scratch": 0.5,
                                                                                           "frozen": 0.6,
                                                                                           "finetune": 0.7})
            for s in (0, 1)]
    runs.append(fake_run(replace(TINY, strategies=("finetune",), frozen_stages=6), {"finetune": 0.1 / 3}, True))
    to_csv(runs, tmp_path / "runs.csv")
    back = read_csv(tmp_path / "runs.csv")
    assert [(r.result.epochs, r.config, r.reused) for r in back] == [(r.result.epochs, r.config, r.reused)
                                                                       for r in runs]
    text = csv_text(runs)
    assert text.encode() == (tmp_path / "runs.csv").read_bytes()
    lines = text.strip().splitlines()
    assert len(lines) == 1 + 2 * 6 + 1 and "seed" in lines[0].split(",")
    assert len(read_csv(io.StringIO(text))) == 3


# ---- real sweeps (tiny races on the CPU) ----------------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_with_seeds_stores_runs_and_reuses_them_without_training(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite")
    progress = []
    fresh = list(run_sweep("freeze", TINY, store, ks=[7], seeds=2, on_run=progress.append))
    assert [(r.config.strategies, r.config.seed, r.reused) for r in fresh] == [
        (("finetune",), 0, False), (("scratch",), 0, False), (("finetune",), 1, False), (("scratch",), 1, False)]
    assert all(len(r.result.epochs) == 1 for r in fresh)
    assert progress[-1].done == progress[-1].total == 4 and progress[-1].fraction == 1
    pts = points("freeze", fresh)
    assert [p.n_seeds for p in pts["finetune"] + pts["scratch"]] == [2, 2]
    assert all(0 <= p.min <= p.mean <= p.max <= 1 for p in pts["finetune"] + pts["scratch"])

    def no_training(*a, **k):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(tl_engine.training.race, "Race", no_training)
    again = list(run_sweep("freeze", TINY, store, ks=[7], seeds=2))
    assert [r.reused for r in again] == [True] * 4
    assert [r.result.epochs for r in again] == [r.result.epochs for r in fresh]


@pytest.mark.slow
def test_k7_trains_only_the_head():
    # How much cheaper k = 7 is, is a benchmark's question (bench_sweep), not a timed test's.
    cfg = replace(TINY, train_size=32, test_size=32, resolution=48, epochs=1)
    k7, k0 = itertools.islice(run_sweep("freeze", cfg, None, ks=[7, 0]), 2)
    assert k7.summary["finetune"].trainable_params < k0.summary["finetune"].trainable_params / 100
    assert k7.summary["finetune"].delta_theta["s7"] == 0.0 < k0.summary["finetune"].delta_theta["stem"]


@pytest.mark.slow
def test_stop_keeps_finished_runs_and_never_stores_the_interrupted_one(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    stop = threading.Event()
    cfg = replace(TINY, epochs=2)

    def on_run(p):
        if p.done == 1 and p.fraction > 1.2 / p.total:  # one epoch into the second race
            stop.set()

    runs = list(run_sweep("freeze", cfg, store, stop=stop, on_run=on_run, ks=[7, 6]))
    assert [r.config.frozen_stages for r in runs] == [7]
    assert [r.config.frozen_stages for r in store.all()] == [7]
    assert store.get(replace(cfg, strategies=("finetune",), frozen_stages=6)) is None


@pytest.mark.slow
def test_cli_sweep_with_seeds_writes_json_and_csv_and_reuses(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path))
    args = ["sweep", "size", "--dataset", "mnist", "--sizes", "20", "--test-size", "20", "--val-size", "20",
            "--epochs", "1", "--resolution", "32", "--device", "cpu", "--seeds", "2",
            "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv")]
    assert cli.main(args) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["kind"] == "size" and out["seeds"] == 2
    assert [(r["config"]["train_size"], r["config"]["seed"]) for r in out["runs"]] == [(20, 0), (20, 1)]
    assert {p["n_seeds"] for ps in out["points"].values() for p in ps} == {2}
    assert out["verdict"]["status"] == "inconclusive"  # 20 images: the claim needs runs at 500 and 5,000
    assert [r.config.seed for r in read_csv(tmp_path / "s.csv")] == [0, 1]
    text = capsys.readouterr().out
    assert "[2/2]" in text and "verdict: inconclusive" in text and "needs a run at 500" in text
    assert cli.main(args) == 0
    again = json.loads((tmp_path / "s.json").read_text())
    assert [r["reused"] for r in again["runs"]] == [True, True]
    assert again["points"] == out["points"]


def test_cli_help_documents_the_outputs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    for word in ("freeze", "size", "domain", "--csv", "--json", "--seeds", "--per-class", '"points"', "n_seeds",
                 "inconclusive", "results.sqlite", "Ctrl-C"):
        assert word in text, word
