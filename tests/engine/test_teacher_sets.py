"""A teacher's real uploads race with no size given: the `train/` + `val/` photo layout with unequal classes, a
20/4 imbalanced set, a 6/4 camera set and many classes (issue 16). The data is generated (tests/photo_sets.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from photo_sets import ANTS_BEES, CAMERA, IMBALANCED, many_classes, photo_zip

from tl_engine.config import RunConfig
from tl_engine.data import load_dataset, save_upload, split_balanced
from tl_engine.data.user import load_upload
from tl_engine.errors import DataError
from tl_engine.experiments import gap_noise, noise_sentence
from tl_engine.training import fit_to_dataset

ROOT = Path(__file__).resolve().parents[2]


def counts(y: np.ndarray, k: int = 2) -> list[int]:
    return np.bincount(y, minlength=k).tolist()


def fitted(info) -> RunConfig:
    cfg, _ = fit_to_dataset(RunConfig(dataset=info.name), info)
    return cfg


def test_train_and_val_folders_make_val_the_test_set_and_carve_validation_from_train():
    ds = load_upload("ants_bees.zip", photo_zip(ANTS_BEES))
    assert ds.info.classes == ("ants", "bees")
    assert counts(ds.test_y) == [70, 83]  # the whole held-out folder is the test set: the larger held-out set
    assert counts(ds.val_y) == [16, 15]  # 15 % of each class of train/
    assert counts(ds.train_y) == [89, 88]
    assert "val/ folder is the test set (the larger held-out set)" in ds.info.splits
    assert "15% of each class of train/" in ds.info.splits
    assert ds.info.class_counts == ((89, 88), (16, 15), (70, 83))
    cfg = fitted(ds.info)
    # Fitted to the largest class-balanced draws (counts differ by at most one), not to the image counts.
    assert (cfg.train_size, cfg.val_size, cfg.test_size) == (177, 31, 141)
    sp = split_balanced(ds, cfg.train_size, cfg.test_size, 0, val_size=cfg.val_size)
    assert counts(sp.train_y) == [89, 88] and counts(sp.val_y) == [16, 15] and counts(sp.test_y) == [70, 71]


def test_all_three_folders_are_kept_as_given():
    ds = load_upload("three.zip", photo_zip({f"{s}/{c}": n for s, n in (("train", 6), ("val", 2), ("test", 3))
                                             for c in ("a", "b")}))
    assert (counts(ds.train_y), counts(ds.val_y), counts(ds.test_y)) == ([6, 6], [2, 2], [3, 3])
    assert "are used as they are" in ds.info.splits


@pytest.mark.parametrize("layout, sizes", [
    (IMBALANCED, (5, 3, 3)),  # cats 14/3/3, dogs 2/1/1 after the 70/15/15 carve
    (CAMERA, (5, 2, 2)),  # mug 4/1/1, pen 2/1/1
])
def test_unequal_small_sets_fit_defaults_to_the_balanced_draw_and_never_fail(layout, sizes):
    ds = load_upload("mine.zip", photo_zip(layout))
    assert "each class was split 70% / 15% / 15%" in ds.info.splits
    cfg = fitted(ds.info)
    assert (cfg.train_size, cfg.val_size, cfg.test_size) == sizes
    for n in range(2, ds.info.n_train + 1):  # every size the page offers can run; above the balanced draw...
        sp = split_balanced(ds, n, cfg.test_size, 0, val_size=cfg.val_size)
        assert len(sp.train_y) == n and counts(sp.train_y)[1] == min(n // 2, counts(ds.train_y)[1])
    _, notes = fit_to_dataset(RunConfig(dataset="x", train_size=ds.info.n_train), ds.info)
    assert any("more than a class-balanced draw allows (5)" in n for n in notes)  # ...says the classes differ


@pytest.mark.slow  # trains or decodes for a second or more: the edit-run loop stays under 20 s
def test_many_classes_get_one_validation_and_test_image_each():
    ds = load_upload("many.zip", photo_zip(many_classes(1000, 3), size=8))
    assert len(ds.info.classes) == 1000 and ds.info.n_train == ds.info.n_val == ds.info.n_test == 1000
    cfg, notes = fit_to_dataset(RunConfig(dataset="many"), ds.info)
    assert (cfg.train_size, cfg.val_size, cfg.test_size) == (1000, 1000, 1000)
    assert any("at least one per class (1,000)" in n for n in notes)
    sp = split_balanced(ds, cfg.train_size, cfg.test_size, 0, val_size=cfg.val_size)
    assert counts(sp.val_y, 1000) == [1] * 1000


@pytest.mark.slow  # half a second or more: the edit-run loop stays under 20 s
def test_messages_name_the_uploaded_file_not_its_hash():
    up = save_upload("Ants and bees.zip", photo_zip(ANTS_BEES))
    assert up.info.splits and up.info.class_counts == ((89, 88), (16, 15), (70, 83))  # kept with the upload
    ds = load_dataset(up.name)
    with pytest.raises(DataError) as e:
        split_balanced(ds, 500, 100, 0, val_size=20)
    assert "'Ants and bees.zip'" in str(e.value) and "upload:" not in str(e.value)
    _, notes = fit_to_dataset(RunConfig(dataset=up.name), up.info)
    assert notes and all(n.startswith("Ants and bees.zip: ") for n in notes)


def test_noise_sentence_follows_the_noise_rule():
    assert round(gap_noise(1000), 4) == round(2 * (2 * 0.25 / 1000) ** 0.5, 4)  # 2 SE of a difference at 50 %
    assert gap_noise(141) > gap_noise(1000) > gap_noise(1000, 0.9)
    assert "Test set: 141 images" in noise_sentence(141) and "±11.9 points at 50 %" in noise_sentence(141)


# --- the CLI, with no size flags --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name, layout", [("ants_bees", ANTS_BEES), ("cats_dogs", IMBALANCED),
                                          ("camera", CAMERA), ("many", many_classes(120, 4))])
def test_cli_races_each_upload_shape_with_no_size_flags(tmp_path, name, layout):
    path = tmp_path / f"{name}.zip"
    path.write_bytes(photo_zip(layout, size=8 if name == "many" else 24))
    r = subprocess.run([sys.executable, "-m", "tl_engine", "race", "--dataset", str(path), "--epochs", "1",
                        "--resolution", "32", "--batch-size", "64"], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "wall time" in r.stdout
    assert "splits: " in r.stdout and "noise: Test set: " in r.stdout
    if name == "ants_bees":
        assert "val/ folder is the test set" in r.stdout
        assert "race: ants_bees, 177 train / 31 validation / 141 test images" in r.stdout


@pytest.mark.slow
def test_cli_sweep_on_an_unequal_upload_fits_its_sizes(tmp_path):
    path = tmp_path / "cats_dogs.zip"
    path.write_bytes(photo_zip(IMBALANCED))
    r = subprocess.run([sys.executable, "-m", "tl_engine", "sweep", "freeze", "--dataset", str(path), "--ks", "7",
                        "--epochs", "1", "--resolution", "32", "--no-store"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "note: cats_dogs: the default of 500 training images does not fit" in r.stdout
    assert "Traceback" not in r.stderr
