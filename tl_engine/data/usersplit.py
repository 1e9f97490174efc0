"""Per-class validation and test splits carved from user data that does not bring its own.

Each class is permuted with a fixed seed and cut, so the same files always land in the same split, and every
carved split gets at least one image of every class (a class absent from validation could not be scored).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

VAL_FRACTION = 0.15  # of each class, carved for validation when the data has no validation split
TEST_FRACTION = 0.15  # of each class, carved for testing when the data has no test split
SPLIT_SEED = 0


FRACTIONS = {"val": VAL_FRACTION, "test": TEST_FRACTION}
_WORDS = {"val": "validation", "test": "test"}


def splits_sentence(folders: dict[str, str], carved: tuple[str, ...], unit: str = "folder") -> str:
    """How the three splits were made, for the page and the CLI. ``folders``: split -> the user's folder (or
    array) name that became it; ``carved``: the splits cut from train."""
    pct = {s: f"{FRACTIONS[s]:.0%}" for s in carved}
    if not folders.get("train"):
        rest = f"{1 - sum(FRACTIONS[s] for s in carved):.0%}"
        return (f"No train/ and test/ folders: each class was split {rest} / {pct['val']} / {pct['test']} into "
                "training / validation / test images (fixed seed).")
    if not carved:
        return f"Your {folders['train']}, {folders['val']} and {folders['test']} {unit}s are used as they are."
    test = folders["test"]
    larger = " (the larger held-out set)" if not test.rstrip("/").lower().startswith("test") else ""
    return (f"Your {test} {unit} is the test set{larger}; validation is {pct['val']} of each class of "
            f"{folders['train']}, carved with a fixed seed.")


def carve_sizes(n: int, carved: tuple[str, ...]) -> tuple[int, ...]:
    """Images per carved split for a class of ``n``: round(f·n), at least 1 each (the rest is train)."""
    return tuple(max(1, int(FRACTIONS[s] * n + 0.5)) for s in carved)


def min_per_class(carved: tuple[str, ...]) -> int:
    """Fewest images a class needs: one per carved split and at least one left to train on."""
    n = len(carved) + 1
    while n - sum(carve_sizes(n, carved)) < 1:
        n += 1
    return n


def split_indices(y: np.ndarray, names: tuple[str, ...], carved: tuple[str, ...], source: str,
                  what: str = "readable image(s)", seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Sorted indices of ``y`` for [train, *carved]; each class gives each carved split its fraction.

    ``carved`` names the splits to cut from ``y``'s images: ("val", "test") or ("val",) or ("test",).

    Raises:
        DataError: a class too small to give every split an image (the minimum is named).
    """
    need = min_per_class(carved)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(carved) + 1)]
    for c, name in enumerate(names):
        idx = np.flatnonzero(y == c)
        if len(idx) < need:
            words = " and ".join(_WORDS[s] for s in carved)
            raise DataError(f"{source}: class {name!r} has only {len(idx)} {what}; each class needs at least "
                            f"{need} (at least one each for training and {words}). Add images to it or remove it.")
        idx = idx[rng.permutation(len(idx))]
        at = 0
        for p, k in enumerate(carve_sizes(len(idx), carved)):
            parts[p + 1].append(idx[at:at + k])
            at += k
        parts[0].append(idx[at:])
    return [np.sort(np.concatenate(p)) for p in parts]


def take_in_place(x: np.ndarray, keep: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``x[keep]`` for sorted ``keep``, written over ``x`` itself: no second copy of a large train split."""
    # keep[i] >= i, so copying forward never overwrites a row that a later step still reads.
    for a in range(0, len(keep), chunk):
        rows = keep[a:a + chunk]
        x[a:a + len(rows)] = x[rows]
    return x[:len(keep)]
