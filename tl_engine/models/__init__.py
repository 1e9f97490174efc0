"""The networks and the strategies as data: backbone specs (torch-free), staged ImageNet backbones, strategies."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "SPECS": "specs",
    "STRATEGIES": "strategies",
    "Stage": "specs",
    "StagedNet": "backbones",
    "build": "backbones",
    "build_racer": "variants",
    "merge_lora": "lora",
    "total_params": "strategies",
    "frozen_stages": "strategies",
    "imagenet_model": "backbones",
    "label": "strategies",
    "spec": "specs",
    "stage_table": "backbones",
    "trainable_params": "strategies",
    "warm_up": "backbones",
    "weight_path": "backbones",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
