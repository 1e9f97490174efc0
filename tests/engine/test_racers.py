"""The added racers: gradual (head first), LoRA, early layers, pixels; their counts, store keys and CLI."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tl_engine.cli.main import main
from tl_engine.config import KNOWN_STRATEGIES, NUM_STAGES, RunConfig
from tl_engine.inspect.keep import save_trained
from tl_engine.models import stage_table, total_params, trainable_params
from tl_engine.models.lora import LoRAConv2d, add_lora, merge_lora
from tl_engine.store.results import config_id, ignored_fields, strategy_key
from tl_engine.training import Race, prepare_data, resolve_device
from tl_engine.training.strategy_run import setup_strategy, train_epoch


def by_strategy(events):
    out = {}
    for e in events:
        out.setdefault(e.strategy, []).append(e)
    return out


@pytest.mark.slow  # trains or decodes for a second or more: the edit-run loop stays under 20 s
def test_gradual_head_epochs_are_exactly_frozen_then_it_unfreezes(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, epochs=4, head_epochs=2, strategies=("frozen", "gradual", "finetune"))
    runs = by_strategy(Race(cfg))
    frozen, gradual, fine = runs["frozen"], runs["gradual"], runs["finetune"]
    for a, b in zip(frozen[:2], gradual[:2], strict=True):  # same streams, same numbers: bit for bit
        assert (a.train_loss, a.train_acc, a.val_loss, a.val_acc, a.test_loss, a.test_acc, a.trainable_params) == (
            b.train_loss, b.train_acc, b.val_loss, b.val_acc, b.test_loss, b.test_acc, b.trainable_params)
    assert gradual[2].train_loss != frozen[2].train_loss  # epoch h+1: the body learns
    assert gradual[2].trainable_params == fine[0].trainable_params > frozen[0].trainable_params


def test_gradual_body_rate_is_the_ratio_of_lr_body(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, epochs=3, head_epochs=1, gradual_ratio=0.05)
    data = prepare_data(cfg, resolve_device("cpu"))
    run = setup_strategy("gradual", cfg, data, torch.device("cpu"), threading.Event())
    assert len(run.steps) == 1 and run.f == NUM_STAGES
    for n in (1, 2):
        train_epoch(run, n, data, torch.device("cpu"), threading.Event(), 0.0)
    assert len(run.steps) == 2 and run.f == cfg.frozen_stages
    body_opt = run.steps[1][0]
    assert [g["name"] for g in body_opt.param_groups] == [f"stage{i}" for i in range(cfg.frozen_stages, NUM_STAGES)]
    assert [g["initial_lr"] for g in body_opt.param_groups] == pytest.approx([cfg.lr_body * 0.05] * 3)


def test_lora_formula_and_merge():
    torch.manual_seed(0)
    for conv in (nn.Conv2d(6, 10, 3, stride=2, padding=1, bias=False), nn.Conv2d(6, 10, 1)):
        lora = LoRAConv2d(conv, rank=3, alpha=6.0)
        nn.init.normal_(lora.lora_B)  # zero at the start; make the low-rank term matter
        x = torch.randn(2, 6, 9, 9)
        b, a = lora.lora_B.flatten(1), lora.lora_A.flatten(1)
        w = conv.weight + (6.0 / 3) * (b @ a).view_as(conv.weight)  # W + (α/r)·B·A
        assert torch.allclose(lora(x), F.conv2d(x, w, conv.bias, conv.stride, conv.padding), atol=1e-5)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, groups=8))
    added = add_lora(nn.ModuleList([net]), 0, rank=2, seed=0)
    assert len(added) == 1  # the depthwise convolution gets none
    nn.init.normal_(added[0].lora_B)
    merged = merge_lora(net.eval())
    x = torch.randn(2, 3, 8, 8)
    assert type(merged[0]) is nn.Conv2d and torch.allclose(merged(x), net(x), atol=1e-5)
    assert isinstance(net[0], LoRAConv2d)  # the original keeps its adapters


def test_lora_locks_base_weights_and_batchnorm_and_trains_adapters_plus_head(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, epochs=2, lora_rank=4)
    device = torch.device("cpu")
    data = prepare_data(cfg, device)
    run = setup_strategy("lora", cfg, data, device, threading.Event())
    base = {k: v.clone() for k, v in run.net.stages.state_dict().items() if "lora_" not in k}
    for n in (1, 2):
        train_epoch(run, n, data, device, threading.Event(), 0.0)
    after = run.net.stages.state_dict()
    assert all(torch.equal(after[k], v) for k, v in base.items())  # weights, BatchNorm means/vars/counters
    adapters = [p for n, p in run.net.named_parameters() if "lora_" in n]
    assert any(float(p.detach().abs().sum()) > 0 for n, p in run.net.named_parameters() if "lora_B" in n)  # learned
    trainable = {id(p) for p in run.net.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in [*adapters, *run.net.head.parameters()]}
    table = stage_table(cfg.backbone, len(data.classes))
    head = table[-1].params
    want = head + 4 * sum(s.lora_unit for s in table[cfg.frozen_stages:NUM_STAGES])
    assert run.trainable == sum(p.numel() for p in adapters) + head == want == trainable_params(table, "lora",
                                                                                                 4, cfg)
    assert trainable_params(table, "frozen", 4) < want < 0.1 * trainable_params(table, "finetune", 4)
    assert run.total == total_params(table, "lora", cfg)


def test_early_and_pixels_counts_and_cached_features(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, early_stage=3, epochs=1)
    device = torch.device("cpu")
    data = prepare_data(cfg, device)
    table = stage_table(cfg.backbone, 10)
    early = setup_strategy("early", cfg, data, device, threading.Event())
    assert early.train_cache.shape == (len(data.y_train), table[2].out_channels)  # pooled output of stage 3
    assert early.trainable == (table[2].out_channels + 1) * 10 == trainable_params(table, "early", 4, cfg)
    assert early.total == sum(s.params for s in table[:3]) + early.trainable == total_params(table, "early", cfg)
    pixels = setup_strategy("pixels", cfg, data, device, threading.Event())
    assert pixels.train_cache.shape == (len(data.y_train), 3 * 32 * 32)
    assert pixels.trainable == pixels.total == (3 * 32 * 32 + 1) * 10 == trainable_params(table, "pixels", 4, cfg)
    e = train_epoch(pixels, 1, data, device, threading.Event(), 0.0)
    assert 0 <= e.test_acc <= 1 and e.train_loss > 0


@pytest.mark.slow  # trains or decodes for a second or more: the edit-run loop stays under 20 s
def test_every_racer_finishes_a_race_with_inspect_details(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, epochs=2, head_epochs=1, strategies=KNOWN_STRATEGIES[3:])
    r = Race(cfg, keep_models=True)
    list(r)
    result = r.result()
    assert result.completed and list(result.summary) == list(KNOWN_STRATEGIES[3:])
    for s, v in result.summary.items():
        assert sum(map(sum, v.confusion_matrix)) == cfg.test_size, s
        assert v.delta_theta["head"] > 0, s
    assert set(result.summary["early"].delta_theta) == {"stem", "s2", "s3", "s4", "s5", "head"}
    assert all(v == 0.0 for k, v in result.summary["early"].delta_theta.items() if k != "head")
    lora_delta = result.summary["lora"].delta_theta  # of the merged weights: adapters on stages k..6 only
    assert all(lora_delta[n] == 0.0 for n in ("stem", "s2", "s3", "s4")) and lora_delta["s7"] > 0
    assert not any("lora_" in k for k in r.models["lora"].state_dict())  # kept merged, for export
    save_trained(r, tmp_path)  # exports and the look-inside arrays; pixels has no filters to show
    inside = np.load(tmp_path / "inside.npz")
    assert "filters_pixels" not in inside.files and {"filters_lora", "pca_pixels", "pca_early"} <= set(inside.files)
    for s in cfg.strategies:
        probs = torch.jit.load(str(tmp_path / f"{s}.pt"))(torch.zeros(40, 40, 3, dtype=torch.uint8))
        assert probs.shape == (10,) and float(probs.sum()) == pytest.approx(1.0, abs=1e-4), s


def test_store_keys_of_the_first_three_racers_did_not_move():
    # Computed by the code before the new racers existed (main at 374f523): stored races keep matching.
    cfg = RunConfig()
    assert config_id(cfg) == "1f898bb7ba50416c0b1473366c7909f441ac94231e20ff08f545a06671ac14f5"
    assert config_id(dataclasses.replace(cfg, strategies=("frozen", "finetune"), seed=2)) == (
        "1507f0fc1f5c08a61c555795690b432157e43af6f14f031f3dc5ffc6f8b79cd2")
    assert strategy_key(cfg, "finetune") == "0801fd22d6566d6ca71102bf0517f523e7d971d3ea9527685ce774396a43bc48"
    assert config_id(dataclasses.replace(cfg, strategies=("lora",))) != config_id(
        dataclasses.replace(cfg, strategies=("lora",), lora_rank=8))
    assert "lora_rank" in ignored_fields("finetune") and "lora_rank" not in ignored_fields("lora")
    assert "frozen_stages" not in ignored_fields("lora") and "frozen_stages" in ignored_fields("early")
    assert {"lr_body", "lr_scratch", "frozen_stages"} <= ignored_fields("pixels")
    assert "lr_head" not in ignored_fields("pixels")


def test_cli_strategies_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["race", "--strategies", "frozen,banana", "--epochs", "1"])
    assert exc.value.code == 2 and "unknown strategy banana" in capsys.readouterr().err
    out = tmp_path / "o.json"
    code = main(["race", "--strategies", "pixels,early", "--train-size", "20", "--val-size", "20", "--test-size",
                 "20", "--epochs", "1", "--resolution", "32", "--device", "cpu", "--json", str(out)])
    assert code == 0 and "pixels" in capsys.readouterr().out
    import json

    d = json.loads(out.read_text())
    assert d["config"]["strategies"] == ["pixels", "early"] and list(d["summary"]) == ["pixels", "early"]
