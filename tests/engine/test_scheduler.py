"""The server's job system: joining, the queue, stopping and closed tabs, the thread budget, reuse from the
store, errors as messages, and real races streamed from worker processes (and Ray, when installed)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tl_engine.config import EpochResult
from tl_engine.experiments.sweep import SweepRun
from tl_engine.jobs.backends import default_start_method, warm
from tl_engine.jobs.scheduler import Scheduler, default_workers
from tl_engine.jobs.state import Job, estimate_waits
from tl_engine.store.results import ResultStore
from tl_engine.training.machine import usable_cpus


def wait_for(pred, timeout: float = 120.0, every: float = 0.05) -> None:
    t0 = time.time()
    while not pred():
        if time.time() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@pytest.fixture
def sched(request):
    """A scheduler factory; every scheduler made is shut down after the test."""
    made: list[Scheduler] = []

    def make(**kw) -> Scheduler:
        s = Scheduler(**{"backend": "thread", "workers": 1, **kw})
        made.append(s)
        return s

    yield make
    for s in made:
        s.shutdown()


@pytest.fixture
def slow_cfg(tiny_cfg):
    """A race long enough to still be running while a test looks at the queue (it is stopped, not awaited)."""
    return replace(tiny_cfg, train_size=200, epochs=20)


def status(s: Scheduler, job: str) -> str:
    return s.snapshot(job).status


def test_queue_order_release_and_stop_free_the_slot(sched, slow_cfg):
    s = sched(workers=1)
    a = s.submit_race(slow_cfg)
    b, c, d = (s.submit_race(replace(slow_cfg, seed=i)) for i in (1, 2, 3))
    wait_for(lambda: status(s, a) == "running")
    assert [s.snapshot(j).queue_position for j in (a, b, c, d)] == [None, 1, 2, 3]
    assert s.snapshot(b).eta_seconds is None  # nothing has finished: no measured duration to go on

    s.release(b)  # a closed tab: the last watcher of a queued job takes it out of the queue
    assert status(s, b) == "stopped"
    assert [s.snapshot(j).queue_position for j in (c, d)] == [1, 2]

    s.stop(a)  # the Stop button: ends within a batch, and the next job gets the slot
    wait_for(lambda: status(s, a) == "stopped", timeout=60)
    wait_for(lambda: status(s, c) == "running", timeout=10)
    assert s.snapshot(d).queue_position == 1
    assert s.snapshot(a).result is not None and not s.snapshot(a).result.completed

    s.release(c)  # a closed tab on a running job: stopped at once, its slot goes to the next job
    assert status(s, c) == "stopped"
    wait_for(lambda: status(s, d) == "running", timeout=60)
    s.stop(d)


def test_joined_job_needs_every_watcher_to_leave(sched, slow_cfg):
    s = sched(workers=1)
    a = s.submit_race(slow_cfg)
    assert s.submit_race(slow_cfg) == a and s.snapshot(a).watchers == 2
    wait_for(lambda: status(s, a) == "running")
    s.release(a)
    assert status(s, a) == "running" and s.snapshot(a).watchers == 1  # the other tab still watches
    s.release(a)
    assert status(s, a) == "stopped"
    b = s.submit_race(slow_cfg)  # a stopped job is not joined: asking again starts afresh
    assert b != a
    s.stop(b)


def test_thread_budget_never_exceeds_the_cores(sched, slow_cfg, monkeypatch):
    cores = usable_cpus()
    for workers in (1, 2, cores, cores * 4):
        s = sched(workers=workers)
        assert s.workers <= cores and s.threads_per_job >= 1
        assert s.workers * s.threads_per_job <= cores
    monkeypatch.setenv("TL_RACE_WORKERS", "3")
    assert default_workers() == 3
    s = sched(workers=cores * 4)
    jobs = [s.submit_race(replace(slow_cfg, seed=i)) for i in range(s.workers + 1)]
    wait_for(lambda: sum(status(s, j) == "running" for j in jobs) == s.workers)
    for _ in range(20):
        assert 0 < s.threads_in_use() <= cores
        time.sleep(0.02)
    assert s.snapshot(jobs[-1]).queue_position == 1  # one more than the slots: it waits
    for j in jobs:
        s.stop(j)


def test_an_error_is_a_message_and_the_scheduler_goes_on(sched, tiny_cfg, slow_cfg):
    s = sched(workers=1)
    bad = s.submit_race(replace(tiny_cfg, dataset="no-such-dataset"))
    good = s.submit_race(slow_cfg)
    wait_for(lambda: status(s, bad) == "error", timeout=30)
    err = s.snapshot(bad).error
    assert err and "no-such-dataset" in err and "Traceback" not in err
    wait_for(lambda: status(s, good) == "running", timeout=30)
    s.stop(good)
    with pytest.raises(KeyError):
        s.snapshot("no-such-job")


@pytest.mark.slow
def test_joined_race_trains_once_is_stored_and_then_reused(sched, tiny_cfg, tmp_path):
    store_path = tmp_path / "results.sqlite"
    s = sched(workers=1, store_path=store_path)
    a = s.submit_race(tiny_cfg)
    assert s.submit_race(tiny_cfg) == a
    wait_for(lambda: s.snapshot(a).finished)
    snap = s.snapshot(a)
    assert snap.status == "done", snap.error
    assert len(snap.events) == snap.total == tiny_cfg.total_epochs  # one race's epochs, not two races'
    assert all(isinstance(e, EpochResult) for e in snap.events)
    assert snap.result is not None and snap.result.completed and snap.progress == 1.0
    assert len(s.jobs()) == 1
    stored = ResultStore(store_path).get(tiny_cfg)  # written before the job said "done"
    assert stored is not None and [e.test_acc for e in stored.epochs] == [e.test_acc for e in snap.events]

    again = s.snapshot(s.submit_race(tiny_cfg))  # answered from the store at once
    assert again.status == "done" and again.reused_from == stored.extras["created_at"]
    assert again.events == stored.epochs
    fresh = s.submit_race(tiny_cfg, reuse=False)
    assert s.snapshot(fresh).status in ("queued", "running") and s.snapshot(fresh).reused_from is None
    s.stop(fresh)
    # Now a duration has been measured: a queued job gets a waiting time.
    b, c = s.submit_race(replace(tiny_cfg, seed=5)), s.submit_race(replace(tiny_cfg, seed=6))
    wait_for(lambda: status(s, b) == "running")
    eta = s.snapshot(c).eta_seconds
    assert eta is not None and eta >= 0
    s.release(b)
    s.release(c)


def test_estimate_waits_plays_the_queue_out_on_the_slots(tiny_cfg):
    now = 1000.0
    running = Job("race", "r", tiny_cfg, ("r",), status="running", total=10, started_at=now - 30,
                  events=tuple(range(5)))  # half done after 30 s: 30 s left
    queued = [Job("race", f"q{i}", tiny_cfg, (i,)) for i in range(3)]
    cost = queued[0].cost_estimate
    durations = [(cost, 20.0)]  # a race of this cost took 20 s
    assert estimate_waits([running], queued, 1, durations, now) == [30.0, 50.0, 70.0]
    assert estimate_waits([running], queued, 2, durations, now) == [0.0, 20.0, 30.0]
    assert estimate_waits([running], queued, 1, [], now) == [None, None, None]


@pytest.mark.slow
def test_process_backend_streams_a_real_race_and_kills_a_closed_tab(sched, tiny_cfg, slow_cfg, tmp_path):
    s = sched(workers=1, backend="process", store_path=tmp_path / "r.sqlite")
    a = s.submit_race(tiny_cfg, keep_models=True)
    closed = s.submit_race(slow_cfg)
    seen: list[int] = []
    while not s.snapshot(a).finished:
        seen.append(len(s.snapshot(a).events))
        time.sleep(0.05)
    snap = s.snapshot(a)
    assert snap.status == "done", snap.error
    assert len(snap.events) == tiny_cfg.total_epochs and len(set(seen)) > 2  # they arrived one by one
    assert [e.strategy for e in snap.events[:3]] == list(tiny_cfg.strategies)
    assert ResultStore(tmp_path / "r.sqlite").get(tiny_cfg) is not None
    # The worker ran with its budget, as it saw it itself: torch threads, OMP_NUM_THREADS, its own cores.
    assert snap.worker["torch_threads"] == s.threads_per_job == snap.threads
    assert snap.worker["omp_num_threads"] == str(s.threads_per_job)
    assert len(snap.worker["cpus"]) == s.threads_per_job and snap.worker["pid"] != os.getpid()

    import torch

    from tl_engine.inspect.export import load_exported
    from tl_engine.inspect.keep import INSIDE_FILE

    assert (Path(snap.models_dir) / INSIDE_FILE).is_file()
    for name in tiny_cfg.strategies:  # each trained network, exported by the worker that trained it
        net, meta = load_exported(Path(snap.models_dir) / f"{name}.pt")
        assert meta["resolution"] == tiny_cfg.resolution and len(meta["classes"]) == 10
        probs = net.classify(torch.zeros(2, 3, tiny_cfg.resolution, tiny_cfg.resolution))
        assert probs.shape == (2, 10) and torch.allclose(probs.sum(1), torch.ones(2), atol=1e-4)

    wait_for(lambda: status(s, closed) == "running", timeout=30)
    s.release(closed)  # the worker process is killed: the slot is free for the next job at once
    nxt = s.submit_race(replace(slow_cfg, seed=9))
    wait_for(lambda: status(s, nxt) == "running", timeout=10)
    s.stop(nxt)
    wait_for(lambda: status(s, nxt) == "stopped", timeout=300)  # data preparation is not interruptible


@pytest.mark.slow
def test_a_warmed_fork_server_is_the_one_jobs_fork_from(sched, tiny_cfg, tmp_path):
    """The pages warm the worker processes' fork server ahead of the first race (torch imported once, off that
    race's path); the scheduler's jobs then fork from that very process."""
    import multiprocessing.forkserver

    if default_start_method() != "forkserver":
        pytest.skip("this platform has no forkserver start method")
    assert not warm("thread") and not warm("process:spawn")  # nothing to warm there
    assert warm("process") and warm("process")  # idempotent
    server = multiprocessing.forkserver._forkserver._forkserver_pid
    assert server and Path(f"/proc/{server}").exists()
    s = sched(workers=1, backend="process", store_path=tmp_path / "r.sqlite")
    job = s.submit_race(tiny_cfg)
    wait_for(lambda: s.snapshot(job).finished, timeout=300)
    snap = s.snapshot(job)
    assert snap.status == "done", snap.error
    assert snap.worker["ppid"] == server


@pytest.mark.slow
def test_sweep_job_streams_runs(sched, tiny_cfg):
    s = sched(workers=1)
    j = s.submit_sweep("freeze", replace(tiny_cfg, epochs=1), {"ks": [7]})
    assert s.submit_sweep("freeze", replace(tiny_cfg, epochs=1), {"ks": [7]}) == j
    assert s.snapshot(j).total == 2  # k = 7, then the scratch reference
    wait_for(lambda: s.snapshot(j).finished)
    snap = s.snapshot(j)
    assert snap.status == "done", snap.error
    assert len(snap.events) == 2 and all(isinstance(r, SweepRun) for r in snap.events)
    assert snap.sweep_progress is not None and snap.progress == 1.0


@pytest.mark.slow
def test_ray_backend_runs_a_race(sched, tiny_cfg, tmp_path):
    pytest.importorskip("ray")
    s = sched(workers=1, backend="ray", store_path=tmp_path / "ray.sqlite")
    a = s.submit_race(tiny_cfg)
    wait_for(lambda: s.snapshot(a).finished, timeout=600)  # Ray starts its own processes: minutes when busy
    snap = s.snapshot(a)
    assert snap.status == "done", snap.error
    assert len(snap.events) == tiny_cfg.total_epochs
    assert ResultStore(tmp_path / "ray.sqlite").get(tiny_cfg) is not None
    assert s.snapshot(s.submit_race(tiny_cfg)).reused_from is not None

