"""The engine's contracts: the one configuration object, the per-epoch record, and the race result.

Everything the engine does is decided by a frozen :class:`RunConfig`; derive variants with
``dataclasses.replace(cfg, frozen_stages=6)``. Everything it reports is a stream of :class:`EpochResult`
records made only of plain numbers and strings, gathered into one :class:`RaceResult` (built only by
:meth:`RaceResult.build`), so that a CLI, a Streamlit page, the results store or a test can consume them
without knowing anything about torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

STRATEGY_NAMES: tuple[str, ...] = ("scratch", "frozen", "finetune")  # the default race
# Every racer the engine knows, in display order: the default three, then the recipes a person may add.
KNOWN_STRATEGIES: tuple[str, ...] = (*STRATEGY_NAMES, "gradual", "lora", "early", "pixels")
MAX_RACERS = 5  # at most this many racers at once: five curves stay legible on a 1280 x 720 projector
# Config fields that only some racers read (gradual's h and ratio, LoRA's rank, early's cut); a race id
# leaves out those that none of its racers reads, so that races stored before they existed keep their ids.
RACER_KNOBS: tuple[str, ...] = ("head_epochs", "gradual_ratio", "lora_rank", "early_stage")
BACKBONE_NAMES: tuple[str, ...] = ("mobilenet_v2", "efficientnet_lite0")
NUM_STAGES = 7  # both backbones are cut into seven natural stages (plus the head)


@dataclass(frozen=True)
class RunConfig:
    """How one race is run. Defaults are the classroom demo: about a minute on a 2-core CPU."""

    dataset: str = "fashion-mnist"  # bundled name (see `python -m tl_engine datasets`) or a path
    train_size: int = 500  # training images, drawn class-balanced from the dataset's train split
    test_size: int = 1000  # held-out images, drawn once and identical for all three strategies
    val_size: int = 500  # validation images (a separate pool): what anything chosen is chosen on, never test
    backbone: str = "mobilenet_v2"  # or "efficientnet_lite0"
    frozen_stages: int = 4  # k: fine-tune freezes stages 0..k-1 (0 = train all, 7 = whole body)
    epochs: int = 10
    resolution: int = 96  # pixels; 64 ruins the ImageNet features, 224 is too slow for a live demo
    batch_size: int = 32  # small batches = more optimiser steps on a 500-image set
    # Peak learning rates (AdamW, warm-up + cosine schedule): each the best mean *validation* accuracy of a
    # small grid on the default race over 3 seeds (benchmarks/tuning.py), so that no strategy is handicapped.
    # Every grid's best was within noise of its runner-up (500 validation images): docs/tuning.md.
    lr_head: float = 3e-3  # the new classifier, for frozen and fine-tune (of 1e-3, 3e-3, 1e-2)
    lr_body: float = 3e-3  # unfrozen pretrained stages in fine-tune (of 3e-4, 1e-3, 3e-3 with the head at 3e-3)
    lr_scratch: float = 1e-2  # every layer of the random network (of 1e-3, 3e-3, 1e-2)
    weight_decay: float = 1e-4
    augment: bool = False  # random shifts (±6 %) and zoom (0.9-1.1x) of the training images, no flips
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "mps"
    strategies: tuple[str, ...] = STRATEGY_NAMES  # which strategies race (of KNOWN_STRATEGIES, up to MAX_RACERS)
    # The added racers' knobs (read only by the racer named; defaults are rules of thumb: docs/tuning.md).
    head_epochs: int = 2  # gradual: h epochs of head only (exactly frozen's), then stages k..6 unfreeze
    gradual_ratio: float = 0.1  # gradual: its body's peak rate is this times lr_body ("10-100x lower")
    lora_rank: int = 4  # lora: rank r of the adapters on the convolutions of stages k..6
    early_stage: int = 5  # early: the backbone cut after this many stages (1..7); a head on their pooled output

    def __post_init__(self) -> None:
        # Normalise so that RunConfigs built from JSON (lists) hash and compare like the original.
        object.__setattr__(self, "strategies", tuple(self.strategies))

    @property
    def total_epochs(self) -> int:
        """Epoch records a finished race yields: one per strategy and epoch."""
        return self.epochs * len(self.strategies)

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

    strategy: str  # one of KNOWN_STRATEGIES
    epoch: int  # 1-based
    train_loss: float
    train_acc: float  # 0..1, measured on the training batches of this epoch
    test_loss: float
    test_acc: float  # 0..1, on the held-out set, after this epoch
    trainable_params: int
    seconds: float  # compute seconds of this epoch: training + evaluation (+ one-time caching in epoch 1)
    cum_seconds: float  # compute seconds of this strategy so far
    images_per_s: float  # training images per training second in this epoch
    total_params: int = 0
    train_seconds: float = 0.0  # of ``seconds``: the optimiser steps (and caching, in epoch 1)
    eval_seconds: float = 0.0  # of ``seconds``: the validation and test passes
    val_loss: float = float("nan")  # on the validation images (choose things here, never on test)
    val_acc: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EpochResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class StrategySummary:
    """Where one strategy of a race ended (possibly a partial race: ``epochs`` says how far it got)."""

    final_test_acc: float
    best_test_acc: float
    final_val_acc: float
    trainable_params: int
    total_params: int
    compute_seconds: float  # training + evaluation
    train_seconds: float
    eval_seconds: float
    epochs: int
    # Filled after a strategy's last epoch when the engine kept its predictions (see train.inspect).
    confusion_matrix: list[list[int]] | None = None  # classes x classes counts, rows = true class
    per_class_acc: list[float] | None = None
    delta_theta: dict[str, float] | None = None  # stage name -> ||θ − θ0|| / ||θ0||
    test_pred: list[int] | None = None  # predicted class of each test image, in the split's order
    test_conf: list[float] | None = None  # the softmax probability of that prediction
    # Forgetting: top-1 agreement of the original ImageNet head on this racer's body with the untouched
    # network, over the probe photos (pretrained racers with a full body only), under ImageNet's BatchNorm
    # statistics; its noise (2 binomial standard errors over the photos); and the same with the racer's own
    # statistics (tl_engine/training/forgetting.py says why the first is the headline).
    imagenet_agreement: float | None = None
    imagenet_agreement_noise: float | None = None
    imagenet_agreement_own_stats: float | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> StrategySummary:
        names = {f.name for f in fields(cls)}
        defaults = {"final_val_acc": float("nan"), "train_seconds": 0.0, "eval_seconds": 0.0}
        return cls(**{**defaults, **{k: v for k, v in d.items() if k in names}})


def summarize(events: list[EpochResult]) -> dict[str, StrategySummary]:
    """Per-strategy summary of a (possibly partial) list of events, in race order."""
    out: dict[str, StrategySummary] = {}
    for e in events:
        prev = out.get(e.strategy)
        out[e.strategy] = StrategySummary(
            final_test_acc=e.test_acc,
            best_test_acc=max(e.test_acc, prev.best_test_acc if prev else 0.0),
            final_val_acc=e.val_acc,
            trainable_params=e.trainable_params,
            total_params=e.total_params,
            compute_seconds=e.cum_seconds,
            train_seconds=e.train_seconds + (prev.train_seconds if prev else 0.0),
            eval_seconds=e.eval_seconds + (prev.eval_seconds if prev else 0.0),
            epochs=e.epoch,
        )
    return out


@dataclass(frozen=True)
class RaceResult:
    """One race, finished or stopped: the only shape the CLI's JSON, the store, sweeps and pages use."""

    config: RunConfig
    device: str
    wall_seconds: float | None  # None when assembled from other stored races
    completed: bool
    skipped_images: int  # unreadable files in a user's folder or zip
    epochs: tuple[EpochResult, ...]
    summary: dict[str, StrategySummary]
    classes: tuple[str, ...] = ()
    extras: dict = field(default_factory=dict)  # store metadata: id, kind, created_at, from_ids

    @classmethod
    def build(cls, cfg: RunConfig, device: str, wall_seconds: float | None, events: list[EpochResult],
              skipped_images: int = 0, classes: tuple[str, ...] = (),
              details: dict[str, dict] | None = None) -> RaceResult:
        """The one place a race result is made. ``details``: per-strategy extra summary fields."""
        summary = summarize(list(events))
        for s, extra in (details or {}).items():
            if s in summary:
                summary[s] = StrategySummary(**{**asdict(summary[s]), **extra})
        return cls(cfg, device, None if wall_seconds is None else round(wall_seconds, 3),
                   len(events) == cfg.total_epochs, skipped_images, tuple(events), summary, tuple(classes))

    def to_dict(self) -> dict:
        """The race JSON: config, device, wall_seconds, completed, skipped_images, classes, epochs, summary."""
        return {"config": self.config.to_dict(), "device": self.device, "wall_seconds": self.wall_seconds,
                "completed": self.completed, "skipped_images": self.skipped_images, "classes": list(self.classes),
                "epochs": [e.to_dict() for e in self.epochs],
                "summary": {s: v.to_dict() for s, v in self.summary.items()}}

    @classmethod
    def from_dict(cls, d: dict, **extras) -> RaceResult:
        cfg = RunConfig.from_dict(d["config"])
        epochs = tuple(EpochResult.from_dict(e) for e in d["epochs"])
        summary = {s: StrategySummary.from_dict(v) for s, v in d["summary"].items()}
        return cls(cfg, d.get("device", ""), d.get("wall_seconds"), bool(d.get("completed", True)),
                   int(d.get("skipped_images", 0)), epochs, summary, tuple(d.get("classes", ())), extras)
