"""The passes over the data a strategy makes: the frozen prefix, evaluation, the head's init, θ as vectors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..models import StagedNet
from .torchutil import amp

EVAL_BATCH = 64  # small eval batches are faster on CPU (they stay in cache)


def init_head(net: StagedNet, seed: int) -> None:
    """A head initialised from the seed alone (torch's nn.Linear default init), the same for every strategy."""
    g = torch.Generator().manual_seed(seed)
    linear = net.head[-1]
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=g)
    bound = 1 / math.sqrt(linear.in_features)
    nn.init.uniform_(linear.bias, -bound, bound, generator=g)


def flat_params(net: StagedNet, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Each stage's and the head's parameters as one flat CPU vector (BatchNorm buffers are not parameters).

    Stages without parameters (those ``early`` cut off, every stage of ``pixels``) are left out.
    """
    mods = [*net.stages, net.head]
    return {n: torch.cat([p.detach().float().reshape(-1).cpu() for p in m.parameters()])
            for n, m in zip(names, mods, strict=True) if any(True for _ in m.parameters())}


def run_prefix(net: nn.Module, x: torch.Tensor, f: int, device: torch.device) -> torch.Tensor:
    """Output of the ``f`` frozen stages (no graph: nothing before them learns)."""
    if f == 0:
        return x
    with torch.no_grad(), amp(device):
        return net.prefix(x, f).float()


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cache: torch.Tensor | None, f: int,
              device: torch.device) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Loss, accuracy, predictions and their confidences in eval mode (``net``: BatchNorm folded).

    ``cache`` holds the frozen prefix's output; without it (too big to cache) the whole network runs.
    """
    start, x_in = (f, cache) if cache is not None else (0, x)
    loss = torch.zeros((), device=y.device)
    preds, confs = [], []
    with torch.inference_mode(), amp(device):
        for i in range(0, len(y), EVAL_BATCH):
            logits = net.forward_from(x_in[i:i + EVAL_BATCH], start).float()
            loss += F.cross_entropy(logits, y[i:i + EVAL_BATCH], reduction="sum")
            conf, pred = logits.softmax(1).max(1)
            preds.append(pred)
            confs.append(conf)
    n = len(y)
    if not n:
        return math.nan, math.nan, torch.zeros(0, dtype=torch.long), torch.zeros(0)
    pred, conf = torch.cat(preds).cpu(), torch.cat(confs).cpu()
    return float(loss) / n, int((pred == y.cpu()).sum()) / n, pred, conf
