"""The race page under Streamlit's AppTest (real engine on the scheduler's thread backend, tiny races), plus its
URL settings (pure) and the About page."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_pages_helpers import TINY, chart, click, fresh_schedulers, jobs_of, markdown_with, run_until_finished

import tl_engine.data.user as datasets_user
from tl_engine.config import RunConfig
from tl_engine.data.uploads import load_meta
from tl_engine.errors import ConfigError
from tl_engine.inspect.similarity import Similarity
from tl_engine.models.backbones import stage_table
from tl_engine.models.strategies import trainable_params
from tl_engine.store.results import default_path
from tl_ui import keys, similarity_panel
from tl_ui.settings import clamp_to_dataset, default_settings, settings_from_query, to_query
from tl_ui.style import fmt_params

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TRAIN, STOP = "▷ Train all three", "Stop"
TABS = ["Confusion", "Per class", "Top mistakes", "Δθ per stage", "First-layer filters", "Feature map",
        "Try your photo", "Take it home"]


# ---- URL settings (pure) ----------------------------------------------------------------------------------------

INFOS = [SimpleNamespace(name="fashion-mnist", domain="clothing", n_train=60000, n_test=10000,
                         classes=list("abcdefghij")),
         SimpleNamespace(name="tiny", domain="toy", n_train=300, n_test=150, classes=3)]


def test_query_values_restore_and_invalid_ones_fall_back():
    s = settings_from_query({"dataset": "tiny", "train": "300", "k": "2", "epochs": "3", "res": "64",
                             "lr_head": "0.01", "augment": "1", "seed": "7"}, INFOS)
    assert (s["dataset"], s["train_size"], s["frozen_stages"], s["epochs"], s["resolution"]) == ("tiny", 300, 2, 3, 64)
    assert s["lr_head"] == 0.01 and s["augment"] is True and s["seed"] == 7
    assert s["test_size"] == 150  # RunConfig's 1000 does not exist in this dataset: all of its test images
    bad = settings_from_query({"dataset": "nope", "k": "99", "epochs": "abc", "res": "1e999", "lr_body": "-1",
                               "augment": "maybe", "train": "0", "seed": "-3"}, INFOS)
    assert bad == default_settings(INFOS)


def test_query_round_trip_and_snapping():
    s = settings_from_query({"train": "37", "res": "100", "lr_scratch": "0.0025"}, INFOS)
    assert (s["train_size"], s["resolution"], s["lr_scratch"]) == (50, 96, 3e-3)  # nearest offered steps
    assert settings_from_query(to_query(s), INFOS) == s
    assert clamp_to_dataset({**s, "dataset": "tiny", "train_size": 5000}, INFOS)["train_size"] == 300


# ---- the page ---------------------------------------------------------------------------------------------------

@pytest.fixture
def made(monkeypatch):
    """The schedulers the pages of this test made (one per server): shut down and caches cleared after."""
    yield from fresh_schedulers(monkeypatch)


def page(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def test_page_renders_with_strip_pills_and_teaching_panel(made, monkeypatch):
    at = page()
    assert not at.exception
    assert made == []  # a tab that starts no job starts no scheduler (nor its worker processes)
    assert [b.label for b in at.button][:2] == [TRAIN, STOP]
    assert not at.button[0].disabled and at.button[1].disabled  # nothing to stop yet
    assert markdown_with(at, 'class="tl-strip"').count("trainable: ") == 3
    assert any("Train all three" in i.value for i in at.info)
    assert at.query_params["k"] == str(RunConfig().frozen_stages)  # settings are written to the URL
    # The decision guide lights a cell only once the dataset's similarity to ImageNet was measured.
    assert "tl-here" not in markdown_with(at, 'class="tl-guide"')
    assert any("not measured yet" in c.value for c in at.caption)
    measured = Similarity(0.27, (), "a test's stand-in", 200, {"score_low": 0.2, "score_high": 0.34,
                                                              "confidence": 0.3, "separation": 0.25})
    monkeypatch.setattr("tl_engine.inspect.similarity.cached", lambda *a, **kw: measured)
    monkeypatch.setattr("tl_ui.similarity_panel._measured", similarity_panel._measured.__wrapped__)  # uncached:
    at.run()  # a real measurement rewrites the cache file, which the page's cache key follows
    assert "tl-here" in markdown_with(at, 'class="tl-guide"')
    assert any("Measured similarity to ImageNet: 0.27" in c.value and "different" in c.value for c in at.caption)
    assert "**different** by the decision guide" in markdown_with(at, "Similarity to ImageNet: 0.27")
    # Above the boundary both the panel and the guide's row say "similar" (one function decides: guide_word).
    photos = Similarity(0.7, (), "a test's stand-in", 200, {"score_low": 0.6, "score_high": 0.8,
                                                            "confidence": 0.5, "separation": 1.0})
    monkeypatch.setattr("tl_engine.inspect.similarity.cached", lambda *a, **kw: photos)
    at.run()
    assert any("Measured similarity to ImageNet: 0.70" in c.value and ": similar" in c.value
               and "borderline" in c.value for c in at.caption)  # 0.6-0.8 reaches across the boundary
    assert "**similar** by the decision guide" in markdown_with(at, "Similarity to ImageNet: 0.70")
    assert "<tr><th>similar</th><td class=\"tl-here\">" in markdown_with(at, 'class="tl-guide"')


def test_frozen_slider_moves_the_pill_and_the_strip(made):
    at = page()
    stages = stage_table(at.session_state["tl_settings"]["backbone"], 10)
    before = markdown_with(at, 'class="tl-strip"')
    at.slider(key="w_frozen_stages").set_value(6).run()
    after = markdown_with(at, 'class="tl-strip"')
    pill = f"trainable: {fmt_params(trainable_params(stages, 'finetune', 6))} of"
    assert pill in after and pill not in before
    assert after.count('class="tl-blk off') == 6 + 7  # fine-tune's 6 locked stages + frozen's 7
    assert at.query_params["k"] == "6"
    assert jobs_of(made, "race") == []  # no training for a slider move


def test_url_parameters_restore_settings_and_bad_ones_do_not_crash(made):
    at = page({"train": "50", "k": "2", "epochs": "3", "res": "64", "augment": "1", "lr_head": "zzz",
               "dataset": "no-such-set", "seed": "-1"})
    assert not at.exception and not at.error
    assert at.selectbox(key="w_dataset").value == RunConfig().dataset
    assert at.select_slider(key="w_train_size").value == 50
    assert at.slider(key="w_frozen_stages").value == 2
    assert at.slider(key="w_epochs").value == 3
    assert at.select_slider(key="w_resolution").value == 64
    assert at.toggle(key="w_augment").value is True
    assert at.select_slider(key="w_lr_head").value == RunConfig().lr_head
    assert at.number_input(key="w_seed").value == RunConfig().seed


@pytest.mark.slow
def test_train_all_three_races_and_ends_with_a_verdict_and_a_look_inside(made):
    at = page(TINY)
    click(at, TRAIN)
    assert not at.exception
    snap = run_until_finished(at, made)
    assert snap.status == "done", snap.error
    assert not at.exception and not at.error
    traces = chart(at, "race_chart")
    assert [t["name"] for t in traces] == ["Scratch", "Frozen", "Fine-tune"]
    assert [len(t["x"]) for t in traces] == [2, 2, 2]
    assert [t["y"][-1] for t in traces] == pytest.approx([100 * e.test_acc for e in snap.events[-3:]], abs=0.01)
    verdict = markdown_with(at, '<div class="tl-verdict"')
    assert "(one seed)" in verdict and ("Within noise" in verdict or " leads " in verdict)
    assert len(chart(at, "summary_chart")) == 3
    assert [t.label for t in at.tabs][-len(TABS):] == TABS
    assert snap.models_dir is not None  # a live race keeps its networks: filters and feature map are drawn
    for key in ("tl_filters", "tl_features", "tl_per_class", "tl_delta"):
        assert chart(at, key)
    downloads = [d.proto.label for d in at.get("download_button")]
    assert {"Race (.json)", "Epochs (.csv)"} <= set(downloads)
    assert sum(d.endswith("model (.pt)") for d in downloads) == 3
    assert not next(b for b in at.button if b.label == TRAIN).disabled
    # One chart at a time (a chart in a hidden tab was redrawn on every epoch too); the loss is a click away.
    drawn = lambda: sorted(k for el in at.get("plotly_chart") for k in ("race_chart", "loss_chart")  # noqa: E731
                           if k in el.proto.id)
    assert drawn() == ["race_chart"]
    at.segmented_control(key=keys.CHART_VIEW).set_value("Loss").run()
    assert drawn() == ["loss_chart"] and len(chart(at, "loss_chart")) == 6  # train and test loss per strategy


@pytest.mark.slow
def test_a_race_that_already_ran_is_answered_from_the_store_and_can_be_raced_live(made):
    at = page(TINY)
    click(at, TRAIN)
    first = run_until_finished(at, made)
    assert first.status == "done", first.error
    click(at, TRAIN)
    reused = jobs_of(made, "race")[-1]
    assert reused.id != first.id and reused.status == "done" and reused.reused_from
    assert [e.test_acc for e in reused.events] == [e.test_acc for e in first.events]
    assert any("already ran" in i.value for i in at.info)
    assert [len(t["x"]) for t in chart(at, "race_chart")] == [2, 2, 2]
    assert markdown_with(at, '<div class="tl-verdict"') and chart(at, "tl_per_class")  # numbers from the store
    assert reused.models_dir is None  # the store keeps no networks: the filter views say how to get them
    assert any("answered from the results store" in i.value for i in at.info)
    click(at, "▷ Race it live")
    live = jobs_of(made, "race")[-1]
    assert live.id not in (first.id, reused.id) and live.reused_from is None and live.active
    click(at, STOP)  # it trains like any race (seen above): no need to wait for it
    assert run_until_finished(at, made).status == "stopped"


@pytest.mark.slow
def test_changing_settings_mid_race_keeps_it_running_and_stop_cancels(made):
    at = page({**TINY, "epochs": "30"})
    click(at, TRAIN)
    job = jobs_of(made, "race")[0]
    at.slider(key="w_frozen_stages").set_value(1).run()
    assert [j.id for j in jobs_of(made, "race")] == [job.id] and jobs_of(made, "race")[0].active
    assert any("apply to the next race" in i.value for i in at.info)
    assert next(b for b in at.button if b.label == TRAIN).disabled
    click(at, STOP)
    snap = run_until_finished(at, made)
    assert snap.id == job.id and snap.status == "stopped"
    assert not at.exception
    if snap.events:  # stopped after some epochs: the result says so
        assert "Stopped before the end" in markdown_with(at, '<div class="tl-verdict"')


def test_engine_errors_show_as_a_message_not_a_traceback(made, monkeypatch):
    message = "train_size 20 is smaller than the number of classes"

    class Broken:
        def __init__(self, *args, **kw):
            raise ConfigError(message)

    monkeypatch.setattr("tl_engine.training.race.Race", Broken)  # the worker imports it when the job runs
    at = page(TINY)
    click(at, TRAIN)
    snap = run_until_finished(at, made)
    assert snap.status == "error" and snap.error == message
    assert not at.exception
    assert [e.value for e in at.error] == [message]


def tiny_npz(n_classes: int = 3, n_train: int = 10, n_test: int = 4) -> bytes:
    """A MedMNIST-style .npz of random 16x16 grey images (each class a different brightness)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(n_classes), n)
        x = (rng.integers(0, 60, (len(y), 16, 16)) + 90 * y[:, None, None]).astype(np.uint8)
        return x, y[:, None]

    (x, y), (tx, ty) = split(n_train), split(n_test)
    buf = io.BytesIO()
    np.savez(buf, train_images=x, train_labels=y, test_images=tx, test_labels=ty)
    return buf.getvalue()


@pytest.mark.slow
def test_uploaded_npz_becomes_the_raced_dataset(made):
    at = page({"epochs": "1", "res": "32"})
    at.file_uploader(key="w_upload").set_value(("my_shapes.npz", tiny_npz(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    name = at.selectbox(key="w_dataset").value
    assert name.startswith("upload:") and len(name) == len("upload:") + 16  # named by content, no server path
    info = load_meta(name).info
    assert info.title == "Your data: my_shapes.npz" and len(info.classes) == 3
    assert info.n_train + info.n_val == 30 and info.n_test == 12
    offered = [int(o) for o in at.select_slider(key="w_train_size").options]
    assert offered[-1] == info.n_train and all(3 <= n <= info.n_train for n in offered)  # at most what it has
    sizes = f"{info.n_train} train / {info.n_val} validation / 12 test images · 3 classes"
    assert sizes in at.sidebar.markdown[-1].value
    head_only = trainable_params(stage_table("mobilenet_v2", 3), "frozen", 4)  # a 3-class head
    assert f"trainable: {fmt_params(head_only)} of" in markdown_with(at, 'class="tl-strip"')
    assert at.query_params["dataset"] == name  # a link to this race names the upload, not a file

    click(at, TRAIN)
    snap = run_until_finished(at, made)
    assert snap.status == "done", snap.error
    assert snap.cfg.dataset == name and snap.cfg.train_size == info.n_train
    assert [len(t["x"]) for t in chart(at, "race_chart")] == [1, 1, 1]


def test_unreadable_upload_shows_the_engine_message_once_and_is_not_parsed_again(made, monkeypatch):
    calls: list[str] = []
    real = datasets_user.load_upload

    def counting(filename: str, data: bytes):
        calls.append(filename)
        return real(filename, data)

    monkeypatch.setattr(datasets_user, "load_upload", counting)
    at = page()
    at.file_uploader(key="w_upload").set_value(("broken.zip", b"this is not a zip", "application/zip")).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("broken.zip ")  # named once, not "x: x is..."
    assert at.selectbox(key="w_dataset").value == RunConfig().dataset
    at.slider(key="w_frozen_stages").set_value(2).run()  # any rerun: the same file is still in the widget
    at.run()
    assert calls == ["broken.zip"]  # parsed once; its message is remembered
    assert len(at.error) == 1 and at.error[0].value.startswith("broken.zip ")  # named once, not "x: x is..."


def test_a_link_to_an_upload_this_server_lacks_falls_back_to_a_bundled_dataset(made):
    at = page({"dataset": "upload:0123456789abcdef", **TINY})
    assert not at.exception and not at.error
    assert any("The link's dataset is not available" in w.value and "Upload the file again" in w.value
               for w in at.warning)
    assert at.selectbox(key="w_dataset").value == RunConfig().dataset
    assert at.query_params["dataset"] == RunConfig().dataset


@pytest.mark.slow
def test_a_damaged_results_store_does_not_stop_the_page_or_the_race(made):
    store = default_path()  # $TL_RACE_DATA/results.sqlite, private to this test (conftest)
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"this is not a database" * 100)
    at = page(TINY)
    assert not at.exception
    assert any("results store" in c.value and "damaged" in c.value for c in at.caption)
    click(at, TRAIN)
    snap = run_until_finished(at, made)
    assert snap.status == "done", snap.error
    assert not at.exception
    assert markdown_with(at, '<div class="tl-verdict"')


def test_about_page_names_every_dataset_and_its_licence():
    from tl_engine.data.bundled import list_datasets

    at = AppTest.from_file(str(ROOT / "pages" / "about.py"), default_timeout=60).run()
    assert not at.exception
    rows = at.table[1].value
    assert list(rows["dataset"]) == [i.title for i in list_datasets()]
    assert list(rows["licence"]) == [i.licence for i in list_datasets()]
    assert all(rows["licence"]) and all(rows["source"])
