"""Bundled datasets, the class-balanced train / validation / test draw, and the conversion to model input.

Images travel through the engine as plain uint8 numpy arrays (N×H×W grey or N×H×W×3 colour, one H×W per
dataset); only :func:`to_model_input` turns them into a torch tensor, at the resolution a race asks for.
The dataset contract (:class:`~tl_engine.data.imageset.ImageSet`) lives in :mod:`tl_engine.data.imageset`; user data
(a folder, a .zip or a MedMNIST-style .npz) is read by :mod:`tl_engine.data.user`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError
from .imageset import DatasetInfo, ImageSet
from .sizes import display_name, max_balanced, quotas
from .uploads import PREFIX as UPLOAD_PREFIX

__all__ = ["ASSETS", "Split", "list_datasets", "load_dataset", "split_balanced", "default_val_size", "max_balanced",
           "to_model_input"]

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "datasets"
VAL_SIZE = 500  # default validation draw: enough to choose between settings, small enough to score every epoch


# --- bundled datasets -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _index() -> dict[str, dict]:
    # Written by scripts/build_assets.py next to the .npz files; reading it never touches the arrays.
    return json.loads((ASSETS / "index.json").read_text())


def _info(entry: dict) -> DatasetInfo:
    return DatasetInfo(entry["name"], entry["title"], entry["domain"], entry["n_train"], entry["n_val"],
                       entry["n_test"], tuple(entry["classes"]), entry["licence"], entry["source"])


def list_datasets() -> list[DatasetInfo]:
    """The bundled datasets, without loading any images."""
    return [_info(e) for e in _index().values()]


def _read_bundled(entry: dict) -> ImageSet:
    # Our own files, built by scripts/build_assets.py and sha256-checked by the tests: no user-data checks.
    with np.load(ASSETS / entry["file"], allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    return ImageSet(_info(entry), a["train_images"], a["train_labels"], a["val_images"], a["val_labels"],
                    a["test_images"], a["test_labels"])


def load_dataset(name_or_path: str | Path) -> ImageSet:
    """Load a bundled dataset by name, an upload by its ``upload:<sha16>`` name, or the user's data from a
    folder, a .zip or a .npz path.

    Raises:
        DataError: unknown name, missing path, or data that cannot be used (the message says what to do).
    """
    key = str(name_or_path).strip()
    if key.startswith(UPLOAD_PREFIX):  # an upload kept (decoded) by this server: see tl_engine.data.uploads
        from .uploads import load

        return load(key)
    bundled = _index()
    if key.lower().replace("_", "-") in bundled:
        return _read_bundled(bundled[key.lower().replace("_", "-")])
    path = Path(key).expanduser()
    if path.exists():
        from .user import load_path  # imported here: it needs PIL, which bundled data does not

        return load_path(path)
    known = ", ".join(bundled)
    if path.suffix.lower() in (".zip", ".npz") or "/" in key or "\\" in key:
        raise DataError(f"{key!r} does not exist. Check the path, or use a bundled dataset: {known}.")
    raise DataError(f"Unknown dataset {key!r}. Bundled datasets: {known}; "
                    "or give the path of a folder, .zip or .npz with your own images.")


# --- the class-balanced draw ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One race's images: copies drawn class-balanced from the dataset's three splits, in a shuffled order."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray  # choose things here (learning rates, epochs), never on test
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def default_val_size(ds: ImageSet) -> int:
    """The validation draw a race uses unless told otherwise: VAL_SIZE, fitted to the largest balanced draw (and
    at least one image per class)."""
    counts = np.bincount(ds.val_y, minlength=len(ds.info.classes))
    return max(min(max(VAL_SIZE, len(counts)), max_balanced(counts)), 1)


def _draw(y: np.ndarray, n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    # Each class is permuted in full and then cut, so a smaller draw is a subset of a larger one (same seed).
    q = quotas(np.bincount(y, minlength=n_classes), n)
    parts = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in enumerate(q)]
    idx = np.concatenate(parts)
    return idx[rng.permutation(len(idx))]  # mixed order: no batch holds a single class


def _check_size(what: str, n: int, y: np.ndarray, n_classes: int, name: str) -> None:
    if n < n_classes:
        raise DataError(f"{what} {n} is smaller than the number of classes ({n_classes}) of {name!r}: "
                        f"use at least {n_classes}, one image per class.")
    if n > len(y):
        most = max_balanced(np.bincount(y, minlength=n_classes))
        raise DataError(f"{what} {n} is more than {name!r} has: {len(y):,} images (a class-balanced draw takes "
                        f"at most {most:,}).")


def split_balanced(ds: ImageSet, train_size: int, test_size: int, seed: int, val_size: int | None = None) -> Split:
    """Draw ``train_size``, ``val_size`` and ``test_size`` images from the train, validation and test splits.

    Each class gets ``size // n_classes`` images and the first ``size % n_classes`` classes one more; a class with
    fewer gives all it has and the others make up the rest (:func:`tl_engine.data.sizes.quotas`). The draw
    is deterministic for a seed. The validation and test draws depend only on (dataset, their size, seed), so
    every run of a sweep over train_size is chosen on the same validation images and scored on the same test
    images. The three splits of a dataset share no image, so neither do the three draws.

    Args:
        val_size: ``None`` means :func:`default_val_size`.

    Raises:
        DataError: a size below the number of classes or above what the split holds (the maximum is named).
    """
    n_classes, name = len(ds.info.classes), display_name(ds.info)
    val_size = default_val_size(ds) if val_size is None else val_size
    _check_size("train_size", train_size, ds.train_y, n_classes, name)
    _check_size("val_size", val_size, ds.val_y, n_classes, name)
    _check_size("test_size", test_size, ds.test_y, n_classes, name)
    # Independent streams: the validation and test draws must not shift when train_size changes.
    tr = _draw(ds.train_y, train_size, n_classes, np.random.default_rng([seed, 0]))
    te = _draw(ds.test_y, test_size, n_classes, np.random.default_rng([seed, 1]))
    va = _draw(ds.val_y, val_size, n_classes, np.random.default_rng([seed, 2]))
    return Split(ds.train_x[tr], ds.train_y[tr], ds.val_x[va], ds.val_y[va], ds.test_x[te], ds.test_y[te])


# --- to the network ---------------------------------------------------------------------------------------


def to_model_input(x: np.ndarray, resolution: int, mean: tuple, std: tuple, chunk: int = 256):
    """uint8 N×H×W[×3] images -> float32 N×3×R×R tensor, channels_last, normalised with ``mean``/``std``.

    The batch is resized in chunks with bilinear, antialiased interpolation (the output is the only full-size
    buffer), and grey images are resized as one channel before being repeated to the three the networks expect.
    """
    import torch
    import torch.nn.functional as F

    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"images must be N×H×W or N×H×W×3, got shape {x.shape}")
    n, r = len(x), int(resolution)
    # (v / 255 - mean) / std == v * scale + shift, per channel.
    scale = torch.tensor([1 / (255 * s) for s in std], dtype=torch.float32).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32).view(1, -1, 1, 1)
    out = torch.empty((n, 3, r, r), dtype=torch.float32).contiguous(memory_format=torch.channels_last)
    # Antialiasing only changes anything when shrinking; for enlarging it equals plain bilinear, only slower.
    antialias = r < max(x.shape[1:3])
    for i in range(0, n, chunk):
        t = torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])).permute(0, 3, 1, 2).float()
        if t.shape[-2:] != (r, r):
            t = F.interpolate(t, size=(r, r), mode="bilinear", antialias=antialias, align_corners=False)
        # One fused op writing straight into the channels_last output (grey expands to 3 channels for free);
        # the obvious `out[i:j] = t * scale + shift` is several times slower on CPU.
        torch.addcmul(shift, t.expand(-1, 3, -1, -1), scale, out=out[i:i + chunk])
    return out
