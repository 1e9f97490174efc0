"""The race on real data: order, determinism, pairing, caching, details, cancel, bad input, the teaching story."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import pytest
import torch

from tl_engine.config import STRATEGY_NAMES, RunConfig
from tl_engine.errors import ConfigError, DataError
from tl_engine.experiments.noise import Sample, compare
from tl_engine.training import race as train
from tl_engine.training import strategy_run

TIMING = {"seconds", "cum_seconds", "images_per_s", "train_seconds", "eval_seconds"}
pytestmark = pytest.mark.slow  # real races (a few seconds each)


def numbers(events):
    """What must repeat exactly: everything but the clock."""
    return [{k: v for k, v in e.to_dict().items() if k not in TIMING} for e in events]


def test_round_robin_order_and_sane_records(tiny_cfg):
    events = list(train.race(tiny_cfg))
    assert [(e.strategy, e.epoch) for e in events] == [(s, ep) for ep in (1, 2) for s in STRATEGY_NAMES]
    for e in events:
        assert 0 <= e.train_acc <= 1 and 0 <= e.test_acc <= 1 and 0 <= e.val_acc <= 1
        assert e.seconds > 0 and e.images_per_s > 0 and e.train_seconds > 0 and e.eval_seconds > 0
        assert e.seconds == pytest.approx(e.train_seconds + e.eval_seconds, rel=1e-6)
        assert 0 < e.trainable_params <= e.total_params
    by = {e.strategy: e for e in events if e.epoch == 2}
    for s in STRATEGY_NAMES:
        first = next(e for e in events if e.strategy == s and e.epoch == 1)
        assert by[s].cum_seconds == pytest.approx(first.seconds + by[s].seconds)
    assert by["frozen"].trainable_params < by["finetune"].trainable_params < by["scratch"].trainable_params


def test_same_seed_same_numbers_and_strategies_independent(tiny_cfg):
    a = numbers(train.race(tiny_cfg))
    assert a == numbers(train.race(tiny_cfg))
    alone = numbers(train.race(dataclasses.replace(tiny_cfg, strategies=("finetune",))))
    assert alone == [e for e in a if e["strategy"] == "finetune"]
    other_seed = numbers(train.race(dataclasses.replace(tiny_cfg, seed=1)))
    assert other_seed != a


def test_paired_strategies_fine_tune_at_k7_is_the_frozen_strategy(tiny_cfg):
    """Same data order and head initialisation for every strategy: at k = 7 fine-tune and frozen are one thing."""
    cfg = dataclasses.replace(tiny_cfg, frozen_stages=7, epochs=3)
    by = {s: [(e.test_acc, e.val_acc, e.train_loss) for e in train.race(cfg) if e.strategy == s]
          for s in ("frozen", "finetune")}
    assert by["frozen"] == by["finetune"]
    moved = [(e.test_acc, e.train_loss) for e in train.race(dataclasses.replace(cfg, frozen_stages=6))
             if e.strategy == "finetune"]
    assert moved != [(a, c) for a, _, c in by["finetune"]]  # k = 6 trains more: the check above could fail


def test_result_details_agree_with_the_epochs_and_the_strip(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, frozen_stages=3)
    r = train.Race(cfg)
    list(r)
    result = r.result()
    assert result.completed and len(result.epochs) == cfg.total_epochs and len(result.classes) == 10
    for s, v in result.summary.items():
        cm = v.confusion_matrix
        assert sum(map(sum, cm)) == cfg.test_size
        assert sum(cm[i][i] for i in range(10)) / cfg.test_size == pytest.approx(v.final_test_acc)
        assert len(v.test_pred) == cfg.test_size and all(0 < c <= 1 for c in v.test_conf)
        assert len(v.per_class_acc) == 10
        frozen = strategy_run.frozen_stages(s, cfg.frozen_stages)
        stages = list(v.delta_theta)
        assert stages[-1] == "head" and len(stages) == 8
        assert all(v.delta_theta[n] == 0.0 for n in stages[:frozen]), s  # exactly zero: never touched
        assert all(v.delta_theta[n] > 0 for n in stages[frozen:]), s
    d = result.to_dict()
    assert set(d) >= {"config", "device", "wall_seconds", "completed", "skipped_images", "epochs", "summary"}
    assert type(result).from_dict(d).to_dict() == d


@pytest.mark.parametrize("augment", [False, True])
def test_cached_frozen_stages_equal_running_them_every_epoch(tiny_cfg, monkeypatch, augment):
    cfg = dataclasses.replace(tiny_cfg, strategies=("frozen", "finetune"), augment=augment)
    cached = list(train.race(cfg))
    monkeypatch.setattr(strategy_run, "CACHE_BUDGET_BYTES", 0)  # forces the frozen prefix to run per batch
    fresh = list(train.race(cfg))
    for a, b in zip(cached, fresh, strict=True):
        assert (a.strategy, a.epoch) == (b.strategy, b.epoch)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-4)
        assert a.test_acc == pytest.approx(b.test_acc, abs=1 / cfg.test_size + 1e-9)
        assert a.val_acc == pytest.approx(b.val_acc, abs=1 / cfg.val_size + 1e-9)


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0"])
def test_frozen_parts_unchanged_by_a_race(tiny_cfg, backbone):
    """Weights and BatchNorm running statistics of frozen stages are byte-identical after a real race."""
    from tl_engine.models.backbones import build

    r = train.Race(dataclasses.replace(tiny_cfg, frozen_stages=5, backbone=backbone), keep_models=True)
    list(r)
    models = r.models
    ref = build(backbone, 10).state_dict()
    for name, k in (("frozen", 7), ("finetune", 5)):
        got = models[name].state_dict()
        keys = [key for key in ref if key.startswith(tuple(f"stages.{i}." for i in range(k)))]
        assert keys and all(torch.equal(ref[key], got[key]) for key in keys), name
        if k < 7:  # the first trainable stage did learn (so the check above could fail)
            w = next(key for key in ref if key.startswith(f"stages.{k}.") and key.endswith("weight"))
            assert not torch.equal(ref[w], got[w])


def test_stop_ends_the_race_promptly(tiny_cfg):
    stop = threading.Event()
    cfg = dataclasses.replace(tiny_cfg, epochs=50)
    seen = []
    for e in train.race(cfg, stop):
        seen.append(e)
        stop.set()  # cancel after the first epoch: the next strategy stops before its first batch
    assert len(seen) == 1
    result = train.run_race(cfg, stop)
    assert result.completed is False and result.epochs == ()


@pytest.mark.parametrize("change, error, words", [
    ({"frozen_stages": 8}, ConfigError, "between 0 and 7"),
    ({"frozen_stages": -1}, ConfigError, "between 0 and 7"),
    ({"backbone": "vgg"}, ConfigError, "unknown backbone"),
    ({"epochs": 0}, ConfigError, "epochs"),
    ({"strategies": ("scratch", "magic")}, ConfigError, "strategies"),
    ({"device": "tpu"}, ConfigError, "device"),
    ({"seed": -1}, ConfigError, "seed"),
    ({"seed": 10**20}, ConfigError, "seed"),
    ({"lr_head": float("inf")}, ConfigError, "lr_head"),
    ({"lr_scratch": float("nan")}, ConfigError, "lr_scratch"),
    ({"dataset": "imagenet"}, DataError, "fashion-mnist"),
    ({"train_size": 10**6}, DataError, "train"),
    ({"train_size": 5}, DataError, "classes"),
])
def test_bad_config_gets_a_clear_error(tiny_cfg, change, error, words):
    with pytest.raises(error, match=words):
        next(train.race(dataclasses.replace(tiny_cfg, **change)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_is_an_error(tiny_cfg):
    with pytest.raises(ConfigError, match="no CUDA"):
        next(train.race(dataclasses.replace(tiny_cfg, device="cuda")))


def test_engine_imports_without_streamlit_or_plotly():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, *a):\n"
        "        if name.split('.')[0] in ('streamlit', 'plotly'): raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tl_engine.training.race, tl_engine.cli.main, tl_engine.data.bundled, tl_engine.jobs.scheduler\n"
        "tl_engine.cli.main.build_parser()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_teaching_story_holds_on_fashion_mnist():
    """A lighter version of the benchmark's story check (median of 3 seeds there)."""
    cfg = RunConfig(dataset="fashion-mnist", train_size=200, val_size=100, test_size=300, epochs=4, device="cpu",
                    seed=0)
    events = list(train.race(cfg))
    first = {e.strategy: e.test_acc for e in events if e.epoch == 1}
    last = {e.strategy: e.test_acc for e in events if e.epoch == cfg.epochs}
    assert first["frozen"] > first["scratch"] + 0.2  # transfer gives a head start
    # One seed on 300 test images tells fine-tune and frozen apart only beyond ~±7 points (the project's own
    # noise rule): fine-tune must not be *clearly* behind (it is clearly ahead on the default race, 3 seeds).
    behind = compare(Sample.accuracy({0: last["frozen"]}, cfg.test_size),
                     Sample.accuracy({0: last["finetune"]}, cfg.test_size), cfg.test_size)
    assert not (behind.clear and behind.margin > 0), behind
    assert last["frozen"] > last["scratch"]
    assert last["scratch"] > 0.2  # still learns: chance is 0.1
