"""The race page against hostile uploads and a hostile server disk (AppTest): names that are markup, a newline
in a class folder, 1,000 classes, a full disk or read-only uploads folder, unreadable stored races. Each time:
no exception, the hostile text shown literally, the message remembered, and the page whole below it."""

from __future__ import annotations

import errno
import io
import re
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_pages_helpers import fresh_schedulers

import tl_engine.data.user as datasets_user
from tl_engine.data import uploads
from tl_engine.store.results import default_path
from tl_ui import previews

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
HOSTILE = ["line one\nline two", '<span style="font-size:90px">big', "[link](https:x.org)", "![img](x.png)",
           ":smile: face", "x" * 500, "\u202eevil", "www.evil.com", "<a href=x>link"]


@pytest.fixture
def made(monkeypatch):
    yield from fresh_schedulers(monkeypatch)


def zip_of(names, n: int = 3, side: int = 8) -> bytes:
    rng, buf = np.random.default_rng(0), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            for i in range(n):
                out = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(out, "PNG")
                zf.writestr(f"{name}/{i}.png", out.getvalue())
    return buf.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="w_upload").set_value((name, data, "application/zip")).run()


def page() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180).run()


def assert_whole(at: AppTest) -> None:
    """No exception, and the sections below the preview were drawn."""
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith("Which strategy?") for s in at.subheader)  # the page's last section
    assert at.get("image"), "the preview grid was not drawn"


def renders_nothing(markdown: str) -> bool:
    """True if nothing in ``markdown`` is left unescaped that a renderer would turn into a link, image or tag."""
    bare = re.sub(r"\\.", "", markdown)
    return not re.search(r"[\[\]<>]|https?:/|www\.|:[\w-]+:", bare)


def test_markup_and_newline_class_names_are_shown_literally_and_the_page_stays_whole(made):
    at = upload(page(), "<b>my</b> [set](https:x.org).zip", zip_of(HOSTILE))
    assert_whole(at)
    assert at.selectbox(key="w_dataset").value.startswith("upload:")
    ok = at.success[0].value
    assert "9 classes" in ok and renders_nothing(ok) and "\n" not in ok
    assert "line one line two" in ok.replace("\\", "")
    data_box = [e for e in at.expander if e.label.startswith("See the data:")]
    assert len(data_box) == 1 and renders_nothing(data_box[0].label)
    assert renders_nothing(at.sidebar.markdown[-1].value)
    shown = at.selectbox(key="w_dataset").format_func(at.selectbox(key="w_dataset").value)
    assert "\n" not in shown and len(shown) <= 60


@pytest.mark.slow  # parses 3,000 images
def test_a_thousand_classes_are_previewed_one_page_at_a_time(made):
    at = upload(page(), "many.zip", zip_of([f"class {i:04d}" for i in range(1000)]))
    assert_whole(at)
    name = at.selectbox(key="w_dataset").value
    pager = at.select_slider(key=f"tl_preview_page:{name}")
    assert len(pager.options) == 50
    pager.set_value(49).run()
    assert_whole(at)
    assert "classes 981 to 1,000 of 1,000" in at.get("image")[0].proto.imgs[0].caption
    grid = previews.sample_grid(uploads.load(name), page=49)
    assert grid.height == 20 * (128 + 4) + 4 and grid.width * grid.height < 4_000_000  # 2.7 MP
    png = io.BytesIO()
    grid.save(png, "PNG")
    Image.open(io.BytesIO(png.getvalue())).load()  # what st.image does: Pillow's bomb check passes


@pytest.mark.parametrize("failure", ["disk full", "read-only folder"])
def test_a_server_that_cannot_keep_the_upload_says_so_once_and_the_page_stays_whole(made, monkeypatch, failure):
    calls: list[str] = []
    real = datasets_user.load_upload
    monkeypatch.setattr(datasets_user, "load_upload", lambda f, d: (calls.append(f), real(f, d))[1])
    if failure == "disk full":
        def full(path, write):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        monkeypatch.setattr(uploads, "_write_atomic", full)
    else:
        uploads.uploads_dir().chmod(0o755)  # left open by hand: the server makes it private first...

        def read_only(path, mode):  # ...which a read-only disk refuses (root ignores permission bits)
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        monkeypatch.setattr(uploads.os, "chmod", read_only)
    at = upload(page(), "photos.zip", zip_of(["cats", "dogs"]))
    assert_whole(at)
    why = "the disk is full" if failure == "disk full" else "the disk is read-only"
    assert len(at.error) == 1 and at.error[0].value.startswith("photos.zip could not be kept on this server")
    assert why in at.error[0].value
    assert str(default_path().parent) not in at.error[0].value  # no server path
    at.run()
    at.run()
    assert_whole(at)
    assert len(at.error) == 1 and why in at.error[0].value
    assert calls == (["photos.zip"] if failure == "disk full" else [])  # remembered: never parsed again


def test_unreadable_stored_races_are_skipped_and_counted(made):
    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE races (id TEXT PRIMARY KEY, kind TEXT NOT NULL, result TEXT NOT NULL, "
                    "created_at TEXT NOT NULL)")
        con.execute("INSERT INTO races VALUES ('a', 'race', '{not json', '2026-01-01')")
        con.execute("INSERT INTO races VALUES ('b', 'race', '{}', '2026-01-02')")
    at = page()
    assert_whole(at)
    assert any(c.value.startswith("2 stored races could not be read (skipped)") for c in at.caption)


def test_an_npz_with_negative_dimensions_is_one_message_on_the_page(made, tmp_path):
    from benchmarks import hostile_files as hf

    y = np.arange(4) % 2
    path = hf.write_npz(tmp_path / "neg.npz", {"train_labels": y, "test_images": np.zeros((4, 8, 8), np.uint8),
                                                "test_labels": y}, big={"train_images": ((-3, 8, 8), "u1", 0)})
    at = page().file_uploader(key="w_upload").set_value(("neg.npz", path.read_bytes(), "application/octet-stream"))
    at = at.run()
    assert_whole(at)
    assert len(at.error) == 1 and "train_images declares a negative size" in at.error[0].value


def test_a_thousand_class_confusion_matrix_shows_the_most_confused_thirty():
    from tl_ui import inside_charts as ic
    from tl_ui.inside_panel import MAX_CM_CLASSES, confused_classes

    rng = np.random.default_rng(0)
    cm = np.diag(rng.integers(1, 5, 1000))
    cm[17, 900], cm[900, 17], cm[3, 4] = 9, 2, 1  # 17 and 900 are the most confused, 3 and 4 a little
    shown = confused_classes(cm)
    assert len(shown) == MAX_CM_CLASSES == 30 and shown == sorted(shown) and {3, 4, 17, 900} <= set(shown)
    assert confused_classes(cm[:10, :10]) == list(range(10))
    fig = ic.confusion_figure(cm[np.ix_(shown, shown)], [f"class {c}" for c in shown], "finetune")
    assert len(fig.data[1].customdata) == 30 * 30  # not a million invisible markers
