"""The camera builder on the race page (AppTest): a black shot is not kept, "Race on these" moves the URL too."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_pages_helpers import TINY, fresh_schedulers
from test_race_page import APP

from tl_ui import keys
from tl_ui.builder import BLACK_MEAN, Builder, _normalise, is_black


def _jpeg(value: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    a = np.clip(value + rng.integers(-3, 4, (64, 64, 3)), 0, 255).astype(np.uint8) if value else \
        np.zeros((64, 64, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG")
    return out.getvalue()


def test_a_black_shot_is_not_kept_a_dark_one_is():
    assert is_black(np.zeros((8, 8, 3), np.uint8))
    assert is_black(np.full((8, 8), BLACK_MEAN - 1, np.uint8))
    assert not is_black(np.full((8, 8), BLACK_MEAN + 20, np.uint8))  # a dim room is still a picture
    assert _normalise(_jpeg(0), skip_black=True) is None
    assert _normalise(_jpeg(0)) is not None  # a dropped file is the user's choice: black files are kept
    assert _normalise(_jpeg(40), skip_black=True) is not None


@pytest.fixture
def made(monkeypatch):
    yield from fresh_schedulers(monkeypatch)


def test_race_on_these_writes_the_new_dataset_into_the_url(made):
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in TINY.items():
        at.query_params[k] = v
    b = Builder()
    b.classes = {"mug": [_jpeg(90 + i, i) for i in range(4)], "pen": [_jpeg(200 - i, i) for i in range(4)]}
    at.session_state[keys.BUILDER] = b
    at.session_state[keys.BUILDER_OPEN] = True
    at.run()
    assert not at.exception
    assert at.query_params["dataset"] == "fashion-mnist"
    next(x for x in at.button if x.label == "▷ Race on these").click()
    at.run()
    assert not at.exception
    name = at.session_state[keys.WIDGET_PREFIX + "dataset"]
    assert name != "fashion-mnist"
    assert at.query_params["dataset"] == name
    assert at.query_params["train"] == str(at.session_state[keys.WIDGET_PREFIX + "train_size"])
