"""Command line: ``python -m tl_engine {race,datasets,sweep,similarity} ...`` (headless, no Streamlit)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from ..config import KNOWN_STRATEGIES, EpochResult, StrategySummary
from ..errors import UserError
from ..store import check_writable
from .args import add_race_options, add_strategies_option, config_from_args
from .output import terminal, write_result
from .similarity import add_similarity_command
from .sweep import add_sweep_command


def format_epoch(e: EpochResult, epochs: int) -> str:
    return (f"{e.strategy:>8}  epoch {e.epoch:>2}/{epochs}  val {e.val_acc:6.1%}  test {e.test_acc:6.1%}  "
            f"train loss {e.train_loss:.3f}  {e.train_seconds:5.1f}s train + {e.eval_seconds:4.1f}s eval  "
            f"(total {e.cum_seconds:6.1f}s, {e.images_per_s:,.0f} img/s)")


def format_summary(summary: dict[str, StrategySummary]) -> str:
    rows = [f"{'strategy':<10}{'val acc':>9}{'test acc':>10}{'trainable':>14}{'of total':>12}{'train s':>10}"
            f"{'eval s':>9}"]
    for name, s in summary.items():
        rows.append(f"{name:<10}{s.final_val_acc:>9.1%}{s.final_test_acc:>10.1%}{s.trainable_params:>14,}"
                    f"{s.total_params:>12,}{s.train_seconds:>10.1f}{s.eval_seconds:>9.1f}")
    return "\n".join(rows)


def cmd_race(a: argparse.Namespace) -> int:
    from ..data import display_name, load_dataset
    from ..experiments import noise_sentence
    from ..training import (
        Race,
        fit_to_dataset,
        prepare_data,
        resolve_device,  # torch imports deferred: `--help` stays instant
        validate,
    )

    check_writable(a.json)
    cfg = config_from_args(a)
    validate(cfg)
    ds = load_dataset(cfg.dataset)  # decoded once: the race reuses it
    cfg, notes = fit_to_dataset(cfg, ds.info)
    for note in notes:
        print(f"note: {terminal(note)}")
    if ds.info.splits:
        print(f"splits: {terminal(ds.info.splits)}")
    print(f"noise: {noise_sentence(cfg.test_size)}")
    shown = terminal(display_name(ds.info))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: (stop.set(), print("\nstopping after this batch...", file=sys.stderr)))
    print(f"race: {shown}, {cfg.train_size} train / {cfg.val_size} validation / {cfg.test_size} test images, "
          f"{cfg.backbone}, k={cfg.frozen_stages}, {cfg.epochs} epochs at {cfg.resolution}px", flush=True)
    race = Race(cfg, stop, data=prepare_data(cfg, resolve_device(cfg.device), ds))
    for e in race:
        print(format_epoch(e, cfg.epochs), flush=True)
    result = race.result()
    print()
    print(format_summary(result.summary))
    if result.skipped_images:
        print(terminal(f"note: skipped {result.skipped_images} file(s) in {shown}: " + "; ".join(ds.skipped_reasons)))
    print(f"wall time {result.wall_seconds:.1f}s on {result.device}"
          + ("" if result.completed else "  (stopped early: partial results)"))
    code = 0 if result.completed else 130
    return write_result(a.json, result.to_dict(), code) if a.json else code


def cmd_datasets(a: argparse.Namespace) -> int:
    from ..data import list_datasets

    infos = list_datasets()
    if a.json:
        print(json.dumps([{**i.__dict__, "classes": list(i.classes)} for i in infos], indent=1))
        return 0
    print(f"{'name':<15}{'train':>7}{'val':>7}{'test':>7}  domain")
    for i in infos:
        print(f"{i.name:<15}{i.n_train:>7}{i.n_val:>7}{i.n_test:>7}  {i.domain}")
        print(f"{'':<38}{len(i.classes)} classes: {', '.join(i.classes)}")
        print(f"{'':<38}licence: {i.licence}; source: {i.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tl_engine",
        description="Transfer Learning Race: train from scratch, a frozen ImageNet backbone and a fine-tuned one "
                    "on the same small dataset, and compare test accuracy, trainable parameters and compute time.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("race", help="race the strategies (one epoch each in turn) and print a table",
                       description=f"Race some of {', '.join(KNOWN_STRATEGIES)} (default the first three) on one "
                                   "dataset; Ctrl-C stops cleanly.")
    add_race_options(r)
    add_strategies_option(r)
    r.add_argument("--json", metavar="PATH", help="write config, every epoch and the summary as JSON")
    r.set_defaults(func=cmd_race)
    d = sub.add_parser("datasets", help="list the bundled datasets: domain, images, classes, licence")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=cmd_datasets)
    add_sweep_command(sub)
    add_similarity_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {terminal(exc)}", file=sys.stderr)  # a file or folder name may hold escape sequences
        return 2
