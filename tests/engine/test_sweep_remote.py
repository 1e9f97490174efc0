"""`sweep --backend process|ray`: each race of the grid is its own scheduler job, with the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["freeze", "--ks", "7", "6", "--dataset", "fashion-mnist", "--train-size", "20", "--val-size", "20",
        "--test-size", "30", "--epochs", "1", "--resolution", "32", "--device", "cpu"]
pytestmark = pytest.mark.slow


def _one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def sweep(tmp_path: Path, name: str, *extra: str) -> dict:
    """The sweep in a fresh interpreter. Every race gets one torch thread: the local sweep is pinned to one core,
    the backends get TL_RACE_WORKERS = 2 on this 2-core machine, so 1 thread each (a float sum in another order
    may flip a test image in a 20-image race, and the numbers are compared exactly)."""
    out = tmp_path / f"{name}.json"
    env = {"PATH": "/usr/bin:/bin", "TL_RACE_DATA": str(tmp_path / name), "TL_RACE_WORKERS": "2"}
    r = subprocess.run([sys.executable, "-m", "tl_engine", "sweep", *TINY, "--json", str(out), *extra],
                       cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
                       preexec_fn=None if extra else _one_core)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(out.read_text())


def accuracies(data: dict) -> list:
    return [(r["config"]["frozen_stages"], r["config"]["strategies"],
             {s: v["final_test_acc"] for s, v in r["summary"].items()}) for r in data["runs"]]


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_a_sweep_on_a_backend_gives_the_local_numbers(tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray")
    local = sweep(tmp_path, "local")
    remote = sweep(tmp_path, backend, "--backend", backend)
    assert len(remote["runs"]) == 3  # k = 7, k = 6, scratch
    assert accuracies(remote) == accuracies(local)  # same seed, same numbers: only where they ran differs
    assert remote["verdict"]["status"] in ("supported", "not supported", "inconclusive")
