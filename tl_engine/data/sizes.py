"""How many images a race draws from each split, and from each class: balanced where possible, never failing.

A draw of ``n`` images from a split gives every class ``n // C`` (the first classes one more) while every class
has that many. When a class has fewer, it gives all it has and the rest come from the other classes, in the same
balanced way (water-filling): so any ``n`` from one image per class to the whole split can be drawn, and the draw
is *balanced* (class counts differ by at most one) up to :func:`max_balanced`. Default sizes are fitted to that
maximum, so an unequal upload races balanced unless the person asks for more; then :func:`draw_note` says which
classes gave all they have. Pure numpy: the page and the CLI use the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .uploads import PREFIX as UPLOAD_PREFIX

SPLITS = ("train", "val", "test")
_WORDS = {"train": "training", "val": "validation", "test": "test"}


def quotas(counts: np.ndarray | list[int], n: int) -> np.ndarray:
    """Images per class for a draw of ``n``: balanced, except that a class with fewer gives all it has.

    Raises:
        ValueError: ``n`` is more than all the classes hold together.
    """
    counts = np.asarray(counts, np.int64)
    if n > int(counts.sum()):
        raise ValueError(f"a draw of {n} from {int(counts.sum())} images")
    q = np.zeros(len(counts), np.int64)
    open_, left = list(range(len(counts))), int(n)
    while left > 0:
        share, extra = divmod(left, len(open_))
        want = {c: share + (i < extra) for i, c in enumerate(open_)}
        short = [c for c in open_ if counts[c] < want[c]]
        if not short:
            for c in open_:
                q[c] = want[c]
            break
        for c in short:  # these give everything; the others share what is left, balanced again
            q[c] = counts[c]
            left -= int(counts[c])
        gone = set(short)
        open_ = [c for c in open_ if c not in gone]
    return q


def max_balanced(counts: np.ndarray | list[int]) -> int:
    """Largest draw whose class counts differ by at most one: every class gives the smallest class's count,
    and each larger class one more."""
    counts = np.asarray(counts, np.int64)
    m = int(counts.min())
    return len(counts) * m + int((counts > m).sum())


def display_name(info: Any) -> str:
    """What messages call a dataset: the file the person uploaded, never ``upload:<hash>``."""
    name = str(getattr(info, "name", ""))
    return str(getattr(info, "source", "") or name) if name.startswith(UPLOAD_PREFIX) else name


def class_counts(info: Any, split: str) -> np.ndarray | None:
    """Images per class in ``split`` ("train", "val" or "test"), or None where the dataset does not say."""
    counts = getattr(info, "class_counts", ())
    return np.asarray(counts[SPLITS.index(split)], np.int64) if counts else None


def n_images(info: Any, split: str) -> int:
    return int(getattr(info, f"n_{split}"))


def n_classes(info: Any) -> int:
    c = info.classes
    return c if isinstance(c, int) else len(c)


def balanced_max(info: Any, split: str) -> int:
    """The largest balanced draw from ``split`` (all of it where the per-class counts are not known)."""
    counts = class_counts(info, split)
    return n_images(info, split) if counts is None else max_balanced(counts)


def fitted_size(info: Any, split: str, default: int) -> int:
    """The size used unless the person chooses one: ``default``, but at least one image per class and at most
    the largest balanced draw (so a default never makes an unequal set race unbalanced, nor fail)."""
    return max(min(max(default, n_classes(info)), balanced_max(info, split)), 1)


def draw_note(info: Any, split: str, n: int, show: Callable[[str], str] = str) -> str | None:
    """One sentence when a draw of ``n`` is not balanced (which classes give all they have), else None.
    ``show`` renders each class name (the page escapes them: a name can be markup)."""
    counts = class_counts(info, split)
    if counts is None or n <= max_balanced(counts) or n > int(counts.sum()):
        return None
    q = quotas(counts, n)
    names = [show(c) for c in info.classes]
    head = f"{n:,} {_WORDS[split]} images is more than a class-balanced draw allows ({max_balanced(counts):,})"
    rest = q < counts
    if not rest.any():
        per = ", ".join(f"{names[c]} {int(k):,}" for c, k in enumerate(q[:5])) + (", ..." if len(q) > 5 else "")
        return f"{head}: all of them, with unequal classes ({per})."
    full = [f"{names[c]} ({int(q[c]):,})" for c in np.flatnonzero(~rest)]
    shown = ", ".join(full[:5]) + (f" and {len(full) - 5} more" if len(full) > 5 else "")
    lo, hi = int(q[rest].min()), int(q[rest].max())
    return (f"{head}: {shown} give{'s' if len(full) == 1 else ''} all {'it has' if len(full) == 1 else 'they have'}"
            f", the other classes {lo:,}{'' if lo == hi else f' to {hi:,}'} each.")
