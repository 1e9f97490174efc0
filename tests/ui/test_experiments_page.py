"""The experiments page: pure figure functions not covered by tests/engine/test_verdicts.py, then the page under AppTest
running real tiny sweeps as jobs of the server's scheduler (thread backend)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_pages_helpers import click, fresh_schedulers, jobs_of, markdown_with, run_until_finished, wait_for

from tl_engine.config import STRATEGY_NAMES, EpochResult, RaceResult, RunConfig
from tl_engine.data.uploads import save_upload
from tl_engine.experiments.sweep import Progress, SweepRun, points
from tl_engine.experiments.verdicts import domain_gains
from tl_engine.store.results import ResultStore, default_path
from tl_ui import experiment_charts as charts
from tl_ui.style import COLORS

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "experiments.py")
BASE = RunConfig(dataset="mnist", train_size=20, test_size=200, epochs=1, resolution=32, device="cpu")
RUN = "▷ Run experiment"
STATUS_WORDS = ("supported", "not supported", "inconclusive")


def fake_run(cfg: RunConfig, accs: dict[str, float], seconds: float = 1.0, reused: bool = False) -> SweepRun:
    params = 1000 * (8 - cfg.frozen_stages)
    events = [EpochResult(s, 1, 0.9, 0.5, 1.0, accs[s], params if s == "finetune" else 999, seconds, seconds, 80.0,
                          5000, seconds, 0.0, 1.0, accs[s]) for s in cfg.strategies]
    return SweepRun(RaceResult.build(cfg, "cpu", seconds, events), reused)


# ---- figures and texts (pure) -----------------------------------------------------------------------------------

def freeze_runs() -> list[SweepRun]:
    runs = [fake_run(replace(BASE, strategies=("finetune",), frozen_stages=k), {"finetune": a}, seconds=8 - k,
                     reused=k == 7) for k, a in [(7, 0.6), (6, 0.7), (0, 0.5)]]
    return runs + [fake_run(replace(BASE, strategies=("scratch",)), {"scratch": 0.42}, seconds=9)]


def test_freeze_figure_plots_accuracy_parameters_and_seconds_against_k():
    data = charts.freeze_figure(freeze_runs()).to_dict()["data"]
    ft = [t for t in data if t.get("name") == "Fine-tune"]
    assert len(ft) == 3  # one per panel: accuracy, trainable parameters, compute seconds
    assert list(ft[0]["x"]) == [0, 6, 7] and list(ft[0]["y"]) == [50.0, 70.0, 60.0]  # k ascending
    assert list(ft[1]["y"]) == [8000, 2000, 1000] and list(ft[2]["y"]) == [8.0, 2.0, 1.0]
    assert all(t["line"]["color"] == COLORS["finetune"] for t in ft)
    assert [t.get("showlegend", True) for t in ft] == [True, False, False]  # one legend entry for three panels
    ref = next(t for t in data if t.get("name") == "Scratch (reference)")
    assert list(ref["y"]) == [42.0, 42.0] and ref["line"]["dash"] == "dash"
    assert any(t.get("line", {}).get("dash") == "dash" and list(t["y"]) == [9.0, 9.0] for t in data)  # seconds
    empty = charts.freeze_figure([]).to_dict()["data"]
    assert all(len(t.get("x") or []) == 0 for t in empty)  # no runs yet: empty panels, no error


def size_runs(accs: dict[int, tuple[float, float, float]]) -> list[SweepRun]:
    return [fake_run(replace(BASE, train_size=n, strategies=STRATEGY_NAMES), dict(zip(STRATEGY_NAMES, a)))
            for n, a in accs.items()]


def test_size_figure_has_a_log_x_axis_and_marks_the_claim_it_judged():
    from tl_engine.experiments.verdicts import claim_500_vs_5000

    runs = size_runs({50: (0.2, 0.5, 0.55), 500: (0.6, 0.8, 0.9), 5000: (0.85, 0.84, 0.95)})
    verdict = claim_500_vs_5000(points("size", runs))
    fig = charts.size_figure(runs, verdict).to_dict()
    lines = {t["name"]: t for t in fig["data"]}
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert list(lines["Fine-tune"]["x"]) == [50, 500, 5000] and list(lines["Scratch"]["y"]) == [20.0, 60.0, 85.0]
    claim = lines["the claim"]
    assert list(claim["x"]) == [500, 5000] and list(claim["y"]) == pytest.approx([90.0, 85.0])
    assert f"<b>{verdict.status}</b>" in fig["layout"]["title"]["text"]
    bare = charts.size_figure(runs).to_dict()  # while the sweep runs: no verdict, no claim markers, no title
    assert "the claim" not in {t["name"] for t in bare["data"]} and not bare["layout"].get("title", {}).get("text")


def test_domain_figure_shows_error_reduction_most_imagenet_like_first():
    runs = [fake_run(replace(BASE, dataset=d, strategies=STRATEGY_NAMES), dict(zip(STRATEGY_NAMES, a)))
            for d, a in [("mnist", (0.9, 0.8, 0.95)), ("textures", (0.6, 0.8, 0.9))]]
    gains = domain_gains(points("domain", runs), {"mnist": 0.16, "textures": 0.41})
    frozen, finetune = charts.domain_figure(gains).to_dict()["data"]
    assert list(frozen["x"]) == ["textures<br>(similarity 0.41)", "mnist<br>(similarity 0.16)"]
    assert list(frozen["y"]) == pytest.approx([50.0, -100.0]) and list(finetune["y"]) == pytest.approx([75.0, 50.0])
    assert finetune["marker"]["color"] == COLORS["finetune"] and frozen["text"][0].startswith("+50 % (")


def test_progress_text_and_durations():
    assert charts.fmt_duration(42.4) == "42 s" and charts.fmt_duration(150) == "2 min 30 s"
    assert charts.fmt_duration(4000) == "1 h 06 min"
    assert charts.progress_text(Progress(3, 9, 1, 0.4, 150, None)) == (
        "3 of 9 runs · 1 reused from the store · about 2 min 30 s left")
    assert charts.progress_text(Progress(0, 9, 0, 0.0, None, None)) == (
        "0 of 9 runs · estimating time left (no race measured on this machine yet)…")
    assert charts.progress_text(Progress(9, 9, 0, 1.0, 0.0, None)) == "9 of 9 runs"


def test_freeze_results_table_names_each_k_and_counts_reused_runs():
    df = charts.results_table("freeze", freeze_runs())
    assert list(df["run"]) == ["k = 0", "k = 6", "k = 7", "scratch"]
    k7 = df[df["run"] == "k = 7"].iloc[0]
    assert (k7["strategy"], k7["test accuracy (%)"], k7["trainable parameters"], k7["reused runs"]) == (
        "Fine-tune", 60.0, 1000, 1)
    assert df[df["run"] == "scratch"].iloc[0]["compute seconds (mean)"] == 9.0


# ---- the page under AppTest (real engine, tiny sweeps) ----------------------------------------------------------

@pytest.fixture
def made(monkeypatch):
    """A fresh scheduler per test; no dataset is measured for real (the domain order uses fixed scores)."""
    scores = {"fashion-mnist": 0.27, "animal-mnist": 0.23, "mnist": 0.16, "textures": 0.41}

    class Measured:
        def __init__(self, name: str):
            self.score = scores.get(name, 0.5)

    monkeypatch.setattr("tl_engine.inspect.similarity.measure", lambda name, *a, **kw: Measured(name))
    yield from fresh_schedulers(monkeypatch)


def page(settings: RunConfig = BASE, uploads: dict | None = None) -> AppTest:
    """The page with tiny race settings, as the race page would leave them in the session."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["tl_settings"] = {k: getattr(settings, k) for k in (
        "dataset", "train_size", "test_size", "epochs", "resolution", "frozen_stages", "seed", "device")}
    if uploads:
        at.session_state["tl_uploads"] = uploads
    at.run()
    assert not at.exception
    return at


def chart_data(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_page_renders_the_three_experiments(made):
    at = page()
    assert at.radio(key="xp_kind").options == ["Freeze depth", "Data size", "Domain similarity"]
    assert at.selectbox(key="xp_dataset").value == "mnist"  # taken from the race page's settings
    assert at.selectbox(key="xp_seeds").options == ["1", "3", "5"]
    assert any("9 races, 0 already in the results store" in c.value for c in at.caption)  # k = 7..0, scratch
    assert any("Run experiment" in i.value for i in at.info)
    at.selectbox(key="xp_seeds").set_value(3).run()
    assert any("27 races" in c.value for c in at.caption)  # the whole grid once per seed
    at.radio(key="xp_kind").set_value("size").run()
    assert any("21 races" in c.value for c in at.caption)  # 50 … 2,000 and all 3,500 of mnist, 3 seeds
    at.radio(key="xp_kind").set_value("domain").run()
    assert at.selectbox(key="xp_dataset").disabled and not at.exception
    assert any("measured similarity: " in c.value and "textures 0.41" in c.value and "mnist 0.16" in c.value
               for c in at.caption)
    assert jobs_of(made, "sweep") == []  # nothing runs before the button is pressed


def tiny_npz() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, train_images=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8), train_labels=np.arange(30) % 3,
             test_images=rng.integers(0, 255, (15, 28, 28), dtype=np.uint8), test_labels=np.arange(15) % 3)
    return buf.getvalue()


def test_the_race_pages_uploads_join_the_dataset_list(made):
    up = save_upload("mine.npz", tiny_npz())
    at = page(uploads={up.name: up})  # as the race page's uploader leaves them
    box = at.selectbox(key="xp_dataset")
    assert "Your data: mine.npz" in box.options  # labels, as the user sees them
    box.set_value(up.name).run()
    assert not at.exception and at.selectbox(key="xp_dataset").value == up.name
    at.radio(key="xp_kind").set_value("domain").run()
    assert any("5 races" in c.value for c in at.caption)  # the four bundled sets and the upload
    assert any("Plus your own: Your data: mine.npz" in c.value.replace("\u200b", "") for c in at.caption)
    assert not at.exception


@pytest.mark.slow
def test_a_sweep_runs_to_completion_then_is_answered_from_the_store(made):
    at = page()
    at.multiselect(key="xp_ks").set_value([7, 6]).run()
    assert any("3 races, 0 already" in c.value for c in at.caption)
    click(at, RUN)
    snap = run_until_finished(at, made, kind="sweep")
    assert snap.status == "done" and snap.error is None
    assert [r.config.frozen_stages for r in snap.events] == [7, 6, 0] and not any(r.reused for r in snap.events)
    assert not at.exception and not at.error
    fig = chart_data(at)
    ft = next(t for t in fig["data"] if t["name"] == "Fine-tune")
    assert list(ft["x"]) == [6, 7]
    assert any(t.get("fill") == "toself" for t in fig["data"])  # the seeds' min..max band
    title = fig["layout"]["title"]["text"]
    assert any(f"<b>{w}</b>" in title for w in STATUS_WORDS)
    box = markdown_with(at, '<div class="tl-verdict"')
    assert any(box.startswith(f'<div class="tl-verdict"><b>{w}</b>') for w in STATUS_WORDS)
    table = at.dataframe[0].value
    assert list(table["run"]) == ["k = 6", "k = 7", "scratch"] and (table["reused runs"] == 0).all()
    assert [d.proto.label for d in at.get("download_button")] == ["Download CSV (every epoch of every run)"]
    assert len(ResultStore().all("freeze")) == 3
    assert any("3 races, 3 already in the results store" in c.value for c in at.caption)

    click(at, RUN)  # again: every run comes from the store
    again = run_until_finished(at, made, kind="sweep", timeout=180)
    assert again.id != snap.id and again.status == "done"
    assert [r.reused for r in again.events] == [True, True, True]
    notes = [c.value for c in at.caption if "reused from the results store" in c.value]
    assert len(notes) == 3 and notes[0].startswith("♻️ k = 7, seed 0")
    assert (at.dataframe[0].value["reused runs"] == 1).all()


@pytest.mark.slow
def test_stop_keeps_the_finished_runs(made):
    at = page()
    at.multiselect(key="xp_ks").set_value([7, 6, 5, 4, 3]).run()
    click(at, RUN)
    assert not at.button(key="xp_stop").disabled
    wait_for(lambda: len(jobs_of(made, "sweep")[0].events) >= 1, timeout=180)
    at.button(key="xp_stop").click().run()
    snap = run_until_finished(at, made, kind="sweep")
    assert snap.status == "stopped" and 1 <= len(snap.events) < 6
    assert len(ResultStore().all()) == len(snap.events)  # finished runs are stored, the interrupted one not
    assert any(f"Stopped after {len(snap.events)} of 6 runs" in w.value for w in at.warning)
    assert chart_data(at)["data"] and not at.exception


def test_a_damaged_results_store_is_a_warning_and_the_page_still_works(made):
    default_path().parent.mkdir(parents=True, exist_ok=True)
    default_path().write_bytes(b"not a database" * 100)
    at = page()
    assert any("damaged" in w.value for w in at.warning)
    assert any("9 races, 0 already in the results store" in c.value for c in at.caption)
    assert not next(b for b in at.button if b.label == RUN).disabled
