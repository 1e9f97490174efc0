"""Low-rank adapters (LoRA, Hu et al. 2021) on convolutions: W stays locked, W + (α/r)·B·A is what runs.

Our own ~60 lines, not a library: ``peft`` 0.21 (the one offline) needs ``transformers`` (148 MB installed with
its dependencies) and that release refuses this environment's ``huggingface_hub`` 2.4; ``loralib`` is not
available offline. tests/engine/test_racers.py checks this module against the formula.

An adapter sits beside every ordinary (``groups == 1``) convolution of the adapted stages: A is a
convolution with the base's kernel, stride and padding from its ``in`` channels down to ``r``, B a 1x1
convolution from ``r`` up to ``out`` (zero at the start, so training starts from θpre exactly). Their
product is a weight of the base's shape, ``ΔW[o, i] = Σ_r B[o, r] A[r, i]``: :func:`merge_lora` folds it in
for export and Δθ. Depthwise convolutions (a few thousand weights a stage) get none.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

LORA_ALPHA = 8.0  # α: the adapters' output is scaled by α/r (peft's default α; the paper does not tune it)


class LoRAConv2d(nn.Module):
    """``base(x) + (α/r)·B(A(x))`` with ``base`` locked: only ``lora_A`` and ``lora_B`` learn."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float = LORA_ALPHA,
                 generator: torch.Generator | None = None):
        super().__init__()
        if base.groups != 1 or base.padding_mode != "zeros":
            raise ValueError("LoRA adapters go on ordinary convolutions (groups=1, zero padding) only")
        self.base = base.requires_grad_(False)
        self.rank, self.scaling = rank, alpha / rank
        kh, kw = base.kernel_size
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_channels, kh, kw, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=generator)  # as peft and loralib

    def delta_weight(self) -> torch.Tensor:
        """(α/r)·B·A as a weight of the base's shape."""
        b, a = self.lora_B.flatten(1), self.lora_A.flatten(1)
        return (self.scaling * (b @ a)).view_as(self.base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base
        low = F.conv2d(x, self.lora_A, None, b.stride, b.padding, b.dilation)
        return b(x) + self.scaling * F.conv2d(low, self.lora_B)


def add_lora(stages: nn.ModuleList, first: int, rank: int, seed: int) -> list[LoRAConv2d]:
    """Put an adapter beside every ordinary convolution of ``stages[first:]``; returns them in order.

    The adapters' A is drawn from a generator of its own (seeded), so adding them moves no other random stream.
    """
    g = torch.Generator().manual_seed(seed + 7919)
    out = []
    for stage in list(stages)[first:]:
        for parent in list(stage.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Conv2d) and child.groups == 1:
                    adapter = LoRAConv2d(child, rank, generator=g)
                    setattr(parent, name, adapter)
                    out.append(adapter)
    return out


def merge_lora(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in which every adapter is folded into a plain Conv2d (W + (α/r)·B·A); ``net`` unchanged.

    Without adapters ``net`` itself is returned. The copy has the original network's layout and key names, so
    export, Δθ and the ImageNet head read it like any other.
    """
    if not any(isinstance(m, LoRAConv2d) for m in net.modules()):
        return net
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for parent in list(twin.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, LoRAConv2d):
                    conv = child.base
                    conv.weight.copy_(conv.weight + child.delta_weight())
                    setattr(parent, name, conv)
    return twin


def lora_unit(module: nn.Module) -> int:
    """Adapter parameters per unit of rank that :func:`add_lora` puts on ``module``'s convolutions."""
    return sum(m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels
               for m in module.modules() if isinstance(m, nn.Conv2d) and m.groups == 1)
