"""Forgetting, measured: the original ImageNet head on a racer's trained body, over fixed probe photos.

A pretrained racer keeps ImageNet's features only as far as its body still computes what it did. We run the
*untouched* network's 1000-class head on the pooled output of the racer's body (LoRA: adapters merged) for 96
natural colour photos (:func:`tl_engine.data.probe_photos`) and count how often its top-1 class is the one
the untouched network gives: ``imagenet_agreement``. A racer whose body never changed (frozen) scores 1.0 by
construction: same weights, same code path, same numbers. Racers without a full pretrained body (scratch,
pixels, early, whose body stops before the head's input) have no agreement (None).

Which BatchNorm statistics: ImageNet's. The probe photos come from ImageNet's world, and BatchNorm's running
means and variances describe the input domain, not what the weights learned (AdaBN, Li et al. 2016). Measured
here: a MobileNetV2 whose stages 4..6 only *ran* in train mode over 200 Fashion-MNIST images (no weight
changed) agreed with itself on 34 % of the probes after one epoch and 2 % after three. With the racer's own
statistics every racer whose BatchNorm moved would look like it forgot everything, whatever its learning rate;
so ``imagenet_agreement`` measures the trained *weights* under ImageNet's statistics, and
``imagenet_agreement_own_stats`` (reported too) the body exactly as trained.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..config import RunConfig
from ..data import probe_photos, to_model_input
from ..models import SPECS, STRATEGIES, StagedNet, build, imagenet_model, merge_lora
from .torchutil import amp


def measured(strategy: str) -> bool:
    """Whether ``strategy`` has an ImageNet agreement: a pretrained, uncut body the ImageNet head can read."""
    st = STRATEGIES[strategy]
    return st.pretrained and st.body == "full"


def imagenet_head(backbone: str) -> nn.Module:
    """The original classifier of the backbone (torchvision's Dropout + Linear, timm's Linear), eval mode."""
    return imagenet_model(backbone).classifier.eval()


class Forgetting:
    """The untouched network's labels for the probe photos, computed once; then :meth:`agreement` per racer."""

    def __init__(self, cfg: RunConfig, device: torch.device):
        bspec = SPECS[cfg.backbone]
        self.device = device
        self.x = to_model_input(probe_photos(), cfg.resolution, bspec.mean, bspec.std).to(
            device, memory_format=torch.channels_last)
        self.head = imagenet_head(cfg.backbone).to(device)
        # build() reads the ImageNet weights from the installed package (sha256-checked): never a download
        untouched = build(cfg.backbone, 2).to(device, memory_format=torch.channels_last)
        self.stats = [(m.running_mean, m.running_var) for m in _norms(untouched)]
        self.reference = self._labels(untouched)

    def _labels(self, net: StagedNet) -> torch.Tensor:
        was = net.training
        net.eval()
        with torch.inference_mode(), amp(self.device):
            labels = self.head(net.prefix(self.x, len(net.stages)).float()).argmax(1).cpu()
        net.train(was)
        return labels

    def agreement(self, net: StagedNet, own_stats: bool = False) -> tuple[float, float]:
        """Top-1 agreement with the untouched network, and its noise: 2 binomial standard errors over the probes.

        ``own_stats``: keep the racer's BatchNorm running statistics (default: ImageNet's, see the module doc).
        """
        body = merge_lora(net)
        if not own_stats:
            body = copy.deepcopy(body)
            norms = _norms(body)
            assert len(norms) == len(self.stats), "the body's BatchNorm layers must match ImageNet's"
            with torch.no_grad():
                for m, (mean, var) in zip(norms, self.stats, strict=True):
                    m.running_mean.copy_(mean)
                    m.running_var.copy_(var)
        same = (self._labels(body) == self.reference).float()
        p, n = float(same.mean()), len(same)
        return round(p, 4), round(2 * math.sqrt(p * (1 - p) / n), 4)


def _norms(net: StagedNet) -> list[nn.Module]:
    return [m for m in net.stages.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
