"""Estimates come from durations measured on this machine (tl_engine.store.timings), checked with a fake clock."""

from __future__ import annotations

import json

import pytest

from tl_engine.experiments import Progress
from tl_engine.store import Timings
from tl_engine.store.timings import KEEP
from tl_ui import timing
from tl_ui.experiment_charts import estimate_text, progress_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_estimate_is_measured_seconds_per_unit_times_the_units(tmp_path):
    clock = FakeClock()
    t = Timings(tmp_path / "timings.json", clock=clock)
    assert t.estimate("similarity:mobilenet_v2", 200) is None and t.count("race") == 0  # nothing measured yet
    with t.timed("similarity:mobilenet_v2", 200):
        clock.now += 27.0  # 200 images took 27 s
    assert t.estimate("similarity:mobilenet_v2", 200) == pytest.approx(27.0)
    assert t.estimate("similarity:mobilenet_v2", 100) == pytest.approx(13.5)
    assert t.estimate("race", 1) is None  # kinds do not mix
    # The median: one run on a loaded machine (310 s, as the issue saw) does not swing the estimate.
    for seconds in (29.0, 310.0):
        with t.timed("similarity:mobilenet_v2", 200):
            clock.now += seconds
    assert t.estimate("similarity:mobilenet_v2", 200) == pytest.approx(29.0)
    again = Timings(tmp_path / "timings.json")  # on disk: another process (or tomorrow) reads the same
    assert again.count("similarity:mobilenet_v2") == 3


def test_failed_work_and_useless_measurements_are_not_kept(tmp_path):
    clock = FakeClock()
    t = Timings(tmp_path / "timings.json", clock=clock)
    with pytest.raises(RuntimeError), t.timed("race", 10):
        clock.now += 5
        raise RuntimeError("stopped")
    t.record("race", 0, 5.0)
    t.record("race", 10, 0.0)
    assert t.count("race") == 0
    for i in range(KEEP + 5):
        t.record("race", 1, 1.0 + i)
    assert t.count("race") == KEEP and t.rate("race") == pytest.approx(5 + (KEEP - 1) / 2 + 1)  # the newest KEEP


def test_a_damaged_or_missing_file_means_not_measured(tmp_path):
    path = tmp_path / "timings.json"
    path.write_text("{not json")
    assert Timings(path).rate("race") is None
    path.write_text(json.dumps({"race": [[1, 2], "x", [0, 1], [True]], "other": 3}))
    assert Timings(path).rate("race") == 2.0
    Timings(path).record("race", 2, 2.0)  # a damaged file is replaced, not a crash
    assert Timings(path).count("race") == 2
    assert Timings.beside(tmp_path / "results.sqlite").path == path


def test_the_measure_button_and_its_progress_say_what_was_measured():
    assert timing.button_label("Measure", None) == "Measure (not timed on this machine yet)"
    assert timing.button_label("Measure", 27.4) == "Measure (about 27 s on this machine)"
    assert timing.button_label("Measure", 310) == "Measure (about 5 min on this machine)"
    fill, text = timing.progress(13.5, 27.0, "Running")
    assert fill == pytest.approx(0.5) and text == "Running · 14 s of about 27 s (measured here)"
    assert timing.progress(60.0, 27.0, "Running")[0] == 0.99  # slower than measured: never "done" before it is
    assert timing.progress(3.0, None, "Running")[0] == 0.0


def test_the_sweep_caption_and_progress_use_measured_times():
    assert estimate_text(None, 0).startswith("time not measured on this machine yet")
    assert estimate_text(754.0, 3) == "about 12 min 34 s on this machine (from 3 measured runs)"
    assert estimate_text(0.0, 3).startswith("nothing to train")
    p = Progress(2, 21, 1, 0.1, None, None)
    assert progress_text(p).endswith("estimating time left (no race measured on this machine yet)…")
    assert progress_text(Progress(2, 21, 1, 0.1, 600.0, None)).endswith("about 10 min 00 s left")


def test_run_timed_records_the_work_unless_it_came_from_a_cache(tmp_path):
    clock = FakeClock()
    t = Timings(tmp_path / "timings.json", clock=clock)

    def work(cached: bool) -> dict:
        clock.now += 20.0
        return {"cached": cached}

    assert timing.run_timed(lambda: work(False), "sim", 200, "Running", record=lambda r: not r["cached"],
                            timings=t) == {"cached": False}
    assert t.estimate("sim", 200) == pytest.approx(20.0)
    timing.run_timed(lambda: work(True), "sim", 200, "Running", record=lambda r: not r["cached"], timings=t)
    assert t.count("sim") == 1  # a cache hit takes no time worth keeping
    with pytest.raises(ValueError, match="bad"):
        timing.run_timed(lambda: (_ for _ in ()).throw(ValueError("bad")), "sim", 200, "Running", timings=t)
    assert t.count("sim") == 1
