"""The race page under streamlit's AppTest (real engine, tiny races), plus its worker and URL settings."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tl_engine.backbones import stage_table
from tl_engine.config import EpochResult, RunConfig
from tl_engine.errors import ConfigError
from tl_engine.strategies import trainable_params
from tl_ui import runner
from tl_ui.settings import clamp_to_dataset, default_settings, settings_from_query, to_query
from tl_ui.style import fmt_params

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TRAIN = "▷ Train all three"
TINY = {"train": "20", "test": "200", "epochs": "2", "res": "32"}  # a race of a few seconds on a 2-core CPU


# ---- worker ---------------------------------------------------------------------------------------------

def fake_event(strategy: str, epoch: int) -> EpochResult:
    return EpochResult(strategy, epoch, 1.0, 0.5, 1.0, 0.5, 10, 0.1, 0.1 * epoch, 100.0)


def slow_race(cfg: RunConfig, stop: threading.Event):
    """Yields like the engine (round-robin) but without training, slowly enough to be stopped."""
    for epoch in range(1, cfg.epochs + 1):
        for s in cfg.strategies:
            if stop.is_set():
                return
            time.sleep(0.02)
            yield fake_event(s, epoch)


def test_worker_collects_every_event_and_finishes():
    run = runner.start_race(RunConfig(epochs=3), race=slow_race)
    run.join(10)
    snap = run.snapshot()
    assert snap.status == "done" and snap.error is None and snap.finished_at is not None
    assert [(e.strategy, e.epoch) for e in snap.events][:4] == [("scratch", 1), ("frozen", 1), ("finetune", 1),
                                                               ("scratch", 2)]
    assert len(snap.events) == snap.total == 9 and snap.progress == 1.0
    assert run.thread.daemon


def test_worker_stops_promptly_and_reports_stopped():
    run = runner.start_race(RunConfig(epochs=1000), race=slow_race)
    time.sleep(0.1)
    run.stop()
    run.join(2)
    snap = run.snapshot()
    assert not run.thread.is_alive()
    assert snap.status == "stopped" and 0 < len(snap.events) < snap.total


def test_worker_turns_engine_errors_into_messages():
    def bad(cfg, stop):
        raise ConfigError("frozen stages k must be between 0 and 7, got 9")
        yield  # pragma: no cover

    run = runner.start_race(RunConfig(), race=bad)
    run.join(5)
    snap = run.snapshot()
    assert snap.status == "error" and snap.error == "frozen stages k must be between 0 and 7, got 9"


# ---- URL settings (pure) --------------------------------------------------------------------------------

INFOS = [SimpleNamespace(name="fashion-mnist", domain="clothing", similarity="medium", n_train=60000, n_test=10000,
                         classes=list("abcdefghij")),
         SimpleNamespace(name="tiny", domain="toy", similarity="low", n_train=300, n_test=150, classes=3)]


def test_finished_race_is_stored_and_the_same_config_is_answered_from_the_store(tmp_path):
    from tl_engine.store import ResultStore

    store = ResultStore(tmp_path / "r.sqlite")
    cfg = RunConfig(epochs=2)
    first = runner.start_race(cfg, race=slow_race, store=store)
    first.join(10)
    assert first.snapshot().status == "done" and first.reused_from is None
    again = runner.start_race(cfg, race=lambda *a: pytest.fail("must not train"), store=store)
    snap = again.snapshot()
    assert snap.status == "done" and snap.reused_from and again.thread is None
    assert snap.events == first.snapshot().events
    live = runner.start_race(cfg, race=slow_race, store=store, reuse=False)  # "Race it live" ignores the store
    assert live.snapshot().reused_from is None
    live.join(10)
    stopped = runner.start_race(replace(cfg, epochs=1000), race=slow_race, store=store)
    stopped.stop()
    stopped.join(10)
    assert store.get(replace(cfg, epochs=1000)) is None  # a stopped race is never stored


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


# ---- the page -------------------------------------------------------------------------------------------

@pytest.fixture
def app():
    """A fresh AppTest of app.py; stops whatever race it started (all AppTests share one session id)."""
    at = AppTest.from_file(APP, default_timeout=60)
    yield at
    run = at.session_state.get("race_run")
    if run is not None:
        run.stop()
        run.join(30)


def markdown_with(at: AppTest, marker: str) -> str:
    return next(m.value for m in at.markdown if marker in m.value)


def chart(at: AppTest, key: str) -> list[dict]:
    """Traces of the plotly chart whose element id carries ``key``."""
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if key in el.proto.id:
            return spec["data"]
    raise AssertionError(f"no plotly chart {key!r}")


def run_until_finished(at: AppTest, timeout: float = 180) -> runner.Snapshot:
    """Rerun the page (AppTest never fires run_every) until the worker has finished."""
    run = at.session_state["race_run"]
    deadline = time.time() + timeout
    while run.snapshot().running and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    at.run()  # the page as it looks once the race is over
    return run.snapshot()


def test_page_renders_with_strip_pills_and_teaching_panel(app):
    app.run()
    assert not app.exception
    assert [b.label for b in app.button] == [TRAIN, "Stop"]
    strip = markdown_with(app, 'class="tl-strip"')
    assert strip.count("trainable: ") == 3
    assert "tl-here" in markdown_with(app, 'class="tl-guide"')
    assert app.query_params["k"] == str(RunConfig().frozen_stages)  # settings are written to the URL


def test_frozen_slider_moves_the_pill_and_the_strip(app):
    app.run()
    stages = stage_table(app.session_state["tl_settings"]["backbone"], 10)
    before = markdown_with(app, 'class="tl-strip"')
    app.slider(key="w_frozen_stages").set_value(6).run()
    after = markdown_with(app, 'class="tl-strip"')
    assert before != after
    pill = f"trainable: {fmt_params(trainable_params(stages, 'finetune', 6))} of"
    assert pill in after and pill not in before
    assert after.count('class="tl-blk off') == 6 + 7  # fine-tune's 6 locked stages + frozen's 7
    assert app.query_params["k"] == "6"
    assert "race_run" not in app.session_state  # no training for a slider move


def test_url_parameters_restore_settings_and_bad_ones_do_not_crash(app):
    for k, v in {"train": "50", "k": "2", "epochs": "3", "res": "64", "augment": "1", "lr_head": "zzz"}.items():
        app.query_params[k] = v
    app.run()
    assert not app.exception
    assert app.select_slider(key="w_train_size").value == 50
    assert app.slider(key="w_frozen_stages").value == 2
    assert app.slider(key="w_epochs").value == 3
    assert app.select_slider(key="w_resolution").value == 64
    assert app.toggle(key="w_augment").value is True
    assert app.select_slider(key="w_lr_head").value == RunConfig().lr_head


def test_train_all_three_races_and_ends_with_a_verdict(app):
    for k, v in TINY.items():
        app.query_params[k] = v
    app.run()
    next(b for b in app.button if b.label == TRAIN).click().run()
    assert not app.exception
    snap = run_until_finished(app)
    assert snap.status == "done", snap.error
    traces = chart(app, "race_chart")
    assert [t["name"] for t in traces] == ["Scratch", "Frozen", "Fine-tune"]
    assert [len(t["x"]) for t in traces] == [2, 2, 2]
    assert [t["y"][-1] for t in traces] == pytest.approx([100 * e.test_acc for e in snap.events[-3:]], abs=0.01)
    text = markdown_with(app, 'class="tl-verdict"')
    assert "finished highest" in text or "tied at" in text
    assert len(chart(app, "summary_chart")) == 3


def test_a_race_that_already_ran_is_shown_at_once_and_can_be_raced_live_again(app):
    for k, v in TINY.items():
        app.query_params[k] = v
    app.run()
    next(b for b in app.button if b.label == TRAIN).click().run()
    first = run_until_finished(app)
    next(b for b in app.button if b.label == TRAIN).click().run()
    reused = app.session_state["race_run"].snapshot()
    assert reused.reused_from and reused.events == first.events
    assert any("already ran" in i.value for i in app.info)
    assert [len(t["x"]) for t in chart(app, "race_chart")] == [2, 2, 2]
    next(b for b in app.button if b.label == "▷ Race it live").click().run()
    assert app.session_state["race_run"].snapshot().reused_from is None
    assert run_until_finished(app).status == "done"


def test_changing_settings_mid_race_keeps_it_running_and_stop_cancels(app):
    for k, v in {**TINY, "epochs": "30"}.items():
        app.query_params[k] = v
    app.run()
    next(b for b in app.button if b.label == TRAIN).click().run()
    run = app.session_state["race_run"]
    app.slider(key="w_frozen_stages").set_value(1).run()
    assert app.session_state["race_run"] is run and run.snapshot().running
    assert any("apply to the next race" in i.value for i in app.info)
    next(b for b in app.button if b.label == "Stop").click().run()
    run.join(30)
    assert run.snapshot().status == "stopped"


def test_engine_errors_show_as_a_message_not_a_traceback(app):
    app.run()

    def broken(cfg, stop):
        raise ConfigError("train_size 20 is smaller than the number of classes")
        yield  # pragma: no cover

    run = runner.start_race(replace(RunConfig(), epochs=1), race=broken)
    run.join(5)
    app.session_state["race_run"] = run
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == ["train_size 20 is smaller than the number of classes"]


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


def test_uploaded_npz_becomes_the_raced_dataset(app, tmp_path, monkeypatch):
    monkeypatch.setattr("tl_ui.upload.UPLOAD_DIR", tmp_path)
    for k, v in {"epochs": "1", "res": "32"}.items():
        app.query_params[k] = v
    app.run()
    app.file_uploader(key="w_upload").set_value(("my_shapes.npz", tiny_npz(), "application/octet-stream")).run()
    assert not app.exception and not app.error
    path = app.selectbox(key="w_dataset").value
    assert Path(path).parent == tmp_path and Path(path).name.startswith("my_shapes-")
    assert app.select_slider(key="w_train_size").options == ["20", "30"]  # at most the 30 images it has
    assert "30 train / 12 test images · 3 classes" in app.sidebar.markdown[-1].value
    head_only = trainable_params(stage_table("mobilenet_v2", 3), "frozen", 4)  # a 3-class head
    assert f"trainable: {fmt_params(head_only)} of" in markdown_with(app, 'class="tl-strip"')
    assert "tl-here" not in markdown_with(app, 'class="tl-guide"')  # similarity to ImageNet: unknown

    next(b for b in app.button if b.label == TRAIN).click().run()
    snap = run_until_finished(app)
    assert snap.status == "done", snap.error
    assert snap.cfg.dataset == path
    assert [len(t["x"]) for t in chart(app, "race_chart")] == [1, 1, 1]


def test_unreadable_upload_shows_the_engine_message(app, tmp_path, monkeypatch):
    monkeypatch.setattr("tl_ui.upload.UPLOAD_DIR", tmp_path)
    app.run()
    app.file_uploader(key="w_upload").set_value(("broken.zip", b"this is not a zip", "application/zip")).run()
    assert not app.exception
    assert len(app.error) == 1 and "broken" in app.error[0].value
    assert app.selectbox(key="w_dataset").value == RunConfig().dataset


def test_about_page_names_every_dataset_and_its_licence():
    from tl_engine.data import list_datasets

    at = AppTest.from_file(str(Path(APP).parent / "pages" / "about.py"), default_timeout=60).run()
    assert not at.exception
    rows = at.table[1].value
    assert list(rows["dataset"]) == [i.title for i in list_datasets()]
    assert list(rows["licence"]) == [i.licence for i in list_datasets()]
