"""``python -m tl_engine sweep {freeze,size,domain}``: the experiments, headless.

Each finished race is stored (see :mod:`tl_engine.store.results`), so running a sweep again, or a sweep that
shares races with another, answers those races at once. Ctrl-C stops within a batch and keeps (and
writes) every race that finished.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from ..errors import ConfigError
from ..store import check_writable, os_reason
from .args import add_race_options, config_from_args
from .output import write_result

DESCRIPTION = """\
Run one of three experiments as a grid of races and print a table when done.

  freeze  fine-tune alone with k = 7, 6, ..., 0 frozen stages (cheap ones first), then one scratch race
          as the reference: final test accuracy, trainable parameters and compute seconds against k.
  size    all three strategies at 50, 100, 200, 500, 1000, 2000, 5000 training images (clamped to what the
          dataset offers): learning curves, and whether fine-tune on 500 beats scratch on 5,000.
  domain  all three strategies on every bundled dataset (plus --dataset when it is your own path) with the
          same --per-class training images per class on each: the transfer gain as error reduction
          relative to scratch, (acc - acc_scratch) / (1 - acc_scratch), ordered by the measured
          similarity score to ImageNet.

--seeds N runs every grid point with seeds --seed .. --seed+N-1; the table shows the mean and min..max.
Every verdict is "supported", "not supported" or "inconclusive": a gap inside the noise (2 binomial
standard errors of the test set, or with several seeds their 95 % interval, whichever is larger) is
inconclusive. The best k is chosen on validation accuracy and checked on test.

The race options set everything the runs share; the swept one is ignored (--frozen for freeze,
--train-size for size, a bundled --dataset and --train-size for domain). Finished races are kept in
$TL_RACE_DATA/results.sqlite (default data/results.sqlite) and reused.
Ctrl-C stops within a batch: the races that finished are kept, printed and written.
"""

EPILOG = """\
--json writes {"kind", "seeds", "runs": [{"config", "summary", "reused", "device"}],
"points": {strategy: [{"x", "mean", "min", "max", "n_seeds", "seeds", "val_mean", ...}]},
"verdict": {"status", "sentence", "margin", "noise", "noise_source", "numbers"}, "gains": [...] (domain)}
(summary: strategy -> final_test_acc, final_val_acc, trainable_params, compute_seconds, epochs, ...).
--csv writes one row per run x strategy x epoch with the run's config columns (the seed is one of them).

example: python -m tl_engine sweep size --dataset mnist --epochs 5 --csv sizes.csv
"""


def add_sweep_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sweep`` on the engine's CLI (called by :func:`tl_engine.cli.main.build_parser`)."""
    from ..experiments import DOMAIN_PER_CLASS, KINDS, SIZES

    s = subparsers.add_parser("sweep", help="run an experiment (freeze depth, data size, domain) as a grid of races",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("kind", choices=KINDS, help="which experiment")
    add_race_options(s)
    s.add_argument("--ks", type=int, nargs="+", metavar="K", help="freeze: the k values, in run order (default 7..0)")
    s.add_argument("--sizes", type=int, nargs="+", metavar="N",
                   help=f"size: training-set sizes (default {' '.join(map(str, SIZES))})")
    s.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="run every grid point with N seeds (--seed .. --seed+N-1; default 1)")
    s.add_argument("--per-class", type=int, metavar="N",
                   help=f"domain: training images per class on every dataset (default {DOMAIN_PER_CLASS})")
    s.add_argument("--csv", metavar="PATH", help="write every epoch of every finished run as CSV")
    s.add_argument("--json", metavar="PATH", help="write the runs' configs and summaries as JSON")
    s.add_argument("--store", metavar="PATH", help="results database (default $TL_RACE_DATA/results.sqlite)")
    s.add_argument("--no-store", action="store_true", help="neither reuse nor keep results")
    s.add_argument("--backend", choices=("local", "process", "ray"), default="local",
                   help="local: the races run one after another in this process (default); process or ray: each "
                        "race is its own job, several at once (ray: on the cluster named by RAY_ADDRESS, else a "
                        "local Ray; `pip install ray`)")
    s.add_argument("--workers", type=int, metavar="N",
                   help="with --backend: races at once (default: TL_RACE_WORKERS, else one per two cores)")
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(a: argparse.Namespace) -> int:
    from ..store import ResultStore

    check_writable(a.json)
    check_writable(a.csv, "--csv")
    base = config_from_args(a)
    if a.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {a.seeds}")
    if a.kind != "domain":  # sizes left at their defaults fitted to the dataset, as `race` does
        base = _fitted(base)
    opts = {k: v for k, v in (("ks", a.ks), ("sizes", a.sizes), ("per_class", a.per_class)) if v}
    opts["seeds"] = a.seeds
    if a.kind == "domain":
        opts["scores"] = measured_scores(base)
    if a.backend != "local" and (a.no_store or a.store):
        raise ConfigError("--backend keeps results in the default store ($TL_RACE_DATA): drop --store/--no-store")
    store = None if a.no_store else ResultStore(a.store)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: (stop.set(), print("\nstopping; finished runs are kept...",
                                                                          file=sys.stderr)))
    try:
        return _sweep(a, base, opts, store, stop)
    finally:
        signal.signal(signal.SIGINT, previous)


def _fitted(base):
    from ..data import list_datasets, load_dataset
    from ..training import fit_to_dataset

    info = next((i for i in list_datasets() if i.name == base.dataset), None) or load_dataset(base.dataset).info
    base, notes = fit_to_dataset(base, info)
    for note in notes:
        print(f"note: {note}")
    return base


def _sweep(a: argparse.Namespace, base, opts: dict, store, stop: threading.Event) -> int:
    from ..experiments import plan, run_sweep, to_csv

    total = len(plan(a.kind, base, **opts))
    seeds = f"{a.seeds} seed" + ("s" if a.seeds > 1 else "")
    print(f"sweep {a.kind}: {total} races ({seeds}), {base.epochs} epochs each, {base.backbone} at {base.resolution}px"
          + ("" if store is None else f"; results in {store.path}"), flush=True)
    runs, t0, eta = [], time.perf_counter(), [None]
    if a.backend == "local":
        stream = run_sweep(a.kind, base, store, stop, on_run=lambda p: eta.__setitem__(0, p.seconds_left), **opts)
    else:
        from ..jobs import run_sweep_on

        stream = run_sweep_on(a.backend, a.kind, base, stop, workers=a.workers, **opts)
    for run in stream:
        runs.append(run)
        left = "" if eta[0] is None else f"  ~{eta[0]:.0f}s left"
        print(f"[{len(runs)}/{total}] {describe(a.kind, run)}  "
              + ("reused from the store" if run.reused else f"{_compute(run):.1f}s") + left, flush=True)
    grid = {c: i for i, c in enumerate(plan(a.kind, base, **opts))}
    runs.sort(key=lambda r: grid.get(r.config, len(grid)))  # other backends finish out of order
    print()
    print(format_table(a.kind, runs, opts.get("scores")))
    print(f"{len(runs)} of {total} races ({sum(r.reused for r in runs)} reused) in "
          f"{time.perf_counter() - t0:.1f}s" + ("  (stopped early)" if len(runs) < total else ""))
    code = 0 if len(runs) == total else 130
    if a.csv:
        try:
            to_csv(runs, a.csv)
            print(f"wrote {a.csv}")
        except OSError as e:  # after the work: say so, keep going to the JSON (and the store has every run)
            print(f"error: {a.csv} could not be written ({os_reason(e)})", file=sys.stderr)
            code = 1
    return write_result(a.json, sweep_json(a.kind, runs, a.seeds, opts.get("scores")), code) if a.json else code


def _compute(run) -> float:
    return sum(s.compute_seconds for s in run.summary.values())


def describe(kind: str, run) -> str:
    """The swept value and the headline numbers of one run, for a progress line."""
    from ..experiments import swept_value

    accs = "  ".join(f"{s} {v.final_test_acc:.1%}" for s, v in run.summary.items())
    return f"{swept_value(kind, run.config):<16} seed {run.config.seed:<4} {accs}"


def measured_scores(base) -> dict[str, float]:
    """dataset -> measured similarity score, for the domain order; {} (order as listed) when not measurable."""
    try:
        from ..inspect import measure
    except ImportError:  # the similarity measurement is not part of this installation: say so, go on unordered
        print("similarity scores unavailable: datasets run in their listed order", file=sys.stderr)
        return {}
    from ..experiments import plan

    return {c.dataset: measure(c.dataset, base.backbone).score for c in plan("domain", base)}


def sweep_json(kind: str, runs: list, seeds: int, scores: dict | None = None) -> dict:
    """The --json document: runs, the aggregated points (mean, min, max, n_seeds) and the verdict."""
    from ..experiments import domain_gains, points, sweep_verdict

    pts = points(kind, runs)
    out = {"kind": kind, "seeds": seeds, "runs": [r.to_dict() for r in runs],
           "points": {s: [p.to_dict() for p in ps] for s, ps in pts.items()},
           "verdict": sweep_verdict(kind, pts, scores).to_dict()}
    if kind == "domain":
        out["gains"] = [g.to_dict() for g in domain_gains(pts, scores or {})]
    return out


def format_table(kind: str, runs: list, scores: dict | None = None) -> str:
    """One row per swept value and strategy (mean and min..max over seeds), then the verdict."""
    from ..experiments import domain_gains, points, sweep_verdict

    head = {"freeze": "k", "size": "train", "domain": "dataset"}[kind]
    rows = [f"{head:<16}{'strategy':<10}{'test acc':>10}{'min..max':>15}{'seeds':>7}{'trainable':>12}"
            f"{'compute s':>11}"]
    pts = points(kind, runs)
    for ps in pts.values():
        for p in ps:
            rng = f"{100 * p.min:.1f}..{100 * p.max:.1f}"
            rows.append(f"{str(p.x):<16}{p.strategy:<10}{p.mean:>10.1%}{rng:>15}{p.n_seeds:>7}"
                        f"{p.trainable_params:>12,}{p.compute_seconds:>11.1f}")
    if kind == "domain" and runs:
        rows += ["", f"{'dataset':<16}{'score':>7}{'strategy':>10}{'error reduction':>17}{'min..max':>17}"
                     "  (share of scratch's errors removed)"]
        rows += [f"{g.dataset:<16}{'-' if g.score is None else f'{g.score:.2f}':>7}{g.strategy:>10}"
                 f"{g.mean:>17.1%}{f'{100 * g.min:.1f}..{100 * g.max:.1f}':>17}  {g.verdict.status}"
                 for g in domain_gains(pts, scores or {})]
    if runs:
        v = sweep_verdict(kind, pts, scores)
        rows += ["", f"verdict: {v.status}", v.sentence]
    return "\n".join(rows)
