"""A teacher's real uploads race from the page with the sizes it offers (issue 16): the `train/` + `val/` photo
layout with unequal classes, a 20/4 imbalanced set, a 6/4 camera set and many classes. The page says how the
splits were made and the test set's noise, offers only sizes that can run, and names the file, not its hash."""

from __future__ import annotations

import pytest
from photo_sets import ANTS_BEES, CAMERA, IMBALANCED, many_classes, photo_zip
from streamlit.testing.v1 import AppTest
from test_pages_helpers import click, fresh_schedulers, run_until_finished
from test_race_page import APP, TRAIN

from tl_engine.data.uploads import load_meta
from tl_ui import settings as S


@pytest.fixture
def made(monkeypatch):
    yield from fresh_schedulers(monkeypatch)


def upload(name: str, data: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["epochs"], at.query_params["res"] = "1", "32"
    at.run()
    at.file_uploader(key="w_upload").set_value((name, data, "application/zip")).run()
    assert not at.exception and not at.error
    return at


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.sidebar.caption)


SHAPES = {
    "ants_bees": (ANTS_BEES, 24, "Your val/ folder is the test set (the larger held-out set)", 177, 141),
    "cats_dogs": (IMBALANCED, 24, "each class was split 70% / 15% / 15%", 5, 3),
    "camera": (CAMERA, 24, "each class was split 70% / 15% / 15%", 5, 2),
    "many": (many_classes(120, 3), 8, "each class was split 70% / 15% / 15%", 120, 120),
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_upload_shape_races_from_the_page_with_its_splits_and_noise_shown(made, shape):
    layout, px, splits, train, test = SHAPES[shape]
    at = upload(f"{shape}.zip", photo_zip(layout, size=px))
    name = at.selectbox(key="w_dataset").value
    info = load_meta(name).info
    text = captions(at).replace("\\", "")  # captions are markdown: md() escapes the brackets
    assert "How the splits were made: " in text and splits in text
    assert f"Test set: {test:,} images. A gap between two strategies counts only above ±" in text
    assert "upload:" not in text
    # The sizes start at the largest class-balanced draw; every size offered can run.
    offered = S.train_options(info)
    if len(offered) == 1:  # one possible size: a caption, not a slider of one value
        assert not [s for s in at.select_slider if s.key == "w_train_size"]
        assert f"Training images (target data): {train:,} (the only size this dataset allows)" in text
    else:
        assert at.select_slider(key="w_train_size").value == train
        assert max(offered) == info.n_train
    if len(S.test_options(info)) == 1:
        assert f"Test images: {test:,} (the only size" in text
    else:
        assert at.select_slider(key="w_test_size").value == test

    click(at, TRAIN)
    snap = run_until_finished(at, made)
    assert snap.status == "done", snap.error
    assert (snap.cfg.train_size, snap.cfg.test_size) == (train, test)
    assert not at.exception and not at.error


@pytest.mark.slow
def test_more_than_the_balanced_draw_races_and_says_which_class_gave_all_it_has(made):
    at = upload("cats_dogs.zip", photo_zip(IMBALANCED))
    info = load_meta(at.selectbox(key="w_dataset").value).info
    at.select_slider(key="w_train_size").set_value(info.n_train).run()  # all 16: 14 cats, 2 dogs
    assert "16 training images is more than a class-balanced draw allows (5): all of them, with unequal " \
           "classes (cats 14, dogs 2)" in captions(at)
    click(at, TRAIN)
    snap = run_until_finished(at, made)
    assert snap.status == "done", snap.error
    assert snap.cfg.train_size == 16


def test_fitted_sizes_of_an_unequal_upload_and_a_bundled_set_are_unchanged():
    from tl_engine.data import list_datasets
    from tl_engine.data.imageset import DatasetInfo

    info = DatasetInfo("upload:0123456789abcdef", "t", "d", 16, 4, 4, ("cats", "dogs"), "yours", "pets.zip",
                       class_counts=((14, 2), (3, 1), (3, 1)))
    assert S.train_options(info) == [5, 16] and S.test_options(info) == [3]
    assert (S.fitted(info, "train_size"), S.fitted(info, "val_size"), S.fitted(info, "test_size")) == (5, 3, 3)
    assert S.default_settings([info])["train_size"] == 5
    hostile = DatasetInfo("x", "x", "d", 16, 4, 4, ("[a](http://x.io)", "dogs"), "", "",
                          class_counts=((14, 2), (3, 1), (3, 1)))
    from tl_engine.data import draw_note
    from tl_ui.safe_text import md

    note = draw_note(hostile, "train", 16, show=md)
    assert "](" not in note and "\\[a\\]" in note  # the page's note shows the name, never a link
    fashion = next(i for i in list_datasets() if i.name == "fashion-mnist")
    assert S.train_options(fashion) == list(S.TRAIN_STEPS) and S.test_options(fashion) == [200, 500, 1000]
    assert (S.fitted(fashion, "train_size"), S.fitted(fashion, "test_size")) == (500, 1000)


def test_switching_datasets_starts_each_at_its_fitted_sizes_and_keeps_a_smaller_choice(made):
    at = upload("cats_dogs.zip", photo_zip(IMBALANCED))
    up = at.selectbox(key="w_dataset").value
    assert at.select_slider(key="w_train_size").value == 5  # the largest balanced draw, not 500 snapped to 16
    at.selectbox(key="w_dataset").set_value("fashion-mnist").run()
    assert at.select_slider(key="w_train_size").value == 500  # back at the default, not 5 snapped to 20
    at.select_slider(key="w_train_size").set_value(20).run()
    at.selectbox(key="w_dataset").set_value("mnist").run()
    assert at.select_slider(key="w_train_size").value == 20  # a size the person chose is kept where it fits
    at.selectbox(key="w_dataset").set_value(up).run()
    assert at.select_slider(key="w_train_size").value == 5 and not at.exception
