"""The one configuration object and the one event record of the engine.

Everything the engine does is decided by a frozen :class:`RunConfig`; derive variants with
``dataclasses.replace(cfg, frozen_stages=6)``. Everything it reports is a stream of
:class:`EpochResult` records made only of plain numbers and strings, so that a CLI, a
Streamlit page or a test can consume them without knowing anything about torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

STRATEGY_NAMES: tuple[str, ...] = ("scratch", "frozen", "finetune")
BACKBONE_NAMES: tuple[str, ...] = ("mobilenet_v2", "efficientnet_lite0")
NUM_STAGES = 7  # both backbones are cut into seven natural stages (plus the head)


@dataclass(frozen=True)
class RunConfig:
    """How one race is run. Defaults are the classroom demo: about a minute on a 2-core CPU."""

    dataset: str = "fashion-mnist"  # bundled name (see `python -m tl_engine datasets`) or a path
    train_size: int = 500  # training images, drawn class-balanced from the dataset's train split
    test_size: int = 1000  # held-out images, drawn once and identical for all three strategies
    backbone: str = "mobilenet_v2"  # or "efficientnet_lite0"
    frozen_stages: int = 4  # k: fine-tune freezes stages 0..k-1 (0 = train all, 7 = whole body)
    epochs: int = 10
    resolution: int = 96  # pixels; 64 ruins the ImageNet features, 224 is too slow for a live demo
    batch_size: int = 32  # small batches = more optimiser steps on a 500-image set
    # Peak learning rates (AdamW, warm-up + cosine schedule), each the best of a small grid on the
    # default race, so that no strategy is handicapped. The measurements: README "Tuning".
    lr_head: float = 3e-3  # the new classifier, for frozen and fine-tune (1e-3: slow start; 1e-2: worse end)
    lr_body: float = 1e-3  # unfrozen pretrained stages in fine-tune: a third of the head's (3e-4: too timid)
    lr_scratch: float = 1e-2  # every layer of the random network: it has everything to learn
    weight_decay: float = 1e-4
    augment: bool = False  # random shifts + flips of the training images (see README on caching)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "mps"
    strategies: tuple[str, ...] = STRATEGY_NAMES  # which strategies race; sweeps may run fewer

    def __post_init__(self) -> None:
        # Normalise so that RunConfigs built from JSON (lists) hash and compare like the original.
        object.__setattr__(self, "strategies", tuple(self.strategies))

    def to_dict(self) -> dict:
        """A JSON-ready copy (tuples become lists)."""
        d = asdict(self)
        d["strategies"] = list(self.strategies)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so that old results still load."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class EpochResult:
    """One epoch of one strategy: what the race yields, what charts and JSON are made of."""

    strategy: str  # "scratch" | "frozen" | "finetune"
    epoch: int  # 1-based
    train_loss: float
    train_acc: float  # 0..1, measured on the training batches of this epoch
    test_loss: float
    test_acc: float  # 0..1, on the held-out set, after this epoch
    trainable_params: int
    seconds: float  # compute seconds of this epoch (incl. one-time caching in epoch 1)
    cum_seconds: float  # compute seconds of this strategy so far
    images_per_s: float  # training images per compute second in this epoch
    total_params: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(events: list[EpochResult]) -> dict[str, dict]:
    """Per-strategy summary of a (possibly partial) list of events, in race order."""
    out: dict[str, dict] = {}
    for e in events:
        prev = out.get(e.strategy, {})
        out[e.strategy] = {
            "final_test_acc": e.test_acc,
            "best_test_acc": max(e.test_acc, prev.get("best_test_acc", 0.0)),
            "trainable_params": e.trainable_params,
            "total_params": e.total_params,
            "compute_seconds": e.cum_seconds,
            "epochs": e.epoch,
        }
    return out
