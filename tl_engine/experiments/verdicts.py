"""Verdicts that say only what was measured: a winner is named only when its margin is larger than the noise.

Pure and UI-free (no torch, no Streamlit). The noise rule lives in :mod:`tl_engine.experiments.noise` (binomial test-set
error and the seeds' spread, whichever is larger). Reading order: :class:`Verdict`, then the four verdicts:
:func:`race_verdict`, :func:`claim_500_vs_5000`, :func:`best_k` (via :func:`best_of`), :func:`domain_gains`
and :func:`domain_verdict`. A gap inside the noise is always ``inconclusive``, and the sentence says which
noise and how big; otherwise it says by how much.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..config import NUM_STAGES, EpochResult, RaceResult
from ..models import label
from .noise import Gap, Point, Sample, compare, pts

__all__ = ["STATUSES", "CLAIM", "CLAIM_SMALL", "CLAIM_LARGE", "Verdict", "Point", "DomainGain", "race_verdict",
           "compare_curves", "curves_from_events", "claim_500_vs_5000", "best_k", "best_of", "k_name",
           "domain_gains", "domain_verdict"]

STATUSES: tuple[str, ...] = ("supported", "not supported", "inconclusive")
CLAIM_SMALL, CLAIM_LARGE = 500, 5000
CLAIM = "a pretrained model fine-tuned on 500 examples outperforms a model trained from scratch on 5,000"
ONE_SEED = " One seed counts only the test set's noise: race 3 seeds before calling it a win."  # "leads", not "wins"


@dataclass(frozen=True)
class Verdict:
    """A claim checked against measurements: one of :data:`STATUSES`, a sentence, the numbers it used."""

    status: str  # "supported" | "not supported" | "inconclusive"
    sentence: str
    numbers: dict[str, float | int | str] = field(default_factory=dict)
    margin: float | None = None  # accuracy (0..1) of the side named first minus the other
    noise: float | None = None  # what the margin had to exceed (0..1)
    noise_source: str = ""  # "test" | "seeds" | "" (nothing compared)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}")

    def to_dict(self) -> dict:
        return {"status": self.status, "sentence": self.sentence, "numbers": dict(self.numbers),
                "margin": self.margin, "noise": self.noise, "noise_source": self.noise_source}


def _from_gap(status: str, sentence: str, gap: Gap, **numbers) -> Verdict:
    return Verdict(status, sentence, numbers, gap.margin, gap.noise, gap.source)


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


# ---- the race ------------------------------------------------------------------------------------------------

def curves_from_events(events: Iterable[EpochResult]) -> dict[str, list[float]]:
    """strategy -> test accuracy after epoch 1, 2, ... (in race order)."""
    out: dict[str, list[float]] = {}
    for e in sorted(events, key=lambda e: e.epoch):
        out.setdefault(e.strategy, []).append(e.test_acc)
    return out


def race_verdict(races: RaceResult | Sequence[RaceResult]) -> Verdict:
    """The race's result sentence from one race or several seeds of the same race (see :func:`compare_curves`)."""
    races = [races] if isinstance(races, RaceResult) else list(races)
    if not races:
        return Verdict("inconclusive", "No results yet.")
    cfg = races[0].config
    return compare_curves({r.config.seed: curves_from_events(r.epochs) for r in races}, cfg.test_size, cfg.epochs)


def compare_curves(curves: Mapping[int, Mapping[str, Sequence[float]]], test_size: int,
                   planned_epochs: int | None = None) -> Verdict:
    """Name a winner only when it leads the runner-up by more than the noise.

    Args:
        curves: seed -> strategy -> test accuracy per epoch. A stopped race has shorter lists; strategies
            are compared at the last epoch *every* strategy of every seed reached, and the sentence says so.
        test_size: test images per run (the binomial noise).
        planned_epochs: the race's epochs, to tell a stopped race from a finished one.
    Status: ``supported`` = a winner is named; ``inconclusive`` = the top two are within noise (or nothing
    can be compared yet).
    """
    strategies = list(dict.fromkeys(s for c in curves.values() for s in c))
    if not strategies:
        return Verdict("inconclusive", "No results yet.")
    if len(strategies) == 1:
        return Verdict("inconclusive", f"Only {label(strategies[0])} raced: there is nothing to compare it with.")
    lengths = {(seed, s): len(c.get(s, ())) for seed, c in curves.items() for s in strategies}
    at = min(lengths.values())
    if at == 0:
        late = next(s for (_, s), n in lengths.items() if n == 0)
        return Verdict("inconclusive", f"{label(late)} has not finished an epoch yet: nothing to compare.")
    stopped = len(set(lengths.values())) > 1 or (planned_epochs is not None and at < planned_epochs)
    when = (f"at epoch {at}, the last epoch every strategy reached (the race was stopped)" if stopped
            else f"after epoch {at}")
    samples = {s: Sample.accuracy({seed: c[s][at - 1] for seed, c in curves.items()}, test_size) for s in strategies}
    ranked = sorted(strategies, key=lambda s: -samples[s].mean)  # stable: ties keep race order
    best, second = ranked[0], ranked[1]
    gap = compare(samples[best], samples[second], test_size)
    of = f" (mean of {_seeds(len(curves))})" if len(curves) > 1 else " (one seed)"
    a, b = pts(samples[best].mean), pts(samples[second].mean)
    rest = "".join(f"; {label(s)} {pts(samples[s].mean)} %" for s in ranked[2:])
    nums = {"epoch": at, "winner": best, "runner_up": second, "winner_acc": samples[best].mean,
            "runner_up_acc": samples[second].mean, "n_seeds": len(curves)}
    if gap.clear:
        verb, after = ("wins", "") if len(curves) > 1 else ("leads", ONE_SEED)
        return _from_gap("supported", f"{label(best)} {verb} {when}{of}: {a} % test accuracy, {pts(gap.margin)} "
                         f"points ahead of {label(second)} ({b} %), more than the noise ({gap.noise_words()})"
                         f"{rest}.{after}", gap, **nums)
    return _from_gap("inconclusive", f"Within noise, no winner {when}{of}: {label(best)} {a} % and "
                     f"{label(second)} {b} % differ by {pts(gap.margin)} points, inside the noise "
                     f"({gap.noise_words()}){rest}.", gap, **nums)


# ---- the size sweep's claim -------------------------------------------------------------------------------------

def claim_500_vs_5000(points: Mapping[str, Sequence[Point]]) -> Verdict:
    """Test :data:`CLAIM` on runs at exactly 500 (fine-tune) and 5,000 (scratch) training images; no stand-ins."""
    ft = {p.x: p for p in points.get("finetune", ())}
    sc = {p.x: p for p in points.get("scratch", ())}
    needs = [f"{n:,} ({who})" for n, who, have in ((CLAIM_SMALL, "fine-tune", ft), (CLAIM_LARGE, "scratch", sc))
             if n not in have]
    if needs:
        largest = max((p.x for p in sc.values()), default=None)
        why = "" if largest is None or CLAIM_LARGE in sc else f"; the largest scratch run has {largest:,} images"
        return Verdict("inconclusive", f"Inconclusive: needs a run at {' and '.join(needs)}{why}.")
    f, s = ft[CLAIM_SMALL], sc[CLAIM_LARGE]
    gap = compare(f.sample, s.sample, f.test_size)
    of = f" (mean of {_seeds(min(f.n_seeds, s.n_seeds))})" if max(f.n_seeds, s.n_seeds) > 1 else ""
    nums = {"finetune_acc": f.mean, "scratch_acc": s.mean, "n_seeds": min(f.n_seeds, s.n_seeds)}
    body = (f"fine-tuned on {CLAIM_SMALL:,} images the pretrained model reached {pts(f.mean)} % test accuracy{of}, "
            f"scratch on {CLAIM_LARGE:,} reached {pts(s.mean)} %")
    if not gap.clear:
        return _from_gap("inconclusive", f"Inconclusive (within noise): {body}; the {pts(abs(gap.margin))}-point "
                         f"gap is inside the noise ({gap.noise_words()}).", gap, **nums)
    status, word = ("supported", "above") if gap.margin > 0 else ("not supported", "below")
    return _from_gap(status, f"{status.capitalize()}: {body}, so fine-tune is {pts(abs(gap.margin))} points "
                     f"{word}, more than the noise ({gap.noise_words()}).", gap, **nums)


# ---- the freeze sweep's best k ----------------------------------------------------------------------------------

def k_name(k: int) -> str:
    return f"k = {k}" + (" (= frozen)" if k == NUM_STAGES else "")


def best_k(points: Sequence[Point]) -> Verdict:
    """Which fine-tune depth is best: chosen on validation accuracy, checked on test (see :func:`best_of`)."""
    return best_of({k_name(int(p.x)): p for p in sorted(points, key=lambda p: -int(p.x))}, "depth")


def best_of(candidates: Mapping[str, Point], what: str = "choice") -> Verdict:
    """The candidate with the best mean *validation* accuracy, and whether the test set confirms it.

    ``supported``: it beats every other candidate on test by more than the noise; ``not supported``: some
    other candidate beats it on test by more than the noise; ``inconclusive``: some other is within noise.
    Ties on validation go to the earlier candidate (pass the cheaper ones first).
    """
    if len(candidates) < 2:
        return Verdict("inconclusive", f"Inconclusive: needs at least two runs to pick a best {what}.")
    if any(math.isnan(p.val_mean) for p in candidates.values()):
        return Verdict("inconclusive", "Inconclusive: some runs have no validation accuracy, and a best "
                       f"{what} is chosen on validation, never on test.")
    name = max(candidates, key=lambda n: candidates[n].val_mean)
    best = candidates[name]
    gaps = {n: compare(best.sample, p.sample, best.test_size) for n, p in candidates.items() if n != name}
    seeds = min(p.n_seeds for p in candidates.values())
    nums = {"best": name, "best_test_acc": best.mean, "best_val_acc": best.val_mean, "n_seeds": seeds}
    head = (f"{name} had the best validation accuracy ({pts(best.val_mean)} %, {_seeds(seeds)}); "
            f"on test it reached {pts(best.mean)} %")
    beaten = {n: g for n, g in gaps.items() if g.clear and g.margin < 0}
    if beaten:
        n, g = min(beaten.items(), key=lambda kv: kv[1].margin)
        return _from_gap("not supported", f"Not supported: {head}, but {n} beat it on test by {pts(-g.margin)} "
                         f"points, more than the noise ({g.noise_words()}).", g, **nums, other=n)
    close = {n: g for n, g in gaps.items() if not g.clear}
    if close:
        n, g = min(close.items(), key=lambda kv: abs(kv[1].margin))
        return _from_gap("inconclusive", f"Inconclusive (within noise): {head}, and {n} "
                         f"({pts(candidates[n].mean)} %) is within {pts(abs(g.margin))} points of it, inside the "
                         f"noise ({g.noise_words()}).", g, **nums, other=n)
    n, g = min(gaps.items(), key=lambda kv: kv[1].margin)
    return _from_gap("supported", f"Supported: {head}, {pts(g.margin)} points above the next best, {n} "
                     f"({pts(candidates[n].mean)} %), more than the noise ({g.noise_words()}).", g, **nums, other=n)


# ---- the domain experiment ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DomainGain:
    """What pretraining adds on one dataset, as error reduction relative to scratch (see :func:`domain_gains`)."""

    dataset: str
    score: float | None  # measured similarity to ImageNet, 0..1 (None: not measured)
    strategy: str  # "frozen" or "finetune"
    gain: Sample  # seed -> (acc − acc_scratch) / (1 − acc_scratch)
    acc: float  # mean test accuracies over the seeds
    scratch_acc: float
    train_size: int
    verdict: Verdict  # does pretraining help on this dataset?

    @property
    def mean(self) -> float:
        return self.gain.mean

    @property
    def min(self) -> float:
        return min(self.gain.values.values())

    @property
    def max(self) -> float:
        return max(self.gain.values.values())

    @property
    def n_seeds(self) -> int:
        return len(self.gain.values)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "score": self.score, "strategy": self.strategy, "mean": self.mean,
                "min": self.min, "max": self.max, "n_seeds": self.n_seeds, "acc": self.acc,
                "scratch_acc": self.scratch_acc, "train_size": self.train_size, "verdict": self.verdict.to_dict()}


def domain_gains(points: Mapping[str, Sequence[Point]], scores: Mapping[str, float],
                 strategies: Sequence[str] = ("frozen", "finetune")) -> list[DomainGain]:
    """Per dataset and strategy: error reduction relative to scratch, ordered by similarity score (high first).

    Why not plain accuracy points: +5 points means little on a dataset where scratch already gets 97 % (most of
    the error gone) and little on one where it gets 40 %. The gain used here is chance-normalised:
    ``(acc − acc_scratch) / (1 − acc_scratch)``, the share of scratch's errors that pretraining removes
    (1 = every error, 0 = none, negative = more errors than scratch). It is computed per seed (paired: the same
    seed draws the same images for both), then averaged; its binomial noise is the accuracy difference's,
    divided by scratch's error. Datasets without a score come last, in the order given.

    Args:
        points: strategy -> points whose ``x`` is the dataset (from a domain sweep).
        scores: dataset -> measured similarity score in [0, 1].
    """
    sc = {p.x: p for p in points.get("scratch", ())}
    out = []
    for s in strategies:
        for p in points.get(s, ()):
            base = sc.get(p.x)
            if base is None:
                continue
            acc, ref = dict(p.test), dict(base.test)
            seeds = [k for k in acc if k in ref and ref[k] < 1]  # scratch at 100 % leaves no error to reduce
            if not seeds:
                continue
            err = 1 - base.mean
            se = math.sqrt(p.sample.se ** 2 + base.sample.se ** 2) / err if err > 0 else math.inf
            gain = Sample({k: (acc[k] - ref[k]) / (1 - ref[k]) for k in seeds}, se)
            gap = compare(gain, Sample(dict.fromkeys(seeds, 0.0), 0.0), p.test_size)
            out.append(DomainGain(str(p.x), scores.get(str(p.x)), s, gain, p.mean, base.mean, p.train_size,
                                  _gain_verdict(str(p.x), s, gap)))
    order = {d: i for i, d in enumerate(dict.fromkeys(g.dataset for g in out))}
    return sorted(out, key=lambda g: (g.score is None, -(g.score or 0.0), order[g.dataset]))


def _gain_verdict(dataset: str, strategy: str, gap: Gap) -> Verdict:
    what = f"{label(strategy)} on {dataset}"
    red = f"{pts(abs(gap.margin))} % of scratch's errors"
    if not gap.clear:
        return Verdict("inconclusive", f"Inconclusive (within noise): {what} changes scratch's errors by "
                       f"{pts(gap.margin)} %, inside the noise ({gap.noise_words()}).", {}, gap.margin, gap.noise,
                       gap.source)
    status, verb = ("supported", "removes") if gap.margin > 0 else ("not supported", "adds")
    return Verdict(status, f"{status.capitalize()}: {what} {verb} {red}, more than the noise "
                   f"({gap.noise_words()}).", {}, gap.margin, gap.noise, gap.source)


def domain_verdict(gains: Sequence[DomainGain], strategy: str = "finetune") -> Verdict:
    """Does pretraining help more on the most ImageNet-like dataset than on the least? (The two ends only.)

    Two datasets at the ends of the measured score range are compared, not a trend over all of them: with
    four datasets no trend can be established, and the sentence says so.
    """
    scored = sorted((g for g in gains if g.strategy == strategy and g.score is not None), key=lambda g: -g.score)
    if len(scored) < 2:
        return Verdict("inconclusive", "Inconclusive: needs measured similarity scores for at least two datasets.")
    hi, lo = scored[0], scored[-1]
    gap = compare(hi.gain, lo.gain, None, paired=False)  # different datasets: their seeds are not paired
    body = (f"{label(strategy)} removes {pts(hi.mean)} % of scratch's errors on {hi.dataset} (similarity "
            f"{hi.score:.2f}) and {pts(lo.mean)} % on {lo.dataset} ({lo.score:.2f})")
    nums = {"most_similar": hi.dataset, "least_similar": lo.dataset, "n_datasets": len(scored)}
    ends = f" (the two ends of {len(scored)} datasets, not a trend)"
    if not gap.clear:
        return _from_gap("inconclusive", f"Inconclusive (within noise): {body}; the {pts(abs(gap.margin))}-point "
                         f"difference is inside the noise ({gap.noise_words()}){ends}.", gap, **nums)
    status = "supported" if gap.margin > 0 else "not supported"
    more = "more" if gap.margin > 0 else "less"
    return _from_gap(status, f"{status.capitalize()}: {body}: transfer helps {more} on the more ImageNet-like "
                     f"set by {pts(abs(gap.margin))} points, more than the noise ({gap.noise_words()}){ends}.",
                     gap, **nums)
