"""The race on real data: order, determinism, caching, cancel, bad input, and the teaching story."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import pytest
import torch

from tl_engine import train
from tl_engine.config import STRATEGY_NAMES, RunConfig
from tl_engine.errors import ConfigError, DataError

TIMING = {"seconds", "cum_seconds", "images_per_s"}


def numbers(events):
    """What must repeat exactly: everything but the clock."""
    return [{k: v for k, v in e.to_dict().items() if k not in TIMING} for e in events]


def test_round_robin_order_and_sane_records(tiny_cfg):
    events = list(train.race(tiny_cfg))
    assert [(e.strategy, e.epoch) for e in events] == [(s, ep) for ep in (1, 2) for s in STRATEGY_NAMES]
    for e in events:
        assert 0 <= e.train_acc <= 1 and 0 <= e.test_acc <= 1 and e.seconds > 0 and e.images_per_s > 0
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


@pytest.mark.parametrize("augment", [False, True])
def test_cached_frozen_stages_equal_running_them_every_epoch(tiny_cfg, monkeypatch, augment):
    cfg = dataclasses.replace(tiny_cfg, strategies=("frozen", "finetune"), augment=augment)
    cached = list(train.race(cfg))
    monkeypatch.setattr(train, "CACHE_BUDGET_BYTES", 0)  # forces the frozen prefix to run per batch
    fresh = list(train.race(cfg))
    for a, b in zip(cached, fresh, strict=True):
        assert (a.strategy, a.epoch) == (b.strategy, b.epoch)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-4)
        assert a.test_acc == pytest.approx(b.test_acc, abs=1 / cfg.test_size + 1e-9)


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "efficientnet_lite0"])
def test_frozen_parts_unchanged_by_a_race(tiny_cfg, backbone):
    """Weights and BatchNorm running statistics of frozen stages are byte-identical after a real race."""
    from tl_engine.backbones import build

    models = {}
    list(train.race(dataclasses.replace(tiny_cfg, frozen_stages=5, backbone=backbone), models=models))
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
    assert result["completed"] is False and result["epochs"] == []


@pytest.mark.parametrize("change, error, words", [
    ({"frozen_stages": 8}, ConfigError, "between 0 and 7"),
    ({"frozen_stages": -1}, ConfigError, "between 0 and 7"),
    ({"backbone": "vgg"}, ConfigError, "unknown backbone"),
    ({"epochs": 0}, ConfigError, "epochs"),
    ({"strategies": ("scratch", "magic")}, ConfigError, "strategies"),
    ({"device": "tpu"}, ConfigError, "device"),
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
        "import tl_engine.train, tl_engine.cli, tl_engine.data\n"
        "tl_engine.cli.build_parser()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_teaching_story_holds_on_fashion_mnist():
    """A lighter version of the benchmark's story check (median of 3 seeds there)."""
    cfg = RunConfig(dataset="fashion-mnist", train_size=200, test_size=300, epochs=4, device="cpu", seed=0)
    events = list(train.race(cfg))
    first = {e.strategy: e.test_acc for e in events if e.epoch == 1}
    last = {e.strategy: e.test_acc for e in events if e.epoch == cfg.epochs}
    assert first["frozen"] > first["scratch"] + 0.2  # transfer gives a head start
    assert last["finetune"] >= last["frozen"] - 0.02 and last["frozen"] > last["scratch"]
    assert last["scratch"] > 0.2  # still learns: chance is 0.1
