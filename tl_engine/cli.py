"""Command line: ``python -m tl_engine {race,datasets,sweep} ...`` (headless, no Streamlit)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .config import BACKBONE_NAMES, NUM_STAGES, STRATEGY_NAMES, EpochResult, RunConfig
from .errors import ConfigError, DataError, WeightsMissingError

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
                   help=f"held-out images, the same for every strategy (default {d.test_size})")
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
    return RunConfig(dataset=a.dataset, train_size=a.train_size, test_size=a.test_size, backbone=a.backbone,
                    frozen_stages=a.frozen, epochs=a.epochs, resolution=a.resolution, batch_size=a.batch_size,
                    lr_head=a.lr_head, lr_body=a.lr_body, lr_scratch=a.lr_scratch, augment=a.augment,
                    seed=a.seed, device=a.device)


def write_json_atomic(path: str | Path, obj: dict) -> None:
    """Write to a temp file then rename: a reader never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def format_epoch(e: EpochResult, epochs: int) -> str:
    return (f"{e.strategy:>8}  epoch {e.epoch:>2}/{epochs}  test acc {e.test_acc:6.1%}  train loss {e.train_loss:.3f}"
            f"  {e.seconds:5.1f}s  (total {e.cum_seconds:6.1f}s, {e.images_per_s:,.0f} img/s)")


def format_summary(summary: dict[str, dict]) -> str:
    rows = [f"{'strategy':<10}{'test acc':>10}{'trainable':>14}{'of total':>12}{'compute s':>12}"]
    for name, s in summary.items():
        rows.append(f"{name:<10}{s['final_test_acc']:>10.1%}{s['trainable_params']:>14,}"
                    f"{s['total_params']:>12,}{s['compute_seconds']:>12.1f}")
    return "\n".join(rows)


def cmd_race(a: argparse.Namespace) -> int:
    from .train import run_race  # torch import deferred: `--help` stays instant

    cfg = config_from_args(a)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: (stop.set(), print("\nstopping after this batch...", file=sys.stderr)))
    print(f"race: {cfg.dataset}, {cfg.train_size} train / {cfg.test_size} test images, {cfg.backbone}, "
          f"k={cfg.frozen_stages}, {cfg.epochs} epochs at {cfg.resolution}px", flush=True)
    result = run_race(cfg, stop, on_event=lambda e: print(format_epoch(e, cfg.epochs), flush=True))
    print()
    print(format_summary(result["summary"]))
    if result["skipped_images"]:
        print(f"note: skipped {result['skipped_images']} unreadable image file(s) in {cfg.dataset}")
    print(f"wall time {result['wall_seconds']:.1f}s on {result['device']}"
          + ("" if result["completed"] else "  (stopped early: partial results)"))
    if a.json:
        write_json_atomic(a.json, result)
        print(f"wrote {a.json}")
    return 0 if result["completed"] else 130


def cmd_datasets(a: argparse.Namespace) -> int:
    from .data import list_datasets

    infos = list_datasets()
    if a.json:
        print(json.dumps([{**i.__dict__, "classes": list(i.classes)} for i in infos], indent=1))
        return 0
    print(f"{'name':<15}{'images':>8}  {'like ImageNet?':<16}domain")
    for i in infos:
        print(f"{i.name:<15}{i.n_train + i.n_test:>8}  {i.similarity:<16}{i.domain}")
        print(f"{'':<41}{len(i.classes)} classes: {', '.join(i.classes)}")
        print(f"{'':<41}licence: {i.licence}; source: {i.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tl_engine",
        description="Transfer Learning Race: train from scratch, a frozen ImageNet backbone and a fine-tuned one "
                    "on the same small dataset, and compare test accuracy, trainable parameters and compute time.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("race", help="race the three strategies (one epoch each in turn) and print a table",
                       description=f"Race {', '.join(STRATEGY_NAMES)} on one dataset; Ctrl-C stops cleanly.")
    add_race_options(r)
    r.add_argument("--json", metavar="PATH", help="write config, every epoch and the summary as JSON")
    r.set_defaults(func=cmd_race)
    d = sub.add_parser("datasets", help="list the bundled datasets: domain, images, classes, licence")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=cmd_datasets)
    if importlib.util.find_spec(f"{__package__}.sweep_cli"):  # the experiments' CLI, when present
        importlib.import_module(f"{__package__}.sweep_cli").add_sweep_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, WeightsMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
