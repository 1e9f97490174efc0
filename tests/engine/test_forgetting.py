"""Forgetting, measured: the original ImageNet head on a racer's body, against the untouched network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tl_engine.config import RunConfig
from tl_engine.data import probe_photos
from tl_engine.models import build
from tl_engine.training import Race
from tl_engine.training.forgetting import Forgetting, measured


def test_probe_photos_ship_with_the_app():
    x = probe_photos()
    assert x.shape == (96, 112, 112, 3) and x.dtype == np.uint8
    assert x.std() > 30  # real photos, not a blank array
    assert len({x[i].tobytes() for i in range(len(x))}) == 96  # 96 different crops


@pytest.mark.slow  # trains or decodes for a second or more: the edit-run loop stays under 20 s
def test_agreement_is_one_for_an_untouched_body_and_drops_when_the_body_changes():
    cfg = RunConfig(resolution=64, device="cpu")
    f = Forgetting(cfg, torch.device("cpu"))
    net = build(cfg.backbone, 3)
    assert f.agreement(net) == (1.0, 0.0)
    with torch.no_grad():  # a body whose last stage moved: ImageNet's head no longer reads what it expects
        for p in net.stages[6].parameters():
            p.add_(torch.randn_like(p) * p.std())
    agree, noise = f.agreement(net)
    assert agree < 0.9 and noise == round(2 * (agree * (1 - agree) / 96) ** 0.5, 4)
    assert measured("frozen") and measured("finetune") and measured("lora") and measured("gradual")
    assert not measured("scratch") and not measured("pixels") and not measured("early")


@pytest.mark.slow  # half a second or more: the edit-run loop stays under 20 s
def test_race_reports_agreement_frozen_exactly_one_and_a_hot_body_rate_forgets(tiny_cfg):
    cfg = dataclasses.replace(tiny_cfg, epochs=2, strategies=("frozen", "finetune", "pixels"), lr_body=0.3)
    r = Race(cfg)
    list(r)
    s = r.result().summary
    assert s["frozen"].imagenet_agreement == 1.0 and s["frozen"].imagenet_agreement_noise == 0.0
    assert s["finetune"].imagenet_agreement < 1.0
    assert s["pixels"].imagenet_agreement is None
    d = r.result().to_dict()
    assert d["summary"]["frozen"]["imagenet_agreement"] == 1.0 and "imagenet_agreement" not in d["summary"]["pixels"]
