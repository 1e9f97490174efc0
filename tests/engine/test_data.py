"""Datasets: bundled files with three disjoint splits, the class-balanced draw, and model input."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tl_engine.data.bundled import (
    ASSETS,
    Split,
    default_val_size,
    list_datasets,
    load_dataset,
    max_balanced,
    split_balanced,
    to_model_input,
)
from tl_engine.data.imageset import DatasetInfo, ImageSet
from tl_engine.data.sizes import display_name, draw_note, fitted_size, quotas
from tl_engine.errors import DataError

BUNDLED = {"fashion-mnist", "animal-mnist", "mnist", "textures"}
SIZES = {"fashion-mnist": (5000, 1000, 1000), "animal-mnist": (5000, 1000, 1000), "mnist": (3500, 500, 1000),
         "textures": (5001, 1002, 1002)}


# --- bundled ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_has_three_balanced_disjoint_splits(name):
    info = next(i for i in list_datasets() if i.name == name)
    ds = load_dataset(name)
    assert ds.info == info and (info.n_train, info.n_val, info.n_test) == SIZES[name]
    splits = {"train": (ds.train_x, ds.train_y), "val": (ds.val_x, ds.val_y), "test": (ds.test_x, ds.test_y)}
    hashes = {}
    for split, (x, y) in splits.items():
        assert (x.dtype, y.dtype, x.ndim, x.shape[1:]) == (np.uint8, np.int64, 3, ds.train_x.shape[1:])
        counts = np.bincount(y, minlength=len(info.classes))
        assert len(counts) == len(info.classes) and counts.max() - counts.min() <= 1 and len(x) == len(y)
        hashes[split] = {hashlib.sha256(im.tobytes()).digest() for im in x}
    assert len(hashes["train"] | hashes["val"] | hashes["test"]) == sum(len(h) for h in hashes.values())
    assert (len(hashes["train"]), len(hashes["val"]), len(hashes["test"])) == SIZES[name]  # no repeats either


def test_list_datasets_names_and_no_hand_written_similarity():
    infos = {i.name: i for i in list_datasets()}
    assert set(infos) == BUNDLED
    assert infos["textures"].classes == ("brick", "grass", "gravel")
    assert load_dataset("Fashion_MNIST").info.name == "fashion-mnist"
    text = (ASSETS / "index.json").read_text()
    assert "similarity" not in text and "similarity" not in DatasetInfo.__dataclass_fields__


def test_provenance_sha256_matches_files():
    text = (ASSETS / "PROVENANCE.md").read_text()
    table = dict(re.findall(r"^\| (\S+\.npz) \| `([0-9a-f]{64})`", text, flags=re.M))
    index = json.loads((ASSETS / "index.json").read_text())
    assert set(table) == {f"{n}.npz" for n in BUNDLED}
    for name, entry in index.items():
        digest = hashlib.sha256((ASSETS / f"{name}.npz").read_bytes()).hexdigest()
        assert table[f"{name}.npz"] == entry["sha256"] == digest


def _build_script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "build_assets.py"
    spec = importlib.util.spec_from_file_location("build_assets", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # trains or decodes for a second or more: the edit-run loop stays under 20 s
def test_textures_are_not_solvable_from_pixel_statistics():
    build = _build_script()
    ds = load_dataset("textures")
    # Every patch has the same grey-level histogram: nearest class mean on (mean, sd, p10, p90) is at chance
    # (the build measured 85.2 % before the histogram transform, 91.6 % with only mean/sd normalised).
    acc = build.pixel_stats_accuracy(ds.train_x, ds.train_y, ds.test_x, ds.test_y)
    assert acc < 0.36
    # The same rule does find the classes when the histograms differ, so the low score is not a broken rule.
    rng = np.random.default_rng(0)
    shifted = [np.clip(x.astype(int) + 40 * y[:, None, None], 0, 255).astype(np.uint8)
               for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y))]
    assert build.pixel_stats_accuracy(shifted[0], ds.train_y, shifted[1], ds.test_y) > 0.95
    x = rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)
    same = build.same_histogram(x)
    assert all(np.array_equal(np.sort(im, axis=None), np.sort(same[0], axis=None)) for im in same)
    # Rank order is kept (the texture survives): a brighter source pixel never becomes darker.
    for src, out in zip(x, same, strict=True):
        o = np.lexsort((out.ravel(), src.ravel()))  # by source level; equal levels may come out in any order
        assert np.all(np.diff(out.ravel()[o].astype(int)) >= 0)


# --- split_balanced ---------------------------------------------------------------------------------------


def synthetic(counts_train, counts_test, counts_val=None) -> ImageSet:
    """Every image unique: pixel [0, 0:2] holds its id (train < 1000 <= test < 2000 <= val)."""
    def make(counts, start):
        y = np.concatenate([np.full(n, c, np.int64) for c, n in enumerate(counts)])
        ids = np.arange(start, start + len(y))
        x = np.zeros((len(y), 4, 4), np.uint8)
        x[:, 0, 0], x[:, 0, 1] = ids // 256, ids % 256
        return x, y
    counts_val = counts_test if counts_val is None else counts_val
    classes = tuple(f"c{i}" for i in range(len(counts_train)))
    (x, y), (tx, ty), (vx, vy) = make(counts_train, 0), make(counts_test, 1000), make(counts_val, 2000)
    info = DatasetInfo("syn", "syn", "test", len(y), len(vy), len(ty), classes, "-", "-")
    return ImageSet(info, x, y, vx, vy, tx, ty)


def ids(x):
    return set((x[:, 0, 0].astype(int) * 256 + x[:, 0, 1]).tolist())


def test_split_is_balanced_with_remainders_on_first_classes():
    ds = synthetic([20, 20, 20, 20], [10, 10, 10, 10])
    s = split_balanced(ds, 10, 7, seed=3, val_size=6)
    assert isinstance(s, Split)
    assert np.bincount(s.train_y, minlength=4).tolist() == [3, 3, 2, 2]
    assert np.bincount(s.test_y, minlength=4).tolist() == [2, 2, 2, 1]
    assert np.bincount(s.val_y, minlength=4).tolist() == [2, 2, 1, 1]
    assert max(ids(s.train_x)) < 1000 and 1000 <= min(ids(s.test_x)) <= max(ids(s.test_x)) < 2000
    assert min(ids(s.val_x)) >= 2000 and (len(ids(s.train_x)), len(ids(s.val_x))) == (10, 6)
    # Labels travel with their images.
    for x, y, src_x, src_y in ((s.train_x, s.train_y, ds.train_x, ds.train_y), (s.val_x, s.val_y, ds.val_x, ds.val_y)):
        assert all(src_y[np.flatnonzero((src_x == im).all(axis=(1, 2)))[0]] == lab for im, lab in zip(x, y))


def test_split_deterministic_and_val_test_independent_of_train_size():
    ds = synthetic([50, 50, 50], [30, 30, 30], [20, 20, 20])
    a, b = split_balanced(ds, 30, 60, seed=1, val_size=30), split_balanced(ds, 30, 60, seed=1, val_size=30)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in Split.__dataclass_fields__)
    c = split_balanced(ds, 30, 60, seed=2, val_size=30)
    assert ids(c.train_x) != ids(a.train_x) and ids(c.test_x) != ids(a.test_x) and ids(c.val_x) != ids(a.val_x)
    big = split_balanced(ds, 150, 60, seed=1, val_size=30)
    for f in ("val_x", "val_y", "test_x", "test_y"):  # same images, same order
        assert np.array_equal(getattr(big, f), getattr(a, f))
    assert ids(a.train_x) < ids(big.train_x)  # a larger train draw contains the smaller one
    # The test draw does not move with val_size either, nor the validation draw with test_size.
    assert np.array_equal(split_balanced(ds, 30, 60, 1, val_size=12).test_x, a.test_x)
    assert np.array_equal(split_balanced(ds, 30, 9, 1, val_size=30).val_x, a.val_x)
    real = load_dataset("mnist")
    small, large = split_balanced(real, 10, 100, 0), split_balanced(real, 3500, 100, 0)
    assert np.array_equal(small.test_x, large.test_x) and np.array_equal(small.val_x, large.val_x)


def test_default_val_size():
    assert default_val_size(load_dataset("fashion-mnist")) == 500
    assert default_val_size(load_dataset("mnist")) == 500  # its whole pool
    assert default_val_size(synthetic([9, 9], [9, 9], [7, 4])) == 9  # 5 + 4: as much as a balanced draw allows
    assert len(split_balanced(synthetic([9, 9], [9, 9], [7, 4]), 4, 4, 0).val_y) == 9


def test_unequal_classes_draw_balanced_then_what_the_smaller_classes_have():
    ds = synthetic([5, 3, 4], [2, 2, 2])
    assert max_balanced(np.array([5, 3, 4])) == 11  # 4+3+4: counts differ by at most one
    assert np.bincount(split_balanced(ds, 11, 6, 0).train_y).tolist() == [4, 3, 4]
    # Above that the draw does not fail: the smallest class gives all it has, the others share the rest.
    assert np.bincount(split_balanced(ds, 12, 6, 0).train_y).tolist() == [5, 3, 4]
    assert quotas([5, 3, 4], 10).tolist() == [4, 3, 3]  # balanced sizes: remainders on the first classes
    assert quotas([1, 100, 7], 30).tolist() == [1, 22, 7] and quotas([70, 83], 141).tolist() == [70, 71]
    big = split_balanced(synthetic([1, 100, 7], [1, 1, 1]), 30, 3, 0)
    assert np.bincount(big.train_y).tolist() == [1, 22, 7]
    with pytest.raises(DataError, match="smaller than the number of classes"):
        split_balanced(ds, 2, 6, 0)
    with pytest.raises(DataError, match="train_size 13 is more than .* has: 12 images .*at most 11"):
        split_balanced(ds, 13, 6, 0)
    with pytest.raises(DataError, match="test_size 7 is more than .* 6 images"):
        split_balanced(ds, 9, 7, 0)
    with pytest.raises(DataError, match="val_size 7 is more than"):
        split_balanced(ds, 9, 6, 0, val_size=7)
    with pytest.raises(DataError, match="val_size 2 is smaller than the number of classes"):
        split_balanced(ds, 9, 6, 0, val_size=2)
    with pytest.raises(DataError, match="train_size 3501 is more than 'mnist' has: 3,500"):
        split_balanced(load_dataset("mnist"), 3501, 100, 0)


def test_fitted_sizes_and_the_unbalanced_draw_note():
    info = DatasetInfo("upload:0123456789abcdef", "t", "d", 16, 6, 6, ("cats", "dogs"), "yours", "pets.zip",
                       class_counts=((14, 2), (3, 3), (4, 2)))
    assert display_name(info) == "pets.zip"  # never the upload's hash name
    assert (fitted_size(info, "train", 500), fitted_size(info, "val", 500), fitted_size(info, "test", 1000)) \
        == (5, 6, 5)  # the largest balanced draws: 3 + 2 train, 3 + 3 validation, 3 + 2 test
    assert draw_note(info, "train", 5) is None
    note = draw_note(info, "train", 10)
    assert "more than a class-balanced draw allows (5)" in note and "dogs (2) gives all it has" in note
    assert "the other classes 8 each" in note
    assert "all of them, with unequal classes (cats 14, dogs 2)" in draw_note(info, "train", 16)
    many = DatasetInfo("m", "m", "d", 1000, 1000, 1000, tuple(f"c{i}" for i in range(1000)), "", "")
    assert [fitted_size(many, s, 500) for s in ("train", "val", "test")] == [1000, 1000, 1000]  # one per class


# --- to_model_input ---------------------------------------------------------------------------------------


MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_to_model_input_grey_shape_layout_and_normalisation():
    x = np.stack([np.full((28, 28), v, np.uint8) for v in (0, 100, 255)])
    t = to_model_input(x, 40, MEAN, STD)
    assert t.shape == (3, 3, 40, 40) and t.dtype == torch.float32
    assert t.is_contiguous(memory_format=torch.channels_last)
    for i, v in enumerate((0, 100, 255)):  # a flat image stays flat after resizing
        expected = torch.tensor([(v / 255 - m) / s for m, s in zip(MEAN, STD)]).view(3, 1, 1).expand(3, 40, 40)
        assert torch.allclose(t[i], expected, atol=1e-5)


def test_to_model_input_colour_resize_and_chunks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 64, 48, 3), dtype=np.uint8)
    t = to_model_input(x, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert t.shape == (5, 3, 32, 32)
    assert torch.equal(t, to_model_input(x, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), chunk=2))
    # Channels keep their order: make the red channel of image 0 bright, the others dark.
    x[0, ..., 0], x[0, ..., 1:] = 250, 5
    r = to_model_input(x[:1], 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))[0]
    assert r[0].min() > 0.9 and r[1:].max() < -0.9
    same = to_model_input(x[:1, :32, :32], 32, (0, 0, 0), (1, 1, 1))  # no resize: exact pixels
    assert torch.allclose(same[0].permute(1, 2, 0), torch.from_numpy(x[0, :32, :32] / 255).float(), atol=1e-6)
