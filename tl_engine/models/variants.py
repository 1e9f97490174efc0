"""Each racer's network, built from the strategy table: the full backbone, one cut short, or no backbone.

Every variant is a :class:`StagedNet` with seven stages, so the training loop treats them alike:
- ``early`` keeps the first j stages and replaces the rest with ``nn.Identity``: its "whole body" is the
  cut backbone, cached like frozen's, and the head reads the pooled output of stage j;
- ``pixels`` has seven ``nn.Identity`` stages and flattens instead of pooling: a linear classifier on the
  normalised pixels (greyscale images enter as three equal channels, like everywhere else).
"""

from __future__ import annotations

from torch import nn

from ..config import NUM_STAGES, RunConfig
from ..errors import ConfigError
from .backbones import StagedNet, build, out_channels
from .lora import add_lora
from .strategies import strategy


def build_racer(name: str, cfg: RunConfig, num_classes: int) -> StagedNet:
    """Strategy ``name``'s network before training, its locked parts locked (adapters and head trainable).

    The trainable stages of ``scratch``, ``finetune`` and ``gradual`` are unlocked by the training loop
    (``gradual`` only after its head-first epochs).
    """
    st = strategy(name)
    if st.body == "none":
        stages = [nn.Identity() for _ in range(NUM_STAGES)]
        net = StagedNet(stages, 3 * cfg.resolution**2, num_classes)
        net.pool = nn.Flatten()
        net.freeze(NUM_STAGES)
        return net
    net = build(cfg.backbone, num_classes, pretrained=st.pretrained)
    if st.body == "cut":
        j = cfg.early_stage
        if not 1 <= j <= NUM_STAGES:
            raise ConfigError(f"early's cut must be after stage 1 to {NUM_STAGES}, got {j}")
        dim = out_channels(net.stages[j - 1])
        for i in range(j, NUM_STAGES):
            net.stages[i] = nn.Identity()
        net.head[-1] = nn.Linear(dim, num_classes)
    net.freeze(st.frozen_stages(cfg.frozen_stages))
    if st.adapters:
        add_lora(net.stages, cfg.frozen_stages, cfg.lora_rank, cfg.seed)
    return net

