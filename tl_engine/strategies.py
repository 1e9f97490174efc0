"""The three strategies, as data.

A strategy is just two facts: does it start from ImageNet weights, and how many of the seven
stages does it freeze (a function of the slider value k). Everything else (which outputs are
cached, which learning rate each stage gets, what the UI paints grey) follows from those.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .backbones import Stage
from .config import NUM_STAGES, STRATEGY_NAMES, RunConfig
from .errors import ConfigError

STRATEGIES: dict[str, dict[str, Any]] = {
    "scratch": {
        "label": "From scratch",
        "pretrained": False,
        "frozen": lambda k: 0,  # random init: nothing worth freezing
        # A random network changes fast and a 500-image epoch is only 16 steps: with torch's default
        # 0.1, BatchNorm's running statistics lag so far behind that the test-time network predicts
        # one class for several epochs. A faster average keeps them current (see README "Tuning").
        "bn_momentum": 0.5,
        "formula": "θ learned from random init",
        "blurb": "Same network, random weights; every layer learns from your images only.",
    },
    "frozen": {
        "label": "Frozen backbone",
        "pretrained": True,
        "frozen": lambda k: NUM_STAGES,  # all seven stages keep θpre; only the new head learns
        "bn_momentum": 0.1,  # irrelevant (every BatchNorm is frozen), torch's default
        "formula": "θ = θpre (locked) + new head",
        "blurb": "ImageNet features used as they are; only a new classifier on top is trained.",
    },
    "finetune": {
        "label": "Fine-tune",
        "pretrained": True,
        "frozen": lambda k: k,  # the first k stages stay θpre; later stages learn θpre + Δθ
        "bn_momentum": 0.1,  # starts from ImageNet statistics and moves gently: the default suits
        "formula": "θ = θpre + Δθ (last stages) + new head",
        "blurb": "Start from ImageNet, keep the first k stages, gently adjust the rest at a low learning rate.",
    },
}
assert tuple(STRATEGIES) == STRATEGY_NAMES


def frozen_stages(strategy: str, k: int) -> int:
    """How many of the seven stages ``strategy`` freezes when the fine-tune slider is at ``k``."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if not 0 <= k <= NUM_STAGES:
        raise ConfigError(f"frozen stages k must be between 0 and {NUM_STAGES}, got {k}")
    return STRATEGIES[strategy]["frozen"](k)


def trainable_params(stages: list[Stage], strategy: str, k: int) -> int:
    """Trainable parameters of ``strategy`` from the stage table alone (body stages then head)."""
    f = frozen_stages(strategy, k)
    return sum(s.params for s in stages[f:])


def param_groups(net: nn.Module, strategy: str, cfg: RunConfig) -> list[dict]:
    """Optimizer groups, one per trainable stage plus the head, named so they can be shown.

    Scratch: one learning rate everywhere. Fine-tune: discriminative learning rates, the
    pretrained stages at ``lr_body`` (small nudges Δθ to good weights) and the new, random head at
    ``lr_head``. Frozen: the head only.
    """
    f = frozen_stages(strategy, cfg.frozen_stages)
    body_lr = cfg.lr_scratch if strategy == "scratch" else cfg.lr_body
    head_lr = cfg.lr_scratch if strategy == "scratch" else cfg.lr_head
    groups = [
        {"name": f"stage{i}", "params": list(net.stages[i].parameters()), "lr": body_lr}
        for i in range(f, NUM_STAGES)
    ]
    groups.append({"name": "head", "params": list(net.head.parameters()), "lr": head_lr})
    return groups
