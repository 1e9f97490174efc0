"""The three strategies, as data (no torch: the UI reads this table to draw labels and the strip).

A strategy is a few facts: does it start from ImageNet weights, how many of the seven stages does it
freeze (a function of the slider value k), and how fast its BatchNorm statistics move. Everything else
(which outputs are cached, which learning rate each stage gets, what the UI paints grey) follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import NUM_STAGES, STRATEGY_NAMES
from ..errors import ConfigError
from .specs import Stage


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str  # what a person reads everywhere: legends, cards, tables
    pretrained: bool  # starts from ImageNet weights (θpre) or a random init
    freezes: Literal["none", "all", "k"]  # which stages stay fixed: none, all seven, or the first k (slider)
    bn_momentum: float  # how fast BatchNorm's running statistics follow the batches (torch default 0.1)
    formula: str
    blurb: str

    def frozen_stages(self, k: int) -> int:
        """How many of the seven stages this strategy freezes when the fine-tune slider is at ``k``."""
        if not 0 <= k <= NUM_STAGES:
            raise ConfigError(f"frozen stages k must be between 0 and {NUM_STAGES}, got {k}")
        return {"none": 0, "all": NUM_STAGES, "k": k}[self.freezes]


STRATEGIES: dict[str, Strategy] = {
    "scratch": Strategy(
        "scratch", "Scratch", False, "none",  # random init; nothing worth freezing
        # Chosen on validation against torch's default 0.1: 72.7 vs 72.3 % final validation accuracy (3 seeds,
        # within noise; docs/tuning.md). Why it can matter: a random network changes fast and a 500-image
        # epoch is only 16 steps, so slowly averaged running statistics lag behind the weights.
        bn_momentum=0.5,
        formula="θ learned from random init",
        blurb="Same network, random weights; every layer learns from your images only.",
    ),
    "frozen": Strategy(
        "frozen", "Frozen", True, "all",  # θpre from the weight package; all seven stages locked
        bn_momentum=0.1,  # irrelevant (every BatchNorm is frozen), torch's default
        formula="θ = θpre (locked) + new head",
        blurb="ImageNet features used as they are; only a new classifier on top is trained.",
    ),
    "finetune": Strategy(
        "finetune", "Fine-tune", True, "k",  # θpre from the weight package; the first k stages locked
        bn_momentum=0.1,  # starts from ImageNet statistics and moves gently: the default suits
        formula="θ = θpre + Δθ (last stages) + new head",
        blurb="Start from ImageNet, keep the first k stages, and train the rest on from their ImageNet weights.",
    ),
}
assert tuple(STRATEGIES) == STRATEGY_NAMES


def strategy(name: str) -> Strategy:
    """The strategy called ``name``, or a ConfigError that lists the known ones."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def frozen_stages(name: str, k: int) -> int:
    """How many of the seven stages strategy ``name`` freezes when the fine-tune slider is at ``k``."""
    return strategy(name).frozen_stages(k)


def trainable_params(stages: Sequence[Stage], name: str, k: int) -> int:
    """Trainable parameters of a strategy from the stage table alone (body stages then head)."""
    return sum(s.params for s in stages[frozen_stages(name, k):])


# Other networks the look-inside views show beside the strategies, by their display names.
OTHER_LABELS: dict[str, str] = {"imagenet": "ImageNet"}


def label(name: str) -> str:
    """Display name of a strategy ("finetune" -> "Fine-tune", "imagenet" -> "ImageNet"); unknown names pass through."""
    return STRATEGIES[name].label if name in STRATEGIES else OTHER_LABELS.get(name, name)
