"""``python -m tl_engine sweep {freeze,size,domain}``: the experiments, headless.

Each finished race is stored (see :mod:`tl_engine.store`), so running a sweep again, or a sweep that
shares races with another, answers those races at once. Ctrl-C stops within a batch and keeps (and
writes) every race that finished.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .cli_args import add_race_options, check_writable, config_from_args, write_json_atomic

DESCRIPTION = """\
Run one of three experiments as a grid of races and print a table when done.

  freeze  fine-tune alone with k = 7, 6, ..., 0 frozen stages (cheap ones first), then one scratch race
          as the reference: final test accuracy, trainable parameters and compute seconds against k.
  size    all three strategies at 50, 100, 200, 500, 1000, 2000, 5000 training images (clamped to what the
          dataset offers): learning curves, and whether fine-tune on 500 beats scratch on 5,000.
  domain  all three strategies on every bundled dataset (plus --dataset when it is your own path) at
          --train-size: the transfer gain over scratch, ordered by similarity to ImageNet.

The race options set everything the runs share; the swept one is ignored (--frozen for freeze,
--train-size for size, a bundled --dataset for domain). Finished races are kept in
$TL_RACE_DATA/results.sqlite (default data/results.sqlite) and reused.
Ctrl-C stops within a batch: the races that finished are kept, printed and written.
"""

EPILOG = """\
--json writes {"kind": ..., "runs": [{"config": {...}, "summary": {...}, "reused": false, "device": ...}]}
(summary: strategy -> final_test_acc, best_test_acc, trainable_params, total_params, compute_seconds, epochs).
--csv writes one row per run x strategy x epoch with the run's config columns.

example: python -m tl_engine sweep size --dataset mnist --epochs 5 --csv sizes.csv
"""


def add_sweep_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sweep`` on the engine's CLI (called by :func:`tl_engine.cli.build_parser`)."""
    from .sweep import KINDS, SIZES

    s = subparsers.add_parser("sweep", help="run an experiment (freeze depth, data size, domain) as a grid of races",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("kind", choices=KINDS, help="which experiment")
    add_race_options(s)
    s.add_argument("--ks", type=int, nargs="+", metavar="K", help="freeze: the k values, in run order (default 7..0)")
    s.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help=f"size: training-set sizes (default {' '.join(map(str, SIZES))})")
    s.add_argument("--csv", metavar="PATH", help="write every epoch of every finished run as CSV")
    s.add_argument("--json", metavar="PATH", help="write the runs' configs and summaries as JSON")
    s.add_argument("--store", metavar="PATH", help="results database (default $TL_RACE_DATA/results.sqlite)")
    s.add_argument("--no-store", action="store_true", help="neither reuse nor keep results")
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(a: argparse.Namespace) -> int:
    from .store import ResultStore

    check_writable(a.json)
    check_writable(a.csv, "--csv")
    base = config_from_args(a)
    opts = {k: v for k, v in (("ks", a.ks), ("sizes", a.sizes)) if v}
    store = None if a.no_store else ResultStore(a.store)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: (stop.set(), print("\nstopping; finished runs are kept...",
                                                                          file=sys.stderr)))
    try:
        return _sweep(a, base, opts, store, stop)
    finally:
        signal.signal(signal.SIGINT, previous)


def _sweep(a: argparse.Namespace, base, opts: dict, store, stop: threading.Event) -> int:
    from .sweep import plan, run_sweep, to_csv

    total = len(plan(a.kind, base, **opts))
    print(f"sweep {a.kind}: {total} races, {base.epochs} epochs each, {base.backbone} at {base.resolution}px"
          + ("" if store is None else f"; results in {store.path}"), flush=True)
    runs, t0, eta = [], time.perf_counter(), [None]
    for run in run_sweep(a.kind, base, store, stop, on_run=lambda p: eta.__setitem__(0, p.seconds_left), **opts):
        runs.append(run)
        left = "" if eta[0] is None else f"  ~{eta[0]:.0f}s left"
        print(f"[{len(runs)}/{total}] {describe(a.kind, run)}  "
              + ("reused from the store" if run.reused else f"{_compute(run):.1f}s") + left, flush=True)
    print()
    print(format_table(a.kind, runs))
    print(f"{len(runs)} of {total} races ({sum(r.reused for r in runs)} reused) in "
          f"{time.perf_counter() - t0:.1f}s" + ("  (stopped early)" if len(runs) < total else ""))
    if a.csv:
        to_csv(runs, a.csv)
        print(f"wrote {a.csv}")
    if a.json:
        write_json_atomic(a.json, {"kind": a.kind, "runs": [r.to_dict() for r in runs]})
        print(f"wrote {a.json}")
    return 0 if len(runs) == total else 130


def _compute(run) -> float:
    return sum(s.compute_seconds for s in run.summary.values())


def describe(kind: str, run) -> str:
    """The swept value and the headline numbers of one run, for a progress line."""
    from .sweep import swept_value

    accs = "  ".join(f"{s} {v.final_test_acc:.1%}" for s, v in run.summary.items())
    return f"{swept_value(kind, run.config):<16} {accs}"


def format_table(kind: str, runs: list) -> str:
    """One row per run and strategy, plus the experiment's conclusion (verdict or gains)."""
    from .sweep import curve_points, learning_curve_verdict, swept_value, transfer_gains

    head = {"freeze": "k", "size": "train", "domain": "dataset"}[kind]
    rows = [f"{head:<16}{'strategy':<10}{'test acc':>10}{'trainable':>14}{'compute s':>12}  reused"]
    for r in runs:
        for s, v in r.summary.items():
            rows.append(f"{swept_value(kind, r.config):<16}{s:<10}{v.final_test_acc:>10.1%}"
                        f"{v.trainable_params:>14,}{v.compute_seconds:>12.1f}  {'yes' if r.reused else ''}")
    if kind == "size" and runs:
        rows += ["", learning_curve_verdict(curve_points(runs)).sentence]
    if kind == "domain" and runs:
        from .data import list_datasets

        tags = {i.name: i.similarity for i in list_datasets()}
        rows += ["", f"{'dataset':<16}{'similarity':<12}{'fine-tune gain':>16}{'frozen gain':>14}"
                     "  (accuracy points over scratch)"]
        rows += [f"{g.dataset:<16}{g.similarity:<12}{100 * g.finetune_gain:>+16.1f}{100 * g.frozen_gain:>+14.1f}"
                 for g in transfer_gains(runs, tags)]
    return "\n".join(rows)
