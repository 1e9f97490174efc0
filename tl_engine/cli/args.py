"""The command-line options every command shares (race, sweep). Imports no torch."""

from __future__ import annotations

import argparse

from ..config import BACKBONE_NAMES, KNOWN_STRATEGIES, NUM_STAGES, RunConfig

DEFAULTS = RunConfig()


def add_race_options(p: argparse.ArgumentParser) -> None:
    """The RunConfig options shared by ``race`` and ``sweep`` (defaults = the classroom demo)."""
    d = DEFAULTS
    p.add_argument("--dataset", default=d.dataset,
                   help="bundled name (see `datasets`) or a path: folder/zip of class folders, or a .npz "
                        f"(default {d.dataset})")
    p.add_argument("--train-size", type=int, default=d.train_size,
                   help=f"training images, drawn class-balanced (default {d.train_size})")
    p.add_argument("--test-size", type=int, default=d.test_size,
                   help=f"held-out test images, the same for every strategy (default {d.test_size}; a smaller "
                        "dataset of your own uses all it has)")
    p.add_argument("--val-size", type=int, default=d.val_size,
                   help=f"validation images, a separate pool: anything chosen is chosen on these, never on test "
                        f"(default {d.val_size})")
    p.add_argument("--backbone", choices=BACKBONE_NAMES, default=d.backbone, help=f"(default {d.backbone})")
    p.add_argument("--frozen", type=int, default=d.frozen_stages, metavar="K",
                   help=f"stages 0..K-1 frozen for fine-tune, 0..{NUM_STAGES} (default {d.frozen_stages})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"(default {d.epochs})")
    p.add_argument("--resolution", type=int, default=d.resolution, help=f"input pixels (default {d.resolution})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr-head", type=float, default=d.lr_head, help=f"new head's peak LR (default {d.lr_head})")
    p.add_argument("--lr-body", type=float, default=d.lr_body,
                   help=f"fine-tuned stages' (and LoRA adapters') peak LR (default {d.lr_body}); try 0.03 against "
                        "0.0003 to see forgetting in imagenet_agreement")
    p.add_argument("--lr-scratch", type=float, default=d.lr_scratch,
                   help=f"scratch network's peak LR (default {d.lr_scratch})")
    p.add_argument("--augment", action="store_true", help="random shifts/zoom of training images")
    p.add_argument("--head-epochs", type=int, default=d.head_epochs, metavar="H",
                   help=f"gradual: epochs of head only before stages K..7 unfreeze (default {d.head_epochs})")
    p.add_argument("--gradual-ratio", type=float, default=d.gradual_ratio,
                   help=f"gradual: its body's peak LR as a multiple of --lr-body (default {d.gradual_ratio})")
    p.add_argument("--lora-rank", type=int, default=d.lora_rank, metavar="R",
                   help=f"lora: rank of the adapters on stages K..7 (default {d.lora_rank})")
    p.add_argument("--early-stage", type=int, default=d.early_stage, metavar="J",
                   help=f"early: cut the backbone after stage J, 1..{NUM_STAGES} (default {d.early_stage})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda", "mps"],
                   help=f"(default {d.device})")


def strategies_arg(text: str) -> tuple[str, ...]:
    """``--strategies frozen,finetune,lora``: names checked here, so a typo is a usage error, not a traceback."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in KNOWN_STRATEGIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown strategy {', '.join(bad) or '(none)'}; choose from "
                                         f"{','.join(KNOWN_STRATEGIES)}")
    return names


def add_strategies_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategies", type=strategies_arg, default=DEFAULTS.strategies, metavar="A,B,...",
                   help=f"which racers, comma-separated, of {','.join(KNOWN_STRATEGIES)} "
                        f"(default {','.join(DEFAULTS.strategies)})")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    extra = {"strategies": a.strategies} if getattr(a, "strategies", None) else {}
    return RunConfig(**extra, head_epochs=a.head_epochs, gradual_ratio=a.gradual_ratio, lora_rank=a.lora_rank,
                     early_stage=a.early_stage,
                     dataset=a.dataset, train_size=a.train_size, test_size=a.test_size, val_size=a.val_size,
                     backbone=a.backbone,
                    frozen_stages=a.frozen, epochs=a.epochs, resolution=a.resolution, batch_size=a.batch_size,
                    lr_head=a.lr_head, lr_body=a.lr_body, lr_scratch=a.lr_scratch, augment=a.augment,
                    seed=a.seed, device=a.device)
