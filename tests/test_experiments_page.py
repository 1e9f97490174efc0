"""The experiments page: pure figure functions, then the page under AppTest running real tiny sweeps."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tl_engine.config import STRATEGY_NAMES, EpochResult, RunConfig, summarize
from tl_engine.data import load_dataset
from tl_engine.store import ResultStore
from tl_engine.sweep import Progress, SweepRun, curve_points, learning_curve_verdict, transfer_gains
from tl_ui import experiment_charts as charts
from tl_ui.style import COLORS

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "experiments.py")
TINY = RunConfig(dataset="mnist", train_size=20, test_size=20, epochs=1, resolution=32, device="cpu")


def fake_run(cfg: RunConfig, accs: dict[str, float], seconds: float = 1.0, reused: bool = False) -> SweepRun:
    events = [EpochResult(s, 1, 0.9, 0.5, 1.0, accs[s], 1000 * (8 - cfg.frozen_stages) if s == "finetune" else 999,
                          seconds, seconds, 80.0, 5000) for s in cfg.strategies]
    return SweepRun(cfg, summarize(events), [e.to_dict() for e in events], reused, "cpu")


# ---- figures (pure) ----------------------------------------------------------------------------------------------

def test_freeze_figure_plots_fine_tune_against_k_with_scratch_as_reference():
    runs = [fake_run(replace(TINY, strategies=("finetune",), frozen_stages=k), {"finetune": a}, seconds=8 - k)
            for k, a in [(7, 0.6), (6, 0.7), (0, 0.5)]]
    runs.append(fake_run(replace(TINY, strategies=("scratch",)), {"scratch": 0.42}, seconds=9))
    data = charts.freeze_figure(runs).to_dict()["data"]
    ft = [t for t in data if t["name"] == "Fine-tune"]
    ref = [t for t in data if t["name"].startswith("Scratch")]
    assert len(ft) == len(ref) == 3  # one of each per panel: accuracy, parameters, seconds
    assert list(ft[0]["x"]) == [0, 6, 7] and list(ft[0]["y"]) == [50.0, 70.0, 60.0]
    assert list(ft[1]["y"]) == [8000, 2000, 1000] and list(ft[2]["y"]) == [8.0, 2.0, 1.0]
    assert list(ref[0]["y"]) == [42.0, 42.0] and list(ref[2]["y"]) == [9.0, 9.0]
    assert ft[0]["line"]["color"] == COLORS["finetune"] and ref[0]["line"]["dash"] == "dash"
    assert [t["showlegend"] for t in ft] == [True, False, False]
    empty = charts.freeze_figure([]).to_dict()["data"]
    assert len(empty) == 6 and all(len(t["x"]) == 0 for t in empty)


def size_runs(accs: dict[int, tuple[float, float, float]]) -> list[SweepRun]:
    return [fake_run(replace(TINY, train_size=n, strategies=STRATEGY_NAMES), dict(zip(STRATEGY_NAMES, a)))
            for n, a in accs.items()]


def test_size_figure_has_log_x_one_line_per_strategy_and_marks_the_claim():
    runs = size_runs({50: (0.2, 0.5, 0.55), 500: (0.6, 0.8, 0.9), 5000: (0.85, 0.84, 0.95)})
    verdict = learning_curve_verdict(curve_points(runs))
    fig = charts.size_figure(runs, verdict).to_dict()
    lines = {t["name"]: t for t in fig["data"]}
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert list(lines["Fine-tune"]["x"]) == [50, 500, 5000] and list(lines["Scratch"]["y"]) == [20.0, 60.0, 85.0]
    claim = lines["the claim"]
    assert list(claim["x"]) == [500, 5000] and list(claim["y"]) == [90.0, 85.0]
    assert "supported ✓" in fig["layout"]["title"]["text"] and "90.0 % vs 85.0 %" in fig["layout"]["title"]["text"]
    worse = size_runs({500: (0.6, 0.8, 0.8), 5000: (0.85, 0.84, 0.95)})
    title = charts.size_figure(worse, learning_curve_verdict(curve_points(worse))).to_dict()["layout"]["title"]
    assert "not supported ✗" in title["text"]
    assert [t["name"] for t in charts.size_figure([]).to_dict()["data"]] == ["Scratch", "Frozen", "Fine-tune"]


def test_domain_figure_shows_gains_in_points_in_the_given_order():
    runs = [fake_run(replace(TINY, dataset=d), dict(zip(STRATEGY_NAMES, a)))
            for d, a in [("mnist", (0.95, 0.7, 0.96)), ("textures", (0.6, 0.9, 0.93))]]
    gains = transfer_gains(runs, {"mnist": "low", "textures": "high"})
    data = charts.domain_figure(gains).to_dict()["data"]
    frozen, finetune = data
    assert list(frozen["x"]) == ["textures<br>(high)", "mnist<br>(low)"]
    assert list(frozen["y"]) == [30.0, -25.0] and list(finetune["y"]) == [33.0, 1.0]
    assert list(frozen["text"]) == ["+30.0", "-25.0"] and finetune["marker"]["color"] == COLORS["finetune"]


def test_progress_text_and_durations():
    assert charts.fmt_duration(42.4) == "42 s" and charts.fmt_duration(150) == "2 min 30 s"
    assert charts.fmt_duration(4000) == "1 h 06 min"
    assert charts.progress_text(Progress(3, 9, 1, 0.4, 150, None)) == (
        "3 of 9 runs · 1 reused from the store · about 2 min 30 s left")
    assert charts.progress_text(Progress(0, 9, 0, 0.0, None, None)) == "0 of 9 runs · estimating time left…"
    assert charts.progress_text(Progress(9, 9, 0, 1.0, 0.0, None)) == "9 of 9 runs"


def test_result_rows_one_per_run_and_strategy():
    runs = [fake_run(replace(TINY, strategies=("finetune",), frozen_stages=7), {"finetune": 0.6123}, reused=True)]
    assert charts.result_rows("freeze", runs) == [{"run": "k = 7", "strategy": "Fine-tune", "test accuracy (%)": 61.2,
                                                   "trainable parameters": 1000, "compute seconds": 1.0,
                                                   "reused": True}]


# ---- the page under AppTest (real engine, tiny sweeps) ----------------------------------------------------------

@pytest.fixture
def page(tmp_path, monkeypatch):
    """The page with a private results store and tiny race settings (as the race page would leave them)."""
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["tl_settings"] = {"dataset": "mnist", "train_size": 20, "test_size": 200, "epochs": 1,
                                       "resolution": 32, "frozen_stages": 4, "seed": 0, "device": "cpu"}
    at.run()
    assert not at.exception
    yield at
    job = at.session_state.get("xp_job")
    if job is not None:  # never leave a sweep training behind the next test
        job.stop_event.set()


def run_until_idle(at: AppTest, limit_s: float = 120) -> dict:
    """run_every does not fire in AppTest: rerun until the worker has finished."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        at.run()
        snap = at.session_state["xp_job"].snapshot()
        if snap["status"] != "running":
            at.run()  # the full rerun the fragment asks for when it sees the end
            return snap
        time.sleep(0.3)
    raise AssertionError("the sweep did not finish in time")


def chart_data(at: AppTest) -> list[dict]:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"]


def test_page_renders_the_three_experiments(page):
    assert page.radio(key="xp_kind").options == ["Freeze depth", "Data size", "Domain similarity"]
    assert page.selectbox(key="xp_dataset").value == "mnist"  # taken from the race page's settings
    assert any("9 races, 0 already in the results store" in c.value for c in page.caption)
    assert any("Run experiment" in i.value for i in page.info)
    page.radio(key="xp_kind").set_value("size").run()
    assert any("7 races" in c.value for c in page.caption)  # 50 … 2000, and 4000: all mnist offers
    page.radio(key="xp_kind").set_value("domain").run()
    assert page.selectbox(key="xp_dataset").disabled and not page.exception


def test_uploaded_datasets_join_the_page(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, train_images=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
             train_labels=np.arange(30) % 3, test_images=rng.integers(0, 255, (15, 28, 28), dtype=np.uint8),
             test_labels=np.arange(15) % 3)
    info = dataclasses.replace(load_dataset(str(path)).info, name=str(path), title="Your data: mine")
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["tl_uploads"] = {str(path): info}  # as the race page's uploader leaves them
    at.run()
    assert "Your data: mine" in at.selectbox(key="xp_dataset").options  # labels, as the user sees them
    at.radio(key="xp_kind").set_value("domain").run()
    assert any("5 races" in c.value for c in at.caption) and any("Your data: mine" in c.value for c in at.caption)
    assert not at.exception


def test_page_runs_a_sweep_to_completion_then_reuses_it(page, tmp_path):
    page.multiselect(key="xp_ks").set_value([6, 7]).run()
    page.button[0].click().run()
    snap = run_until_idle(page)
    assert snap["status"] == "done" and snap["error"] is None
    assert [r.config.frozen_stages for r in snap["runs"]] == [7, 6, 0] and not any(r.reused for r in snap["runs"])
    ft = next(t for t in chart_data(page) if t["name"] == "Fine-tune")
    assert list(ft["x"]) == [6, 7]
    assert len(page.get("download_button")) == 1 and not page.exception
    assert len(ResultStore(tmp_path / "results.sqlite").all("freeze")) == 3
    assert any("3 races, 3 already in the results store" in c.value for c in page.caption)

    page.button[0].click().run()  # again: everything comes from the store
    snap = run_until_idle(page, limit_s=20)
    assert [r.reused for r in snap["runs"]] == [True, True, True]
    notes = [c.value for c in page.caption if "reused from the results store" in c.value]
    assert len(notes) == 3 and notes[0].startswith("♻️ k = 7")


def test_stop_keeps_the_finished_runs(page, tmp_path):
    page.multiselect(key="xp_ks").set_value([7, 6, 5, 4, 3]).run()
    page.button[0].click().run()
    job = page.session_state["xp_job"]
    deadline = time.time() + 60
    while not job.snapshot()["runs"] and time.time() < deadline:
        time.sleep(0.1)
    page.button(key="xp_stop").click().run()
    snap = run_until_idle(page, limit_s=60)
    assert snap["status"] == "stopped" and 1 <= len(snap["runs"]) < 6
    assert len(ResultStore(tmp_path / "results.sqlite").all()) == len(snap["runs"])
    assert any("Stopped after" in w.value for w in page.warning)
