"""The racers, as data (no torch: the UI reads this table to draw labels and the strip).

A strategy is a few facts: does it start from ImageNet weights, how many of the seven stages does it
freeze (a function of the slider value k), how fast its BatchNorm statistics move, and which of three
twists it has: a body cut short (``early``) or none at all (``pixels``), low-rank adapters beside locked
weights (``lora``), or a head-only start before it unfreezes (``gradual``). Everything else (which outputs
are cached, which learning rate each stage gets, what the UI paints grey) follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import KNOWN_STRATEGIES, NUM_STAGES, RunConfig
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
    body: Literal["full", "cut", "none"] = "full"  # all seven stages, the first j (early), or raw pixels
    adapters: bool = False  # low-rank adapters on the convolutions of stages k..6; base weights stay locked
    head_first: bool = False  # the first h epochs train the head only (exactly frozen), then stages k..6

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
    "gradual": Strategy(
        "gradual", "Head first", True, "k",  # frozen for h epochs, then like fine-tune at a lower body rate
        bn_momentum=0.1,
        formula="θ = θpre (h epochs) → θpre + Δθ (last stages, lower rate) + new head",
        blurb="Train the new head alone for h epochs, then unfreeze stages k..7 at a lower learning rate, "
              "so a random head cannot wreck good features.",
        head_first=True,
    ),
    "lora": Strategy(
        "lora", "LoRA", True, "all",  # every base weight and BatchNorm locked; adapters beside stages k..6
        bn_momentum=0.1,  # irrelevant: every BatchNorm stays in eval mode
        formula="θ = θpre (locked) + (α/r)·B·A (adapters, last stages) + new head",
        blurb="ImageNet weights stay locked; small low-rank adapters beside the last stages' convolutions learn "
              "the change.",
        adapters=True,
    ),
    "early": Strategy(
        "early", "Early layers", True, "all",  # the body cut after stage j, locked; the rest dropped
        bn_momentum=0.1,
        formula="θ = θpre (first j stages, locked) + new head",
        blurb="Only the first j stages, locked: general edges and textures, not ImageNet's object parts; "
              "a new classifier on their pooled output.",
        body="cut",
    ),
    "pixels": Strategy(
        "pixels", "Pixels", False, "all",  # no network at all: a linear classifier on the raw pixels
        bn_momentum=0.1,  # irrelevant: there is no BatchNorm
        formula="θ = a linear classifier on raw pixels",
        blurb="No network: a linear classifier on the raw pixels. The baseline transfer must beat.",
        body="none",
    ),
}
assert tuple(STRATEGIES) == KNOWN_STRATEGIES


def strategy(name: str) -> Strategy:
    """The strategy called ``name``, or a ConfigError that lists the known ones."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def frozen_stages(name: str, k: int) -> int:
    """How many of the seven stages strategy ``name`` freezes when the fine-tune slider is at ``k``."""
    return strategy(name).frozen_stages(k)


DEFAULT = RunConfig()


def trainable_params(stages: Sequence[Stage], name: str, k: int, cfg: RunConfig = DEFAULT) -> int:
    """Trainable parameters of a strategy from the stage table alone (body stages then head).

    ``cfg`` supplies the added racers' knobs (LoRA's rank, early's cut, the resolution for pixels).
    """
    st = strategy(name)
    head = stages[NUM_STAGES]
    n_classes = head.params // (head.in_features + 1) if head.in_features else 0
    if st.body == "none":
        return (3 * cfg.resolution**2 + 1) * n_classes
    if st.body == "cut":
        return (stages[cfg.early_stage - 1].out_channels + 1) * n_classes
    if st.adapters:
        return head.params + cfg.lora_rank * sum(s.lora_unit for s in stages[k:NUM_STAGES])
    return sum(s.params for s in stages[frozen_stages(name, k):])


def total_params(stages: Sequence[Stage], name: str, cfg: RunConfig = DEFAULT) -> int:
    """All parameters of a strategy's network (adapters included) from the stage table alone."""
    st = strategy(name)
    if st.body == "none":
        return trainable_params(stages, name, 0, cfg)
    if st.body == "cut":
        return sum(s.params for s in stages[:cfg.early_stage]) + trainable_params(stages, name, 0, cfg)
    body = sum(s.params for s in stages[:NUM_STAGES])
    return body + trainable_params(stages, name, cfg.frozen_stages, cfg) if st.adapters else body + stages[-1].params


# Other networks the look-inside views show beside the strategies, by their display names.
OTHER_LABELS: dict[str, str] = {"imagenet": "ImageNet"}


def label(name: str) -> str:
    """Display name of a strategy ("finetune" -> "Fine-tune", "imagenet" -> "ImageNet"); unknown names pass through."""
    return STRATEGIES[name].label if name in STRATEGIES else OTHER_LABELS.get(name, name)
