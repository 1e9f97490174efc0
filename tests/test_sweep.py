"""Sweeps: the grids, the verdict and gains helpers, CSV, and real tiny sweeps with reuse, stop and the CLI."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import tl_engine.train
from tl_engine import cli
from tl_engine.config import STRATEGY_NAMES, EpochResult, RunConfig, summarize
from tl_engine.errors import ConfigError
from tl_engine.store import ResultStore
from tl_engine.sweep import (
    CLAIM_LARGE,
    SweepRun,
    csv_text,
    curve_points,
    learning_curve_verdict,
    plan,
    read_csv,
    run_sweep,
    to_csv,
    transfer_gains,
)

TINY = RunConfig(dataset="mnist", train_size=20, test_size=20, epochs=1, resolution=32,
                 device="cpu")


# ---- grids -------------------------------------------------------------------------------------------------------

def test_freeze_grid_runs_k_from_7_down_to_0_then_scratch():
    base = replace(TINY, frozen_stages=3, epochs=2)
    grid = plan("freeze", base)
    assert [(c.strategies, c.frozen_stages) for c in grid] == [(("finetune",), k) for k in range(7, -1, -1)] + [
        (("scratch",), 0)]
    assert all(replace(c, strategies=base.strategies, frozen_stages=3) == base for c in grid)  # nothing else moves
    assert [c.frozen_stages for c in plan("freeze", base, ks=[2, 5])][:2] == [2, 5]


def test_size_grid_is_log_spaced_ascending_and_clamped_to_the_dataset():
    base = replace(TINY, train_size=123)
    assert [c.train_size for c in plan("size", base, n_train=5000)] == [50, 100, 200, 500, 1000, 2000, 5000]
    assert [c.train_size for c in plan("size", base, n_train=4000)] == [50, 100, 200, 500, 1000, 2000, 4000]
    assert [c.train_size for c in plan("size", base, n_train=150)] == [50, 100, 150]
    grid = plan("size", replace(base, strategies=("scratch",)), sizes=[40, 20], n_train=5000)
    assert [(c.train_size, c.strategies) for c in grid] == [(20, STRATEGY_NAMES), (40, STRATEGY_NAMES)]


def test_domain_grid_orders_datasets_by_similarity():
    infos = [SimpleNamespace(name=n, similarity=s, n_train=t, n_test=100) for n, s, t in
             [("digits", "low", 4000), ("mine", "unknown", 30), ("clothes", "medium", 5000),
              ("bricks", "high", 5000), ("animals", "medium", 5000)]]
    grid = plan("domain", replace(TINY, train_size=500, test_size=200), datasets=infos)
    assert [c.dataset for c in grid] == ["bricks", "clothes", "animals", "digits", "mine"]
    assert [(c.train_size, c.test_size) for c in grid][-2:] == [(500, 100), (30, 100)]  # clamped to what exists
    assert all(c.strategies == STRATEGY_NAMES for c in grid)


def test_domain_grid_defaults_to_the_bundled_datasets():
    grid = plan("domain", TINY)
    assert {c.dataset for c in grid} >= {"mnist", "fashion-mnist"}
    assert grid[0].dataset == "textures"  # the one tagged "high"


def test_domain_grid_adds_the_users_own_dataset_last(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, train_images=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
             train_labels=np.arange(30) % 3, test_images=rng.integers(0, 255, (15, 28, 28), dtype=np.uint8),
             test_labels=np.arange(15) % 3)
    grid = plan("domain", replace(TINY, dataset=str(path), train_size=40))
    assert grid[-1].dataset == str(path) and (grid[-1].train_size, grid[-1].test_size) == (30, 15)
    assert [c.dataset for c in grid[:-1]] == [i.name for i in plan_infos()]
    assert plan("domain", replace(TINY, dataset="mnist"))[-1].dataset != str(path)  # bundled base: no extra


def plan_infos():
    from tl_engine.data import list_datasets

    return sorted(list_datasets(), key=lambda i: ("high", "medium", "low").index(i.similarity))


def test_unknown_experiment_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown experiment"):
        plan("depth", TINY)


# ---- verdict and gains (pure) -------------------------------------------------------------------------------------

def test_verdict_supported_states_both_numbers():
    v = learning_curve_verdict({"finetune": [(500, 0.884), (5000, 0.95)], "scratch": [(500, 0.7), (5000, 0.861)]})
    assert v.supported is True and (v.finetune_size, v.scratch_size) == (500, 5000)
    assert v.sentence == ("This run supports the claim: fine-tuned on 500 images the pretrained model reached "
                          "88.4 % test accuracy, above the 86.1 % of the model trained from scratch on 5,000.")


def test_verdict_not_supported_and_tie():
    v = learning_curve_verdict({"finetune": [(500, 0.80)], "scratch": [(500, 0.6), (5000, 0.853)]})
    assert v.supported is False and "does not support" in v.sentence and "80.0 %" in v.sentence
    assert "below the 85.3 %" in v.sentence
    tie = learning_curve_verdict({"finetune": [(500, 0.85001)], "scratch": [(5000, 0.84999)]})
    assert tie.supported is False and "equal to the 85.0 %" in tie.sentence


def test_verdict_says_when_5000_was_not_run():
    v = learning_curve_verdict({"finetune": [(200, 0.5), (500, 0.9), (4000, 0.95)],
                                "scratch": [(500, 0.6), (4000, 0.92)]})
    assert v.scratch_size == 4000 and v.supported is False
    assert v.sentence.startswith("5,000 training images were not run (the largest size run is 4,000)")
    assert "92.0 %" in v.sentence and "90.0 %" in v.sentence
    assert CLAIM_LARGE == 5000


def test_verdict_without_500_or_without_a_larger_scratch():
    v = learning_curve_verdict({"finetune": [(200, 0.7), (1000, 0.9)], "scratch": [(5000, 0.65)]})
    assert v.finetune_size == 200 and v.supported is True and "fine-tune is taken at 200" in v.sentence
    small = learning_curve_verdict({"finetune": [(50, 0.5), (100, 0.6)], "scratch": [(50, 0.4), (100, 0.5)]})
    assert small.supported is None and "cannot be tested" in small.sentence
    assert learning_curve_verdict({}).supported is None


def fake_run(cfg: RunConfig, accs: dict[str, float], reused: bool = False) -> SweepRun:
    events = [EpochResult(s, e, 0.9, 0.5, 1.0, accs[s] - 0.05 * (cfg.epochs - e), 1000 + i, 0.25, 0.25 * e, 80.5,
                          5000) for e in range(1, cfg.epochs + 1) for i, s in enumerate(cfg.strategies)]
    return SweepRun(cfg, summarize(events), [e.to_dict() for e in events], reused, "cpu")


def test_curve_points_and_gains_from_runs():
    runs = [fake_run(replace(TINY, dataset=d, train_size=n), {"scratch": sc, "frozen": fr, "finetune": ft})
            for d, n, sc, fr, ft in [("digits", 50, 0.9, 0.7, 0.92), ("bricks", 100, 0.6, 0.8, 0.85)]]
    assert curve_points(runs)["finetune"] == [(50, 0.92), (100, 0.85)]
    gains = transfer_gains(runs, {"digits": "low", "bricks": "high"})
    assert [g.dataset for g in gains] == ["bricks", "digits"]
    assert gains[0].finetune_gain == pytest.approx(0.25) and gains[0].frozen_gain == pytest.approx(0.2)
    assert gains[1].frozen_gain == pytest.approx(-0.2)  # a loss is reported as a loss
    assert transfer_gains(runs, {})[0].similarity == "unknown"


def test_csv_round_trips_and_has_one_row_per_strategy_and_epoch(tmp_path):
    runs = [fake_run(replace(TINY, epochs=2, augment=True, lr_head=0.0123456789), {"scratch": 0.5, "frozen": 0.6,
                                                                                   "finetune": 0.7}),
            fake_run(replace(TINY, strategies=("finetune",), frozen_stages=6), {"finetune": 0.1 / 3}, reused=True)]
    to_csv(runs, tmp_path / "runs.csv")
    back = read_csv(tmp_path / "runs.csv")
    assert back == runs
    text = csv_text(runs)
    assert text.encode() == (tmp_path / "runs.csv").read_bytes()
    assert len(text.strip().splitlines()) == 1 + 6 + 1
    assert read_csv(io.StringIO(text)) == runs


# ---- real sweeps (tiny races on the CPU) ----------------------------------------------------------------------------

def test_sweep_stores_runs_and_reuses_them_without_training(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "r.sqlite")
    progress = []
    fresh = list(run_sweep("freeze", TINY, store, ks=[7, 6], on_run=progress.append))
    assert [(r.config.strategies, r.config.frozen_stages, r.reused) for r in fresh] == [
        (("finetune",), 7, False), (("finetune",), 6, False), (("scratch",), 0, False)]
    assert all(len(r.epochs) == 1 and 0 <= r.summary[r.config.strategies[0]]["final_test_acc"] <= 1 for r in fresh)
    assert fresh[0].summary["finetune"]["trainable_params"] < fresh[1].summary["finetune"]["trainable_params"]
    assert progress[0].done == 0 and progress[-1].done == progress[-1].total == 3 and progress[-1].fraction == 1
    assert progress[-1].seconds_left == 0 and any(p.seconds_left for p in progress[1:-1])
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)

    def no_training(*a, **k):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(tl_engine.train, "race", no_training)
    t0 = time.perf_counter()
    again = list(run_sweep("freeze", TINY, store, ks=[7, 6]))
    assert time.perf_counter() - t0 < 2.0
    assert [r.reused for r in again] == [True] * 3
    assert [(r.summary, r.epochs) for r in again] == [(r.summary, r.epochs) for r in fresh]


def test_k7_is_cheap_because_the_frozen_body_runs_once():
    cfg = replace(TINY, train_size=32, test_size=32, resolution=48, epochs=3)
    k7, k0 = itertools.islice(run_sweep("freeze", cfg, None, ks=[7, 0]), 2)
    assert k7.summary["finetune"]["trainable_params"] < k0.summary["finetune"]["trainable_params"] / 100
    # After epoch 1 (which caches the frozen body's output) k = 7 only trains the head: a large margin, so
    # other processes on a busy 2-core machine cannot flip the comparison.
    later = [sum(e["seconds"] for e in r.epochs[1:]) for r in (k7, k0)]
    assert later[0] < 0.2 * later[1]


def test_a_strategy_alone_equals_the_same_strategy_in_a_full_race(tmp_path):
    """Why the store may answer a scratch-only run from a three-strategy race (see store.py)."""
    trio = tl_engine.train.run_race(replace(TINY, frozen_stages=5))
    alone = tl_engine.train.run_race(replace(TINY, strategies=("scratch",), frozen_stages=0))
    pick = [{k: v for k, v in e.items() if "seconds" not in k and k != "images_per_s"} for e in trio["epochs"]]
    mine = [{k: v for k, v in e.items() if "seconds" not in k and k != "images_per_s"} for e in alone["epochs"]]
    assert [e for e in pick if e["strategy"] == "scratch"] == mine


def test_stop_keeps_finished_runs_and_never_stores_the_interrupted_one(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    stop = threading.Event()
    cfg = replace(TINY, epochs=2)

    def on_run(p):
        if p.done == 1 and p.fraction > 1.2 / p.total:  # one epoch into the second race
            stop.set()

    runs = list(run_sweep("freeze", cfg, store, stop=stop, on_run=on_run, ks=[7, 6]))
    assert [r.config.frozen_stages for r in runs] == [7]
    assert [r["config"]["frozen_stages"] for r in store.all()] == [7]
    assert store.get(replace(cfg, strategies=("finetune",), frozen_stages=6)) is None


def test_cli_sweep_writes_json_and_csv_and_reuses(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path))
    args = ["sweep", "size", "--dataset", "mnist", "--sizes", "20", "30", "--test-size", "20", "--epochs", "1",
            "--resolution", "32", "--device", "cpu",
            "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv")]
    assert cli.main(args) == 0
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["kind"] == "size" and [r["config"]["train_size"] for r in out["runs"]] == [20, 30]
    assert set(out["runs"][0]["summary"]) == set(STRATEGY_NAMES) and out["runs"][0]["reused"] is False
    assert [r.summary for r in read_csv(tmp_path / "s.csv")] == [r["summary"] for r in out["runs"]]
    text = capsys.readouterr().out
    assert "[2/2]" in text and "cannot be tested" in text  # 30 images: the claim needs 500 and 5,000
    assert (tmp_path / "results.sqlite").exists()
    assert cli.main(args) == 0
    again = json.loads((tmp_path / "s.json").read_text())
    assert [r["reused"] for r in again["runs"]] == [True, True]
    assert [r["summary"] for r in again["runs"]] == [r["summary"] for r in out["runs"]]


def test_cli_help_documents_the_outputs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = capsys.readouterr().out
    for word in ("freeze", "size", "domain", "--csv", "--json", '"runs"', "results.sqlite", "Ctrl-C"):
        assert word in text, word
