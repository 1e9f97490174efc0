""""Try your photo": a photo is decoded once per content, through the engine's bounded decoder."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import streamlit as st
from PIL import Image

from benchmarks import hostile_images as hi
from tl_engine.data import images
from tl_ui import inside_panel


def test_a_photo_is_decoded_once_per_content_and_small_photos_keep_their_pixels(monkeypatch):
    st.cache_data.clear()
    calls = []
    real = images.open_square
    monkeypatch.setattr(images, "open_square", lambda *a, **k: calls.append(1) or real(*a, **k))
    yy, xx = np.mgrid[0:90, 0:120]
    rgb = np.stack([xx * 2, yy * 2, (xx + yy) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    data = buf.getvalue()
    for _ in range(3):  # reruns of the page
        image, why = inside_panel._photo(hashlib.sha256(data).hexdigest(), data)
    assert len(calls) == 1 and why == ""
    # Smaller than PHOTO_SIDE: the exact centre square, as the exported model's own crop sees it.
    assert np.array_equal(np.asarray(image), rgb[:, 15:105])


def test_a_photo_bomb_is_refused_with_its_reason(monkeypatch):
    st.cache_data.clear()
    monkeypatch.setattr(images.Image, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    bomb = hi.claimed_webp(6324, 6324)
    image, why = inside_panel._photo(hashlib.sha256(bomb).hexdigest(), bomb)
    assert image is None and why.startswith("too large to decode")


def test_a_large_photo_is_shrunk_to_at_most_twice_the_photo_side():
    st.cache_data.clear()
    buf = io.BytesIO()
    Image.new("RGB", (3000, 2000), (10, 200, 30)).save(buf, "PNG")
    image, _ = inside_panel._photo("large", buf.getvalue())
    assert inside_panel.PHOTO_SIDE <= image.size[0] == image.size[1] < 2 * inside_panel.PHOTO_SIDE
