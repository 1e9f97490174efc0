"""What a class found together: a server's stored races pooled into the sweeps' pictures.

Thirty students each racing a different *k* or training size ran, between them, a freeze sweep and a learning
curve. Races are comparable only when everything but the swept setting (and the seed) is the same, so they are
pooled in :class:`Group`\\ s: ``freeze`` groups share every setting but ``frozen_stages``, ``size`` groups every
setting but ``train_size``. A group is then read exactly as a sweep is (:func:`tl_engine.experiments.sweep.points`,
the same noise rule and verdicts). Pure: plain records in, plain records out; no store, no Streamlit.

Nothing identifies a student: the store holds configs and accuracies only, and races on a student's own images
(a path, not a bundled name) are counted but never pooled or listed (their pictures differ, and a file name can
name a person).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..config import RaceResult
from .noise import Point
from .sweep import points, sweep_verdict
from .verdicts import Verdict

VARIES = {"freeze": "frozen_stages", "size": "train_size"}  # what each picture puts on its x axis
IGNORED = ("seed", "strategies", "device")  # never split a group: seeds are the band, device only the speed
# How a shared setting is named when groups must be told apart (fields not listed are shown as name=value).
WORDS = {"dataset": "{}", "backbone": "{}", "epochs": "{} epochs", "resolution": "{} px",
         "test_size": "{:,} test images", "train_size": "{:,} training images", "frozen_stages": "k = {}",
         "val_size": "{:,} validation images", "batch_size": "batch {}", "augment": "augment {}"}
CSV_FIELDS = ("finished_at", "dataset", "backbone", "train_size", "val_size", "test_size", "frozen_stages",
              "epochs", "resolution", "batch_size", "lr_head", "lr_body", "lr_scratch", "weight_decay", "augment",
              "seed", "strategy", "final_test_acc", "final_val_acc", "trainable_params", "compute_seconds")


@dataclass(frozen=True)
class Group:
    """Stored races that differ only in the swept setting and the seed."""

    kind: str  # "freeze" or "size"
    settings: tuple[tuple[str, object], ...]  # the config fields they share, in RunConfig order
    races: tuple[RaceResult, ...]  # oldest first

    def describe(self, fields: Sequence[str] | None = None) -> str:
        """"mobilenet_v2 · 10 epochs · 96 px" from ``fields`` (default: every shared one)."""
        shared = dict(self.settings)
        names = [f for f in (fields if fields is not None else shared) if f in shared]
        return " · ".join(WORDS[f].format(shared[f]) if f in WORDS else f"{f} {shared[f]}" for f in names)

    @property
    def xs(self) -> list:
        runs = [r for r in self.races if self.kind != "freeze" or "finetune" in r.summary]  # k: fine-tune's
        return sorted({getattr(r.config, VARIES[self.kind]) for r in runs})


def is_bundled(result: RaceResult, bundled: Iterable[str]) -> bool:
    return result.config.dataset in set(bundled)


def finished_at(result: RaceResult) -> datetime | None:
    """When the race was stored (timezone-aware), or None for a record without a time."""
    try:
        return datetime.fromisoformat(str(result.extras.get("created_at")))
    except ValueError:
        return None


def in_window(results: Iterable[RaceResult], since: datetime | None) -> list[RaceResult]:
    """The races stored at or after ``since`` (all when None; a race without a time only then)."""
    if since is None:
        return list(results)
    return [r for r in results if (t := finished_at(r)) is not None and t >= since]


def _settings(result: RaceResult, kind: str | None) -> tuple[tuple[str, object], ...]:
    skip = set(IGNORED) | ({VARIES[kind]} if kind else set())
    return tuple((k, v) for k, v in result.config.to_dict().items() if k not in skip)


def groups(kind: str, results: Iterable[RaceResult]) -> list[Group]:
    """The comparable groups for ``kind`` ("freeze" or "size"), most races first (ties: the newest first)."""
    by: dict[tuple, list[RaceResult]] = {}
    for r in results:
        by.setdefault(_settings(r, kind), []).append(r)
    # k moves only fine-tune: a group without it says nothing about k (a scratch-only race, as the freeze sweep
    # runs one, still joins a group that has fine-tune: it is a reference).
    keep = [(key, rs) for key, rs in by.items() if kind != "freeze" or any("finetune" in r.summary for r in rs)]
    out = sorted((Group(kind, key, tuple(rs)) for key, rs in keep),
                 key=lambda g: str(g.races[-1].extras.get("created_at")), reverse=True)
    return sorted(out, key=lambda g: (-len(g.races), -len(g.xs)))  # stable: among equals, the newest first


def telling_fields(gs: Sequence[Group]) -> list[str]:
    """The shared settings whose values differ between groups: what a teacher needs to tell them apart."""
    if not gs:
        return []
    names = [k for k, _ in gs[0].settings]
    if len(gs) == 1:
        return [f for f in ("dataset", "backbone", "epochs", "resolution") if f in names]
    return [f for f in names if len({dict(g.settings).get(f) for g in gs}) > 1]


def group_points(group: Group) -> dict[str, list[Point]]:
    """strategy -> one point per swept value over the seeds that ran it (the sweeps' :func:`points`)."""
    return points(group.kind, group.races)


def reference(group: Group, strategy: str) -> Point | None:
    """One point for a strategy that the swept setting cannot move (scratch and frozen against k): every seed
    it ran in the group, pooled (a seed run at several k is one run, answered from the store: counted once)."""
    test: dict[int, float] = {}
    val: dict[int, float] = {}
    cfg = None
    for r in group.races:
        if strategy in r.summary:
            cfg = r.config
            test[cfg.seed] = r.summary[strategy].final_test_acc
            val[cfg.seed] = r.summary[strategy].final_val_acc
    if cfg is None:
        return None
    return Point("all", strategy, tuple(sorted(test.items())), tuple(sorted(val.items())), cfg.test_size,
                 cfg.train_size)


def group_verdict(group: Group) -> Verdict:
    """The sweep's own verdict on the pooled races: best k (freeze) or the 500-vs-5,000 claim (size)."""
    return sweep_verdict(group.kind, group_points(group))


def race_points(group: Group, strategy: str) -> list[tuple[object, int, float]]:
    """(swept value, seed, final test accuracy) of every race in the group that ran ``strategy``."""
    x = VARIES[group.kind]
    return [(getattr(r.config, x), r.config.seed, r.summary[strategy].final_test_acc)
            for r in group.races if strategy in r.summary]


def csv_rows(results: Iterable[RaceResult]) -> list[dict]:
    """One row per race and strategy: when it finished (to the minute), its settings, its final accuracies.
    No store id, no device, nothing about who ran it."""
    rows = []
    for r in results:
        t = finished_at(r)
        cfg = r.config.to_dict()
        for s, v in r.summary.items():
            rows.append({**{k: cfg[k] for k in CSV_FIELDS if k in cfg},
                         "finished_at": t.strftime("%Y-%m-%d %H:%M") if t else "", "strategy": s,
                         "final_test_acc": v.final_test_acc, "final_val_acc": v.final_val_acc,
                         "trainable_params": v.trainable_params, "compute_seconds": round(v.compute_seconds, 2)})
    return [{k: row.get(k) for k in CSV_FIELDS} for row in rows]
