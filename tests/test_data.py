"""Datasets: bundled files, the class-balanced split, model input, and the user's folders, zips and npz files."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import torch

from tl_engine.data import (
    ASSETS,
    DataError,
    DatasetInfo,
    ImageSet,
    list_datasets,
    load_dataset,
    max_balanced,
    split_balanced,
    to_model_input,
)

BUNDLED = {"fashion-mnist", "animal-mnist", "mnist", "textures"}


# --- bundled ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_loads_balanced_and_disjoint(name):
    info = next(i for i in list_datasets() if i.name == name)
    ds = load_dataset(name)
    assert ds.info == info and info.similarity in ("high", "medium", "low")
    assert (ds.train_x.dtype, ds.train_y.dtype, ds.test_x.dtype) == (np.uint8, np.int64, np.uint8)
    assert ds.train_x.ndim == 3 and ds.train_x.shape[1:] == ds.test_x.shape[1:]
    assert (len(ds.train_x), len(ds.test_x)) == (info.n_train, info.n_test) == (len(ds.train_y), len(ds.test_y))
    for y, n in ((ds.train_y, info.n_train), (ds.test_y, info.n_test)):
        counts = np.bincount(y, minlength=len(info.classes))
        assert len(counts) == len(info.classes) and counts.max() - counts.min() <= 1 and counts.sum() == n
    assert info.n_train >= (4000 if name == "mnist" else 5000) and info.n_test >= 1000
    # No picture is in both splits.
    assert not {x.tobytes() for x in ds.train_x} & {x.tobytes() for x in ds.test_x}


def test_list_datasets_names_and_mnist_maximum():
    infos = {i.name: i for i in list_datasets()}
    assert set(infos) == BUNDLED
    assert infos["mnist"].n_train == 4000  # only 5,000 images ship: the maximum train size is visible
    assert infos["textures"].classes == ("brick", "grass", "gravel")
    assert load_dataset("Fashion_MNIST").info.name == "fashion-mnist"


def test_provenance_sha256_matches_files():
    text = (ASSETS / "PROVENANCE.md").read_text()
    table = dict(re.findall(r"^\| (\S+\.npz) \| `([0-9a-f]{64})`", text, flags=re.M))
    index = json.loads((ASSETS / "index.json").read_text())
    assert set(table) == {f"{n}.npz" for n in BUNDLED}
    for name, entry in index.items():
        digest = hashlib.sha256((ASSETS / f"{name}.npz").read_bytes()).hexdigest()
        assert table[f"{name}.npz"] == entry["sha256"] == digest


# --- split_balanced ---------------------------------------------------------------------------------------


def synthetic(counts_train, counts_test) -> ImageSet:
    """Every image unique: pixel [0, 0:2] holds its id (train ids < 1000 <= test ids)."""
    def make(counts, start):
        y = np.concatenate([np.full(n, c, np.int64) for c, n in enumerate(counts)])
        ids = np.arange(start, start + len(y))
        x = np.zeros((len(y), 4, 4), np.uint8)
        x[:, 0, 0], x[:, 0, 1] = ids // 256, ids % 256
        return x, y
    classes = tuple(f"c{i}" for i in range(len(counts_train)))
    (x, y), (tx, ty) = make(counts_train, 0), make(counts_test, 1000)
    info = DatasetInfo("syn", "syn", "test", "low", len(y), len(ty), classes, "-", "-")
    return ImageSet(info, x, y, tx, ty)


def ids(x):
    return set((x[:, 0, 0].astype(int) * 256 + x[:, 0, 1]).tolist())


def test_split_is_balanced_with_remainders_on_first_classes():
    ds = synthetic([20, 20, 20, 20], [10, 10, 10, 10])
    xtr, ytr, xte, yte = split_balanced(ds, 10, 7, seed=3)
    assert np.bincount(ytr, minlength=4).tolist() == [3, 3, 2, 2]
    assert np.bincount(yte, minlength=4).tolist() == [2, 2, 2, 1]
    assert len(ids(xtr)) == 10 and not ids(xtr) & ids(xte)
    # Labels travel with their images.
    assert all(ds.train_y[np.flatnonzero((ds.train_x == im).all(axis=(1, 2)))[0]] == lab for im, lab in zip(xtr, ytr))


def test_split_deterministic_and_test_set_independent_of_train_size():
    ds = synthetic([50, 50, 50], [30, 30, 30])
    a, b = split_balanced(ds, 30, 60, seed=1), split_balanced(ds, 30, 60, seed=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    c = split_balanced(ds, 30, 60, seed=2)
    assert ids(c[0]) != ids(a[0]) and ids(c[2]) != ids(a[2])
    big = split_balanced(ds, 150, 60, seed=1)
    assert np.array_equal(big[2], a[2]) and np.array_equal(big[3], a[3])  # same test images, same order
    assert ids(a[0]) < ids(big[0])  # a larger train draw contains the smaller one
    real = load_dataset("mnist")
    assert np.array_equal(split_balanced(real, 10, 100, 0)[2], split_balanced(real, 4000, 100, 0)[2])


def test_split_size_errors_name_the_limit():
    ds = synthetic([5, 3, 4], [2, 2, 2])
    assert max_balanced(np.array([5, 3, 4])) == 10  # 4+3+3 fits, 4+4+3 does not
    assert len(split_balanced(ds, 10, 6, 0)[0]) == 10
    with pytest.raises(DataError, match="maximum is 10"):
        split_balanced(ds, 11, 6, 0)
    with pytest.raises(DataError, match="smaller than the number of classes"):
        split_balanced(ds, 2, 6, 0)
    with pytest.raises(DataError, match="test_size 7 .*maximum is 6"):
        split_balanced(ds, 9, 7, 0)
    with pytest.raises(DataError, match="train_size 4001 .*maximum is 4000"):
        split_balanced(load_dataset("mnist"), 4001, 100, 0)


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
