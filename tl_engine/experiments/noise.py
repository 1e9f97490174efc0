"""The noise rule: is a measured gap between two accuracies larger than what chance alone would give?

Pure and UI-free. A gap counts as real only when it exceeds *both*
- the test set's sampling error: 2 binomial standard errors of the difference, each accuracy p on n test
  images contributing sqrt(p(1-p)/n) (treated as independent, which over-states the noise of two models
  scored on the same images: the rule errs towards "inconclusive"); and
- with two or more seeds, the seeds' spread: the 95 % interval half-width of the mean per-seed difference
  (Student t; seeds are paired when both sides ran them, since a seed fixes the data draw and order).
:class:`Point` is one sweep point over seeds (mean, min, max, n_seeds), what charts and verdicts read.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

# Two-sided 95 % Student t quantiles by degrees of freedom; beyond 30 the 30 value (slightly conservative).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
        15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04}


def t95(df: int) -> float:
    """The 95 % two-sided t quantile, rounded up to the nearest tabulated (smaller) df: never too narrow."""
    return _T95[max(d for d in _T95 if d <= max(1, df))] if df < 30 else _T95[30]


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n test images."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else math.inf


def pts(x: float) -> str:
    """An accuracy or a gap in percentage points, as every sentence shows it: 0.8841 -> "88.4"."""
    return f"{100 * x:.1f}"


@dataclass(frozen=True)
class Sample:
    """One quantity measured over seeds: ``values`` maps seed -> value; ``se``: one run's binomial error."""

    values: Mapping[int, float]
    se: float

    @classmethod
    def accuracy(cls, values: Mapping[int, float], test_size: int) -> Sample:
        mean = statistics.fmean(values.values()) if values else math.nan
        return cls(dict(values), binomial_se(mean, test_size))

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values()) if self.values else math.nan


@dataclass(frozen=True)
class Gap:
    """a − b and the noise it must exceed; ``source`` says which noise was larger."""

    margin: float
    noise: float
    source: str  # "test" (binomial) or "seeds"
    n_seeds: int
    test_size: int | None = None

    @property
    def clear(self) -> bool:
        return abs(self.margin) > self.noise

    def noise_words(self) -> str:
        """"±1.9 points: 2 binomial standard errors on 1,000 test images" or "... the 3 seeds' 95 % interval"."""
        if self.source == "seeds":
            return f"±{pts(self.noise)} points, the {self.n_seeds} seeds' 95 % interval"
        on = f" on {self.test_size:,} test images" if self.test_size else ""
        return f"±{pts(self.noise)} points, 2 binomial standard errors{on}"


def compare(a: Sample, b: Sample, test_size: int | None = None, paired: bool = True) -> Gap:
    """The noise rule of the module docstring applied to a − b."""
    binom = 2 * math.sqrt(a.se ** 2 + b.se ** 2)
    common = sorted(set(a.values) & set(b.values)) if paired else []
    seeds, n = None, max(len(a.values), len(b.values))
    if len(common) >= 2:
        d = [a.values[s] - b.values[s] for s in common]
        seeds, n = t95(len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d)), len(d)
    elif len(a.values) >= 2 and len(b.values) >= 2:
        va, vb = (statistics.variance(x.values.values()) / len(x.values) for x in (a, b))
        seeds = t95(min(len(a.values), len(b.values)) - 1) * math.sqrt(va + vb)
    noise, source = (seeds, "seeds") if seeds is not None and seeds > binom else (binom, "test")
    return Gap(a.mean - b.mean, noise, source, n, test_size)


def gap_noise(test_size: int, p: float = 0.5) -> float:
    """The gap two strategies at accuracy ``p``, scored once on the same ``test_size`` images, must exceed to
    count (the rule of :func:`compare` with one seed); largest at p = 0.5."""
    one = Sample.accuracy({0: p}, test_size)
    return compare(one, one).noise


def noise_sentence(test_size: int) -> str:
    """The test set's noise before any race, for the page and the CLI."""
    return (f"Test set: {test_size:,} images. A gap between two strategies counts only above "
            f"±{pts(gap_noise(test_size))} points at 50 % accuracy (±{pts(gap_noise(test_size, 0.9))} at 90 %): "
            "2 binomial standard errors of the difference, the project's noise rule.")


@dataclass(frozen=True)
class Point:
    """One point of a sweep for one strategy, over the seeds that ran it."""

    x: int | str  # what the sweep varies: k, training images, or the dataset
    strategy: str
    test: tuple[tuple[int, float], ...]  # (seed, final test accuracy), sorted by seed
    val: tuple[tuple[int, float], ...] = ()  # (seed, final validation accuracy)
    test_size: int = 0
    train_size: int = 0
    trainable_params: int = 0
    compute_seconds: float = 0.0  # mean over seeds: training + evaluation

    @property
    def sample(self) -> Sample:
        return Sample.accuracy(dict(self.test), self.test_size)

    @property
    def mean(self) -> float:
        return statistics.fmean(v for _, v in self.test)

    @property
    def min(self) -> float:
        return min(v for _, v in self.test)

    @property
    def max(self) -> float:
        return max(v for _, v in self.test)

    @property
    def n_seeds(self) -> int:
        return len(self.test)

    @property
    def val_mean(self) -> float:
        vals = [v for _, v in self.val if not math.isnan(v)]
        return statistics.fmean(vals) if vals and len(vals) == len(self.val) else math.nan

    def to_dict(self) -> dict:
        return {"x": self.x, "strategy": self.strategy, "mean": self.mean, "min": self.min, "max": self.max,
                "n_seeds": self.n_seeds, "seeds": [s for s, _ in self.test],
                "val_mean": None if math.isnan(self.val_mean) else self.val_mean,  # JSON has no NaN
                "test_size": self.test_size, "train_size": self.train_size,
                "trainable_params": self.trainable_params,
                "compute_seconds": self.compute_seconds}
