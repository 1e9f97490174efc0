"""The class page: stored races pooled (pure), drawn (pure figures), and the page under AppTest on a real store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from tl_engine.config import STRATEGY_NAMES, EpochResult, RaceResult, RunConfig
from tl_engine.experiments import pool
from tl_engine.store.results import ResultStore
from tl_ui import class_charts

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "class.py")
BASE = RunConfig(dataset="mnist", train_size=500, test_size=200, epochs=1, resolution=32, device="cpu",
                 frozen_stages=4)
STATUS_WORDS = ("supported", "not supported", "inconclusive")
FINETUNE_BY_K = {0: 0.70, 1: 0.72, 2: 0.80, 4: 0.90, 6: 0.85, 7: 0.75}
FINETUNE_BY_SIZE = {50: 0.40, 100: 0.55, 200: 0.70, 500: 0.90, 1000: 0.93, 5000: 0.97}


def race(k: int = 4, n: int = 500, seed: int = 0, created: str | None = None, dataset: str = "mnist") -> RaceResult:
    """A finished race with made-up accuracies (the figures and verdicts read only these numbers)."""
    cfg = replace(BASE, frozen_stages=k, train_size=n, seed=seed, dataset=dataset)
    ft = FINETUNE_BY_K[k] if n == 500 else FINETUNE_BY_SIZE[n]
    accs = {"scratch": 0.3 + 0.1 * (n >= 1000) + 0.3 * (n >= 5000) + 0.01 * seed, "frozen": 0.6 + 0.01 * seed,
            "finetune": ft + 0.01 * seed}
    events = [EpochResult(s, 1, 0.9, 0.5, 1.0, accs[s], 1000, 1.0, 1.0, 80.0, 5000, 1.0, 0.0, 1.0, accs[s])
              for s in STRATEGY_NAMES]
    out = RaceResult.build(cfg, "cpu", 1.0, events)
    return replace(out, extras={"created_at": created or datetime.now(timezone.utc).isoformat(timespec="seconds")})


def twelve() -> list[RaceResult]:
    """7 races at 500 images with different k (k = 4 with seeds 0, 1, 2), and 5 at k = 4 with other sizes."""
    at_k = [race(k=k) for k in (0, 2, 6, 7)] + [race(k=4, seed=s) for s in (0, 1, 2)]
    return at_k + [race(n=n) for n in (50, 100, 200, 1000, 5000)]


# ---- pooling (pure) ---------------------------------------------------------------------------------------------

def test_groups_share_everything_but_the_swept_setting_and_the_seed():
    three_epochs = race(k=2)
    races = twelve() + [replace(three_epochs, config=replace(three_epochs.config, epochs=3))]
    k_groups = pool.groups("freeze", races)
    # Most races first: the 7 at 500 images; then 5 other sizes and one 3-epoch race, one race each.
    assert [len(g.races) for g in k_groups] == [7] + [1] * 6
    assert k_groups[0].xs == [0, 2, 4, 6, 7] and dict(k_groups[0].settings)["train_size"] == 500
    assert pool.telling_fields(k_groups) == ["train_size", "epochs"]  # what tells the groups apart
    assert "frozen_stages" not in dict(k_groups[0].settings)
    size_groups = pool.groups("size", races)
    assert [len(g.races) for g in size_groups][0] == 8  # k = 4 at 50 .. 5,000 (500 with seeds 0, 1, 2)
    assert size_groups[0].describe(["frozen_stages", "epochs"]) == "k = 4 · 1 epochs"


def test_pooled_points_band_over_seeds_and_reference_pools_every_seed():
    g = pool.groups("freeze", twelve())[0]
    ft = {p.x: p for p in pool.group_points(g)["finetune"]}
    assert ft[4].n_seeds == 3 and (ft[4].min, ft[4].max) == (0.90, 0.92) and ft[0].n_seeds == 1
    ref = pool.reference(g, "scratch")
    assert ref.n_seeds == 3 and [s for s, _ in ref.test] == [0, 1, 2]  # seed 0 ran at five k: counted once
    assert pool.group_verdict(g).status in STATUS_WORDS


def test_time_window_and_csv_name_no_one():
    old = race(k=2, created=(datetime.now(timezone.utc) - timedelta(hours=3)).isoformat())
    new = race(k=6)
    assert pool.in_window([old, new], datetime.now(timezone.utc) - timedelta(hours=1)) == [new]
    assert pool.in_window([old, new], None) == [old, new]
    rows = pool.csv_rows([new])
    assert len(rows) == 3 and set(rows[0]) == set(pool.CSV_FIELDS) and rows[0]["frozen_stages"] == 6
    assert not {"id", "device", "kind", "session"} & set(rows[0])


# ---- figures (pure) -----------------------------------------------------------------------------------------------

def test_k_figure_has_one_marker_per_race_a_mean_line_and_references():
    g = pool.groups("freeze", twelve())[0]
    verdict = pool.group_verdict(g)
    fig = class_charts.k_figure(g, verdict).to_dict()
    markers = next(t for t in fig["data"] if t["name"] == "Fine-tune: one race each")
    assert len(markers["x"]) == 7 and sorted(round(y) for y in markers["y"]) == [70, 75, 80, 85, 90, 91, 92]
    assert sorted(round(x, 2) for x in markers["x"] if 3 < x < 5) == [3.88, 4.0, 4.12]  # seeds side by side
    mean = next(t for t in fig["data"] if t["name"] == "Fine-tune")
    assert list(mean["x"]) == [0, 2, 4, 6, 7] and mean["y"][2] == 91.0
    assert any(t["name"].startswith("Scratch (k does not move it; 3 seeds)") for t in fig["data"])
    assert f"<b>{verdict.status}</b>" in fig["layout"]["title"]["text"]


def test_size_figure_circles_the_claim_when_500_and_5000_ran():
    g = pool.groups("size", twelve())[0]
    verdict = pool.group_verdict(g)
    assert verdict.status == "supported"  # fine-tune 90 % on 500 against scratch 70 % on 5,000, 200 test images
    fig = class_charts.size_figure(g, verdict).to_dict()
    names = [t["name"] for t in fig["data"]]
    assert "the claim" in names and fig["layout"]["xaxis"]["type"] == "log"
    assert len(next(t for t in fig["data"] if t["name"] == "Scratch: one race each")["x"]) == 8


# ---- the page (AppTest, a real results store) -------------------------------------------------------------------

def _charts(at: AppTest) -> dict[str, dict]:
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out[spec["layout"]["xaxis"]["title"]["text"]] = spec
    return out


def _markers(spec: dict, who: str = "Fine-tune") -> int:
    return len(next(t for t in spec["data"] if t.get("name") == f"{who}: one race each")["x"])


def test_page_draws_twelve_stored_races_with_verdicts_and_shows_a_new_one():
    st.cache_resource.clear()
    store = ResultStore()
    for r in twelve():
        store.put(r)
    store.put(replace(race(k=4), config=replace(BASE, dataset="/tmp/uploads/alice-cats.zip")))  # a student's own
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    drawn = _charts(at)
    k_spec, size_spec = drawn["frozen stages k"], drawn["training images (log scale)"]
    assert _markers(k_spec) == 7 and _markers(size_spec) == 8
    words = [m.value for m in at.markdown if m.value.startswith('<div class="tl-verdict">')]
    assert len(words) == 2 and all(any(f"<b>{w}</b>" in m for w in STATUS_WORDS) for m in words)
    assert any(w in k_spec["layout"]["title"]["text"] for w in STATUS_WORDS)
    assert "1 race on students' own images are not pooled" in " ".join(c.value for c in at.caption)
    assert "alice" not in json.dumps(k_spec) + json.dumps(size_spec)

    store.put(race(k=1))  # a student's race finishes: the next poll's full run draws it
    at.run()
    assert _markers(_charts(at)["frozen stages k"]) == 8

    at.radio(key="class_window").set_value("the last hour").run()
    assert _markers(_charts(at)["frozen stages k"]) == 8  # all of them finished just now
    assert at.get("download_button"), "no CSV download"


def test_a_freeze_sweeps_scratch_only_race_is_a_reference_not_a_k():
    sweep_scratch = race(k=0)
    sweep_scratch = replace(sweep_scratch, config=replace(sweep_scratch.config, strategies=("scratch",), seed=5),
                            summary={"scratch": sweep_scratch.summary["scratch"]})
    g = pool.groups("freeze", [race(k=2), race(k=6), sweep_scratch])[0]
    assert len(g.races) == 3 and g.xs == [2, 6]
    assert [s for s, _ in pool.reference(g, "scratch").test] == [0, 5]
    assert pool.groups("freeze", [sweep_scratch]) == []  # nothing about k without fine-tune
