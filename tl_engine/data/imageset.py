"""The dataset contract shared by the bundled loader (:mod:`tl_engine.data.bundled`) and the user loaders.

Images travel through the engine as plain uint8 numpy arrays (N×H×W grey or N×H×W×3 colour, one H×W per
dataset). Every dataset has three splits: train (what races draw their training images from), validation
(what anything that is *chosen* is chosen on: learning rates, epochs, thresholds) and test (what the race
chart shows; never used to choose anything). No training draw ever uses a validation or test image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DatasetInfo:
    """What a student sees about a dataset before loading it."""

    name: str  # what --dataset takes: "fashion-mnist", or the path of user data
    title: str
    domain: str  # one short line: what the pictures show
    n_train: int  # images in the train split = the largest possible train_size
    n_val: int
    n_test: int
    classes: tuple[str, ...]
    licence: str
    source: str  # for an upload: the file name the person uploaded (what messages call it)
    splits: str = ""  # one sentence: how the train / validation / test splits were made ("" = the dataset's own)
    class_counts: tuple[tuple[int, ...], ...] = ()  # images per class in (train, val, test); () = not known


@dataclass
class ImageSet:
    """A loaded dataset: train, validation and test splits of uint8 images with int64 class indices."""

    info: DatasetInfo
    train_x: np.ndarray  # uint8, N×H×W (grey) or N×H×W×3 (colour), all the same H×W
    train_y: np.ndarray  # int64 class indices into info.classes
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    skipped: int = 0  # unreadable image files skipped while loading (user data)
    skipped_reasons: tuple[str, ...] = ()  # one short line per kind of skip, e.g. "2 files: not an image"
