"""The command-line options every command shares (race, sweep). Imports no torch."""

from __future__ import annotations

import argparse

from ..config import BACKBONE_NAMES, NUM_STAGES, RunConfig

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
                   help=f"fine-tuned stages' peak LR (default {d.lr_body})")
    p.add_argument("--lr-scratch", type=float, default=d.lr_scratch,
                   help=f"scratch network's peak LR (default {d.lr_scratch})")
    p.add_argument("--augment", action="store_true", help="random shifts/zoom of training images")
    p.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda", "mps"],
                   help=f"(default {d.device})")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    return RunConfig(dataset=a.dataset, train_size=a.train_size, test_size=a.test_size, val_size=a.val_size,
                     backbone=a.backbone,
                    frozen_stages=a.frozen, epochs=a.epochs, resolution=a.resolution, batch_size=a.batch_size,
                    lr_head=a.lr_head, lr_body=a.lr_body, lr_scratch=a.lr_scratch, augment=a.augment,
                    seed=a.seed, device=a.device)
