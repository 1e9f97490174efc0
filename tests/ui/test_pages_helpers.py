"""What the page tests share (a clean scheduler per test, rerunning a page until its job ends), and the pages'
job layer itself: tabs watching one job, joining, releasing, polling only while a job is active."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tl_engine.config import EpochResult, RunConfig
from tl_engine.jobs.scheduler import JobSnapshot, Scheduler
from tl_ui import jobs

TINY = {"train": "20", "test": "200", "epochs": "2", "res": "32"}  # a race of a few seconds on a 2-core CPU


def clear_caches() -> None:
    st.cache_resource.clear()  # the global scheduler, the session's Watching (all AppTests share one session)
    st.cache_data.clear()


def fresh_schedulers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Scheduler]]:
    """For a fixture (``yield from fresh_schedulers(monkeypatch)``): every page in the test gets a fresh
    thread-backend scheduler (made by tl_ui.jobs.scheduler() after the env is set, so it uses this test's
    results store); all are shut down, and the caches cleared, after.

    Shutting down joins the training threads: a torch thread still running at interpreter exit aborts it
    ("terminate called without an active exception")."""
    monkeypatch.setenv("TL_RACE_BACKEND", "thread")
    monkeypatch.setenv("TL_RACE_WORKERS", "1")
    made: list[Scheduler] = []
    real = jobs.Scheduler

    def make(*args, **kw) -> Scheduler:
        s = real(*args, **kw)
        made.append(s)
        return s

    monkeypatch.setattr(jobs, "Scheduler", make)
    clear_caches()  # a scheduler left by a test that did not use this fixture must not be reused
    yield made
    for s in made:
        s.shutdown()
    clear_caches()


def the_scheduler(made: list[Scheduler]) -> Scheduler:
    assert len(made) == 1, f"expected one scheduler per server, got {len(made)}"
    return made[0]


def jobs_of(made: list[Scheduler], kind: str) -> list[JobSnapshot]:
    return [j for s in made for j in s.jobs() if j.kind == kind]


def run_until_finished(at: AppTest, made: list[Scheduler], kind: str = "race", timeout: float = 600,
                       rerun_every: float = 3.0) -> JobSnapshot:
    """Wait until every job of ``kind`` has finished, rerunning the page now and then (AppTest never fires
    run_every; each rerun shares the GIL with a thread-backend job, so not every poll); returns the newest."""
    deadline = time.time() + timeout
    last_run = time.time()
    while any(j.active for j in jobs_of(made, kind)):
        if time.time() > deadline:
            raise AssertionError(f"the {kind} did not finish within {timeout} s: "
                                 f"{[(j.status, len(j.events), j.total) for j in jobs_of(made, kind)]}")
        time.sleep(0.25)
        if time.time() - last_run > rerun_every:
            at.run()
            last_run = time.time()
    at.run()  # the page as it looks once the job is over (the fragment's one full rerun)
    at.run()
    return jobs_of(made, kind)[-1]


def wait_for(pred: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)


def markdown_with(at: AppTest, marker: str) -> str:
    return next(m.value for m in at.markdown if marker in m.value)


def chart(at: AppTest, key: str) -> list[dict]:
    """Traces of the plotly chart whose element id carries ``key``."""
    for el in at.get("plotly_chart"):
        if key in el.proto.id:
            return json.loads(el.proto.spec)["data"]
    raise AssertionError(f"no plotly chart {key!r}")


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


# ---- the pages' job layer (tl_ui.jobs) ---------------------------------------------------------------------------

def test_poll_only_while_a_job_is_queued_or_running():
    snap = JobSnapshot("race", "j", RunConfig(), "queued", (), 6, 0.0, None, 1, None, None, None, None, None, 1,
                       None, None)
    assert jobs.poll_every(None) is None
    assert jobs.poll_every(snap) == jobs.POLL_SECONDS  # queued
    assert jobs.poll_every(replace(snap, status="running")) == jobs.POLL_FIRST_SECONDS  # no epoch yet
    epochs = tuple(EpochResult(s, 1, 1.0, 0.5, 1.0, 0.5, 10, 1.0, 1.0, 100.0) for s in RunConfig().strategies)
    # Polled fast until every curve has its first point (scratch's alone is not the race's first points).
    assert jobs.poll_every(replace(snap, status="running", events=epochs[:1])) == jobs.POLL_FIRST_SECONDS
    assert jobs.poll_every(replace(snap, status="running", events=epochs)) == jobs.POLL_SECONDS
    assert all(jobs.poll_every(replace(snap, status=s)) is None for s in ("done", "stopped", "error"))
    # A class shares the server's poll budget: 20 polling tabs poll 20 / POLLS_PER_SECOND s apart, capped.
    assert jobs.poll_every(snap, tabs=20) == min(jobs.POLL_MAX_SECONDS, 20 / jobs.POLLS_PER_SECOND) > jobs.POLL_SECONDS
    assert jobs.poll_every(snap, tabs=1000) == jobs.POLL_MAX_SECONDS
    assert jobs.poll_every(snap, tabs=2) == jobs.POLL_SECONDS
    assert jobs.poll_every(replace(snap, status="running"), tabs=8) == 8 / jobs.POLLS_PER_SECOND  # budget first


@pytest.mark.parametrize(("want", "given", "drifted"), [
    (3.0, 1.0, True),  # the first points are in: slow down (one full rerun)
    (2.0, 3.0, True),  # four tabs share the budget: 1 s -> 2 s, 3 s -> 2 s
    (3.0, 2.0, True),
    (3.0, 2.5, False),  # a tab more or less: keep the interval, no rerun
    (None, 1.0, False),  # the job ended: the fragment's own full rerun stops the polling
    (3.0, None, False),
])
def test_a_tab_reruns_in_full_only_when_its_poll_interval_drifts(monkeypatch, want, given, drifted):
    monkeypatch.setattr(jobs, "poll_plan", lambda snap: want)
    assert jobs.poll_drifted(None, given) is drifted


@pytest.mark.slow
def test_two_tabs_asking_for_the_same_race_share_one_job(tiny_cfg, tmp_path):
    s = Scheduler(workers=1, backend="thread", store_path=tmp_path / "r.sqlite")
    try:
        blocker = s.submit_race(replace(tiny_cfg, train_size=200, epochs=20))  # holds the only slot
        tab_a, tab_b = jobs.Watching(), jobs.Watching()
        cfg = replace(tiny_cfg, seed=3)
        for tab in (tab_a, tab_b):
            tab.watch(s, "race", s.submit_race(cfg, keep_models=True))
        races = [j for j in s.jobs() if j.cfg == cfg]
        assert len(races) == 1 and races[0].watchers == 2 and races[0].status == "queued"
        assert tab_a.jobs == tab_b.jobs == {"race": races[0].id}
        assert s.watching_tabs() == 3  # the blocker's submitter and the two tabs: each polls
        tab_a.release_all()  # one tab closed: the other still watches, the job stays
        assert s.snapshot(races[0].id).status == "queued" and s.snapshot(races[0].id).watchers == 1
        assert s.watching_tabs() == 2
        tab_b.watch(s, "race", s.submit_race(replace(cfg, seed=4)))  # a new race replaces the one it watched
        assert s.snapshot(races[0].id).status == "stopped"  # nobody watches it: it left the queue
        tab_b.release_all()
        s.release(blocker)
        assert all(j.status == "stopped" for j in s.jobs())
    finally:
        s.shutdown()


def test_the_race_page_paints_its_controls_before_torch_loads():
    """Every module the race page imports at its top is torch-free (torch's import costs seconds on the first
    paint of a fresh server), and a tab that starts no job starts no scheduler."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    tree = ast.parse((root / "pages" / "race.py").read_text())
    imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
                        and getattr(n, "module", "") != "__future__")
    code = f"{imports}\nimport sys\nprint(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout[:300]

