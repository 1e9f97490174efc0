"""Words a class reads without stumbling: plurals, ImageNet's name, captions that keep what matters, and "Try
your photo" saying what a trained network can answer (and what ImageNet's own network sees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tl_ui import inside_charts as ic
from tl_ui.previews import _fit, image_row, mistake_caption, only_classes_note
from tl_ui.style import label, plural

ROOT = Path(__file__).resolve().parents[2]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize(("n", "word", "many", "want"), [
    (1, "epoch", None, "1 epoch"), (2, "epoch", None, "2 epochs"), (0, "image", None, "0 images"),
    (1.4, "image", None, "1 image"), (1000, "image", None, "1,000 images"), (1, "class", "classes", "1 class"),
    (3, "class", "classes", "3 classes"), (1, "strategy", "strategies", "1 strategy"),
    (3, "strategy", "strategies", "3 strategies"),
])
def test_plural(n, word, many, want):
    assert plural(n, word, many) == want


def test_imagenet_is_spelled_as_its_authors_do():
    assert label("imagenet") == "ImageNet" and label("finetune") == "Fine-tune" and label("other") == "other"
    filters = {n: np.random.default_rng(0).random((32, 3, 3, 3)) for n in ("imagenet", "scratch", "frozen", "finetune")}
    assert ic.filters_caption(filters, "imagenet").startswith("Compared with ImageNet's first-layer filters")
    fig = ic.filters_figure(filters)
    assert [a.text for a in fig.layout.annotations] == ["ImageNet", "Scratch", "Frozen", "Fine-tune"]
    # Two panels a row (four in a row drew the 3×3 filters a few pixels wide at 1280 px).
    assert fig.data[1].xaxis == "x2" and fig.data[2].xaxis == "x3" and fig.layout.xaxis3.domain[0] == 0


def test_delta_caption_counts_agree():
    one = ic.delta_theta_caption({"finetune": {"stem": 0.0, "s2": 0.3, "head": 1.0}})
    assert "in the first stage;" in one and "the head moved by Δθ = 1.00" in one
    assert "the first 1 stages" not in one and "moved 1." not in one


def test_top_mistake_captions_keep_the_true_class():
    caption = mistake_caption("T-shirt/top", "Ankle boot", 0.914)
    assert caption == "Ankle boot 91%\n(is T-shirt/top)"
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    for t in FASHION:  # each line fits the narrowest thumbnail (168 px) whole, for every pair of classes
        for p in FASHION:
            for line in mistake_caption(t, p, 1.0).split("\n"):
                assert _fit(draw, line, 18, 168) == line, line
    one = image_row(np.zeros((2, 28, 28), np.uint8), ["a", "b"])
    two = image_row(np.zeros((2, 28, 28), np.uint8), [caption, caption])
    assert two.height == one.height + 22  # room for the second line


def test_try_your_photo_says_what_the_networks_can_answer():
    note = only_classes_note(FASHION)
    assert "can only answer one of its 10 classes (T-shirt/top, Trouser," in note and "Ankle boot)" in note
    assert "1,000 classes" in note
    many = only_classes_note([f"c{i}" for i in range(40)])
    assert "c11 and 28 more" in many and "c12" not in many


@pytest.mark.slow
def test_imagenet_names_the_cat_that_a_fashion_network_calls_a_bag():
    from tl_ui.inside_panel import _imagenet_top3

    with Image.open(ROOT / "assets" / "images" / "chelsea.jpg") as im:
        top = _imagenet_top3(im.copy(), "mobilenet_v2")
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] > 0
    assert "cat" in top[0][0].lower(), top  # measured: MobileNetV2's top label for this photo is a cat class
