"""Small torch helpers the training loop uses: devices, random streams, schedule, augmentation, inference."""

from __future__ import annotations

import contextlib
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for a missing one is an error."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA GPU; use --device auto or cpu")
    if name == "mps" and not has_mps:
        raise ConfigError("device 'mps' was asked for, but this machine has no Apple GPU; use --device auto")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be auto, cpu, cuda or mps, got {name!r}")
    return torch.device(name)


class RngStream:
    """Give each strategy its own random stream, so its curve does not depend on who races beside it."""

    def __init__(self, seed: int, device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=self.devices):
            torch.manual_seed(seed)
            self.state = self._get()

    def _get(self):
        return torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in self.devices]

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()
        cpu, cuda = self.state
        torch.set_rng_state(cpu)
        for d, s in zip(self.devices, cuda):
            torch.cuda.set_rng_state(s, d)

    def __exit__(self, *exc):
        self.state = self._get()
        return self._fork.__exit__(*exc)


def warmup_cosine(opt: torch.optim.Optimizer, total_steps: int, warmup: float = 0.25):
    """Linear warm-up to each group's lr over the first quarter, then cosine decay towards zero.

    The one-cycle recipe for short runs on little data: the warm-up keeps the new, random head from
    wrecking the pretrained stages with large early gradients. Works for any number of steps.
    """
    warm = max(1, round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm + 1) / max(1, total_steps - warm + 1)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def amp(device: torch.device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 elsewhere, so CPU runs are exactly repeatable."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Batch sizes for one epoch; a last batch of one image is merged (BatchNorm needs two)."""
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if len(sizes) > 1 and sizes[-1] < 2:
        # Pop first, then add: ``sizes[-2] += sizes.pop()`` reads sizes[-2] before the pop and writes
        # after it, which lands on the wrong batch (or past the end when there are exactly two).
        last = sizes.pop()
        sizes[-1] += last
    return sizes


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift (up to ±6.25% of the width/height) and zoom (0.9-1.1) per image, on the tensor.

    No PIL and no flips (a flipped digit is another digit). The translation is drawn in
    ``affine_grid``'s normalised [-1, 1] coordinates, where ±0.125 is ±6.25% of the image size.
    Returns a channels_last tensor of the same shape.
    """
    n = len(x)
    r = torch.rand(n, 3, generator=gen).to(x.device)
    scale = 0.9 + 0.2 * r[:, 0]
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = (r[:, 1:] - 0.5) * 0.25
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False).contiguous(
        memory_format=torch.channels_last)


def _folded_stand_in(bn: nn.Module) -> nn.Module | None:
    """What replaces a BatchNorm once its affine map is folded into the conv before it (None: can't fold).

    Plain BatchNorm2d becomes Identity. timm's BatchNormAct2d (a BatchNorm2d subclass) computes
    ``act(drop(bn(x)))``; ``drop`` is identity in eval mode, so its activation alone stands in.
    Any other subclass may do more in ``forward`` than we know of, so it is left alone.
    """
    if not isinstance(bn, nn.BatchNorm2d) or bn.running_mean is None or bn.running_var is None:
        return None  # without running statistics eval mode normalises by the batch: not a fixed map
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    act, drop = getattr(bn, "act", None), getattr(bn, "drop", None)
    if isinstance(act, nn.Module) and isinstance(drop, nn.Module):
        return act
    return None


def _fold_sites(module: nn.Module) -> list[tuple[str, str, str]]:
    """(parent name, conv child name, BatchNorm child name) for each Conv2d directly followed by a BatchNorm.

    "Followed" means the next direct child in registration order. For nn.Sequential that is the
    forward order by definition; torchvision's and timm's MobileNet/EfficientNet blocks register
    their layers in forward order too (tests/engine/test_torchutil.py checks it through equal outputs).
    """
    sites = []
    for parent_name, parent in module.named_modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and _folded_stand_in(bn) is not None:
                sites.append((parent_name, conv_name, bn_name))
    return sites


def folded_copy(module: nn.Module) -> nn.Module:
    """An inference copy in which every Conv2d followed by a BatchNorm2d is folded into one conv.

    In eval mode BatchNorm is a fixed affine map, so it can be merged into the preceding conv's
    weights: same outputs up to float rounding, and faster on a CPU (MobileNetV2 about 1.6x;
    EfficientNet-Lite0, whose BatchNorms are timm's BatchNormAct2d, about 1.3-1.5x for a batch of 64
    at 96 px). Used for the test set every epoch and for running frozen stages (which never change).

    Contract: when something folds, the result is a new module in eval mode that contains no
    foldable BatchNorm and shares no tensors with ``module``; ``module`` itself is never changed.
    When nothing folds, ``module`` itself is returned, untouched (its train/eval mode included):
    a deep copy would cost time and memory for no speed-up.
    """
    sites = _fold_sites(module)
    if not sites:
        return module
    twin = copy.deepcopy(module).eval()
    with torch.no_grad():  # the fused weights are new leaves; no graph to record
        for parent_name, conv_name, bn_name in sites:
            parent = twin.get_submodule(parent_name)
            conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
            stand_in = _folded_stand_in(bn)
            setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(parent, bn_name, stand_in)
    return twin.eval()  # again: the new Identity stand-ins start in training mode
