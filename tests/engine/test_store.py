"""The results store: keys, reuse across strategies, deleted files, killed writers, concurrent writers.

No training here: results are made-up RaceResults of the real shape, so these tests take well under a second
each (the two multi-process tests a few seconds).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from tl_engine.config import EpochResult, RaceResult, RunConfig
from tl_engine.errors import StoreError
from tl_engine.store.results import ResultStore, config_id, default_path, ignored_fields, strategy_key

ROOT = Path(__file__).resolve().parents[2]
BASE = RunConfig(dataset="mnist", train_size=40, test_size=20, epochs=2, resolution=32)


def fake_result(cfg: RunConfig, tag: float = 0.0) -> RaceResult:
    """A finished race; accuracies depend on strategy, epoch and ``tag``."""
    events = [EpochResult(s, e, 1.0 / e, 0.4, 1.1 / e, round(0.3 + 0.1 * i + 0.01 * e + tag, 6), 100 * (i + 1),
                          0.5, 0.5 * e, 80.0, 1000, 0.4, 0.1, 1.0 / e, 0.5)
              for e in range(1, cfg.epochs + 1) for i, s in enumerate(cfg.strategies)]
    details = {s: {"confusion_matrix": [[3, 1], [0, 4]], "delta_theta": {"stem": 0.0, "head": 0.5}}
               for s in cfg.strategies}
    return RaceResult.build(cfg, "cpu", 1.5, events, classes=("a", "b"), details=details)


@pytest.fixture
def store(tmp_path) -> ResultStore:
    return ResultStore(tmp_path / "results.sqlite")


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TL_RACE_DATA", raising=False)
    assert default_path() == ROOT / "data" / "results.sqlite"
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path / "elsewhere"))
    assert ResultStore().path == tmp_path / "elsewhere" / "results.sqlite"


def test_key_is_the_full_config_and_survives_json():
    assert config_id(BASE) == config_id(RunConfig.from_dict(BASE.to_dict()))
    assert config_id(replace(BASE, lr_head=1)) == config_id(replace(BASE, lr_head=1.0))  # same number
    ids = {config_id(replace(BASE, **{k: v})) for k, v in
           [("seed", 1), ("epochs", 3), ("frozen_stages", 5), ("strategies", ("scratch",)), ("augment", True)]}
    assert len(ids | {config_id(BASE)}) == 6  # every field is part of the key
    assert len(config_id(BASE)) == 64


def test_put_then_get_returns_the_same_numbers(store):
    assert store.get(BASE) is None
    result = fake_result(BASE)
    run_id = store.put(result, kind="size")
    rec = store.get(BASE)
    assert rec.extras["id"] == run_id == config_id(BASE) and rec.extras["kind"] == "size"
    assert rec.to_dict() == result.to_dict()  # everything, details included, round-trips
    assert rec.summary["scratch"].confusion_matrix == [[3, 1], [0, 4]]
    assert store.get(replace(BASE, seed=1)) is None


def test_unfinished_race_is_refused(store):
    full = fake_result(BASE)
    partial = RaceResult.build(BASE, "cpu", 1.0, list(full.epochs[:-1]))
    assert not partial.completed
    with pytest.raises(ValueError, match="only finished races"):
        store.put(partial)
    with pytest.raises(ValueError):
        store.put(replace(full, completed=False))
    assert store.all() == []


def test_all_filters_by_kind(store):
    store.put(fake_result(BASE), kind="race")
    store.put(fake_result(replace(BASE, seed=1)), kind="freeze")
    assert len(store.all()) == 2
    assert [r.config.seed for r in store.all("freeze")] == [1]


def test_ignored_fields_follow_the_strategy_table():
    added = {"early_stage", "gradual_ratio", "head_epochs", "lora_rank"}  # the added racers' knobs
    assert ignored_fields("scratch") == {"strategies", "frozen_stages", "lr_head", "lr_body"} | added
    assert ignored_fields("frozen") == {"strategies", "frozen_stages", "lr_body", "lr_scratch"} | added
    assert ignored_fields("finetune") == {"strategies", "lr_scratch"} | added
    assert strategy_key(BASE, "scratch") == strategy_key(replace(BASE, frozen_stages=0, lr_body=0.1), "scratch")
    assert strategy_key(BASE, "finetune") != strategy_key(replace(BASE, frozen_stages=0), "finetune")


def test_a_strategy_is_reused_from_a_race_that_ran_it(store):
    trio = replace(BASE, frozen_stages=4)
    store.put(fake_result(trio))
    want = tuple(e for e in fake_result(trio).epochs if e.strategy == "scratch")
    # Scratch ignores k, so a scratch-only config with another k is answered from the trio.
    rec = store.get(replace(BASE, strategies=("scratch",), frozen_stages=0))
    assert rec.extras["kind"] == "assembled" and rec.extras["from_ids"] == [config_id(trio)]
    assert rec.epochs == want and rec.completed
    assert rec.summary["scratch"] == fake_result(trio).summary["scratch"]  # details travel along
    # Fine-tune depends on k: another k is not a hit. The same k is.
    assert store.get(replace(BASE, strategies=("finetune",), frozen_stages=3)) is None
    assert store.get(replace(BASE, strategies=("finetune",), frozen_stages=4)) is not None
    # A pair in another order is assembled in race order (round-robin by epoch).
    pair = store.get(replace(trio, strategies=("finetune", "scratch")))
    assert [(e.strategy, e.epoch) for e in pair.epochs] == [
        ("finetune", 1), ("scratch", 1), ("finetune", 2), ("scratch", 2)]
    assert store.all() == [store.get(trio)]  # assembling stores nothing new


def test_deleting_the_file_is_safe(store):
    store.put(fake_result(BASE))
    for p in store.path.parent.glob("results.sqlite*"):
        p.unlink()
    assert store.get(BASE) is None and store.all() == []
    store.put(fake_result(BASE, tag=0.1))
    assert store.get(BASE).epochs == fake_result(BASE, tag=0.1).epochs
    assert store.integrity_ok()


@pytest.mark.parametrize("damage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_file_is_a_store_error_with_what_to_do(store, damage):
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(damage)
    with pytest.raises(StoreError, match="Delete the file"):
        store.get(BASE)
    with pytest.raises(StoreError):
        store.put(fake_result(BASE))


CHILD = textwrap.dedent("""
    import sqlite3, sys, time
    from dataclasses import replace
    sys.path[:0] = [{root!r}, {tests!r}]
    from test_store import BASE, fake_result
    from tl_engine.store.results import ResultStore

    store = ResultStore({path!r})
    for seed in (0, 1):
        store.put(fake_result(replace(BASE, seed=seed)))
        print("stored", seed, flush=True)

    real_connect = sqlite3.connect
    def connect(*args, **kwargs):
        con = real_connect(*args, **kwargs)
        def trace(sql):
            if sql.startswith("INSERT INTO strategy_races"):  # the run row is written, not committed
                print("mid-write", flush=True)
                time.sleep(60)
        con.set_trace_callback(trace)
        return con
    sqlite3.connect = connect
    store.put(fake_result(replace(BASE, seed=2)))
    print("finished the third", flush=True)
""")


@pytest.mark.slow
def test_a_writer_killed_mid_transaction_leaves_finished_runs_intact(tmp_path):
    path = tmp_path / "results.sqlite"
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests" / "engine"), path=str(path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        lines = [child.stdout.readline().strip() for _ in range(3)]
        assert lines == ["stored 0", "stored 1", "mid-write"]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    store = ResultStore(path)
    assert store.integrity_ok()
    assert sorted(r.config.seed for r in store.all()) == [0, 1]
    for seed in (0, 1):
        assert store.get(replace(BASE, seed=seed)).epochs == fake_result(replace(BASE, seed=seed)).epochs
    third = replace(BASE, seed=2)
    assert store.get(third) is None  # the killed run is not reported at all, let alone as finished
    assert store.get(replace(third, strategies=("scratch",))) is None  # nor any of its strategies
    store.put(fake_result(third))  # and the lock it held is gone
    assert store.get(third) is not None


def _writer(path: str, first_seed: int, n: int, start) -> None:
    start.wait()
    store = ResultStore(path)
    for seed in range(first_seed, first_seed + n):
        store.put(fake_result(replace(BASE, seed=seed)))
    store.put(fake_result(BASE))  # both processes also write the same config


@pytest.mark.slow
def test_two_processes_writing_at_once(tmp_path):
    path = str(tmp_path / "results.sqlite")
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter, like a second app or CLI
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, first, 25, start)) for first in (100, 200)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    store = ResultStore(path)
    assert store.integrity_ok()
    seeds = sorted(r.config.seed for r in store.all())
    assert seeds == [0, *range(100, 125), *range(200, 225)]
    for seed in (100, 124, 200, 224):
        cfg = replace(BASE, seed=seed)
        assert store.get(cfg).summary == fake_result(cfg).summary


def test_the_stamp_changes_when_a_race_is_written(store):
    store.all()
    before = store.stamp()
    store.all()
    assert store.stamp() == before  # reading changes nothing: a page's cached copy stays valid
    store.put(fake_result(BASE))
    after = store.stamp()
    assert after != before
    store.put(fake_result(replace(BASE, seed=1)))
    assert store.stamp() != after
