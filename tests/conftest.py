"""Shared fixtures. Tests run on the CPU with tiny configs; the real weights and bundled data are used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Keep every test's results store out of the developer's data/ folder.
os.environ.setdefault("TL_RACE_DATA", str(ROOT / "test-output" / "data"))


@pytest.fixture
def tiny_cfg():
    """A race that takes a few seconds: 20 images, 32 px, 2 epochs."""
    from tl_engine.config import RunConfig

    return RunConfig(dataset="fashion-mnist", train_size=20, val_size=20, test_size=30, epochs=2, resolution=32,
                     batch_size=8, seed=0, device="cpu")


@pytest.fixture(autouse=True)
def private_results_store(tmp_path, monkeypatch):
    """Every test gets an empty results store, so no test is answered by another's stored race."""
    monkeypatch.setenv("TL_RACE_DATA", str(tmp_path / "data"))
