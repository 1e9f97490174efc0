"""The one place a RunConfig is checked (torch-free, so the pages can check before importing torch)."""

from __future__ import annotations

import math
from dataclasses import replace

from ..config import KNOWN_STRATEGIES, NUM_STAGES, RunConfig
from ..data import DatasetInfo, balanced_max, display_name, draw_note, fitted_size
from ..errors import ConfigError
from ..models import spec

MAX_SEED = 2**31 - 1  # numpy and torch seeds must fit in 32 bits
MAX_EPOCHS = 200
LR_RANGE = (1e-6, 1.0)  # peak learning rates outside this either do nothing or diverge at once
DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULTS = RunConfig()


def validate(cfg: RunConfig) -> None:
    """Reject configurations that cannot work, with a message a student can act on.

    Sizes against a particular dataset are checked where the dataset is known (``fit_to_dataset`` and the
    class-balanced draw); whether the device exists is checked when the race resolves it.
    """
    spec(cfg.backbone)
    if not 0 <= cfg.frozen_stages <= NUM_STAGES:
        raise ConfigError(f"frozen stages k must be between 0 and {NUM_STAGES}, got {cfg.frozen_stages}")
    bad = [s for s in cfg.strategies if s not in KNOWN_STRATEGIES]
    if bad or not cfg.strategies or len(set(cfg.strategies)) != len(cfg.strategies):
        raise ConfigError(f"strategies must be a non-empty subset of {', '.join(KNOWN_STRATEGIES)} without "
                          f"repeats, got {list(cfg.strategies)}")
    _int_in("gradual's head epochs h", cfg.head_epochs, 0, MAX_EPOCHS)
    _int_in("LoRA rank", cfg.lora_rank, 1, 64)
    _int_in("early's cut stage j", cfg.early_stage, 1, NUM_STAGES)
    if not (isinstance(cfg.gradual_ratio, (int, float)) and math.isfinite(cfg.gradual_ratio)
            and 1e-3 <= cfg.gradual_ratio <= 10):
        raise ConfigError(f"gradual's body-rate ratio must be between 0.001 and 10, got {cfg.gradual_ratio}")
    _int_in("epochs", cfg.epochs, 1, MAX_EPOCHS)
    _int_in("resolution", cfg.resolution, 32, 320, unit=" pixels")
    _int_in("batch size", cfg.batch_size, 2, 4096)
    _int_in("seed", cfg.seed, 0, MAX_SEED)
    _int_in("train_size", cfg.train_size, 1, 10**7)
    _int_in("test_size", cfg.test_size, 1, 10**7)
    _int_in("val_size", cfg.val_size, 0, 10**7)
    for name in ("lr_head", "lr_body", "lr_scratch"):
        v = getattr(cfg, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and LR_RANGE[0] <= v <= LR_RANGE[1]):
            raise ConfigError(f"{name} must be a number between {LR_RANGE[0]:g} and {LR_RANGE[1]:g}, got {v}")
    if not (math.isfinite(cfg.weight_decay) and 0 <= cfg.weight_decay < 1):
        raise ConfigError(f"weight_decay must be between 0 and 1, got {cfg.weight_decay}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")


def _int_in(what: str, v: object, lo: int, hi: int, unit: str = "") -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{what} must be a whole number from {lo:,} to {hi:,}{unit}, got {v!r}")


def fit_to_dataset(cfg: RunConfig, info: DatasetInfo, defaults: RunConfig = DEFAULTS
                   ) -> tuple[RunConfig, list[str]]:
    """Fit sizes left at their defaults to the dataset: at least one image per class, at most the largest
    class-balanced draw (so unequal classes race balanced), saying so.

    A size the person chose explicitly is never changed: one above the balanced maximum draws what the classes
    have (a note says which gave all they have); one above the split's image count fails in the draw, naming it.
    Returns the config to run and one note per change.
    """
    notes, changes = [], {}
    for field, split in (("train_size", "train"), ("val_size", "val"), ("test_size", "test")):
        asked, word = getattr(cfg, field), {"train": "training", "val": "validation", "test": "test"}[split]
        if asked == getattr(defaults, field):
            fitted = fitted_size(info, split, asked)
            if fitted != asked:
                changes[field] = fitted
                most = balanced_max(info, split)
                why = (f"at least one per class ({fitted:,})" if fitted > asked else
                       f"all {fitted:,} it has" if most == getattr(info, f"n_{split}") else
                       f"the largest class-balanced draw ({fitted:,} of its {getattr(info, f'n_{split}'):,})")
                notes.append(f"{display_name(info)}: the default of {asked:,} {word} images does not fit; using {why}.")
        elif (note := draw_note(info, split, asked)) is not None:
            notes.append(f"{display_name(info)}: {note}")
    return (replace(cfg, **changes) if changes else cfg), notes
