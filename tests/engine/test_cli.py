"""The headless CLI: what a user types and what other scripts read."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from tl_engine.config import RunConfig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # each test starts python and most train


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tl_engine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_race_prints_progress_and_table_and_writes_json(tmp_path):
    out = tmp_path / "out.json"
    r = cli("race", "--dataset", "fashion-mnist", "--train-size", "20", "--val-size", "20", "--test-size", "20",
            "--frozen", "5", "--epochs", "2", "--resolution", "32", "--seed", "0", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("epoch") >= 6 and "trainable" in r.stdout and "wall time" in r.stdout
    data = json.loads(out.read_text())
    assert set(data) >= {"config", "device", "wall_seconds", "epochs", "summary"}
    assert data["config"] == {**RunConfig(dataset="fashion-mnist", train_size=20, val_size=20, test_size=20,
                                          frozen_stages=5, epochs=2, resolution=32).to_dict()}
    assert [(e["strategy"], e["epoch"]) for e in data["epochs"]][:3] == [("scratch", 1), ("frozen", 1),
                                                                         ("finetune", 1)]
    assert len(data["epochs"]) == 6
    assert set(data["epochs"][0]) >= {"strategy", "epoch", "train_loss", "train_acc", "test_acc", "val_acc",
                                      "trainable_params", "seconds", "train_seconds", "eval_seconds",
                                      "cum_seconds", "images_per_s"}
    for name in ("scratch", "frozen", "finetune"):
        s = data["summary"][name]
        assert set(s) >= {"final_test_acc", "final_val_acc", "trainable_params", "total_params", "compute_seconds",
                          "confusion_matrix", "per_class_acc", "delta_theta"}
        assert sum(s["confusion_matrix"][i][i] for i in range(10)) / 20 == s["final_test_acc"]
        last = [e for e in data["epochs"] if e["strategy"] == name][-1]
        assert s["final_test_acc"] == last["test_acc"] and s["compute_seconds"] == last["cum_seconds"]


def test_bad_input_is_one_clear_line_not_a_traceback():
    r = cli("race", "--frozen", "9", "--epochs", "1")
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr and "0 and 7" in r.stderr
    r = cli("race", "--dataset", "no/such/folder", "--epochs", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no/such/folder" in r.stderr
    for bad in (["--seed", "-1"], ["--lr-head", "inf"], ["--lr-body", "1e20"]):
        r = cli("race", "--epochs", "1", *bad)
        assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr, bad
    r = cli("race", "--seed", "1e20")  # not a whole number: argparse's own one-line usage error
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_json_to_a_missing_folder_fails_before_training(tmp_path):
    r = cli("race", "--epochs", "1", "--json", str(tmp_path / "no" / "such" / "out.json"), timeout=60)
    assert r.returncode == 2 and "does not exist" in r.stderr and "epoch" not in r.stdout


def test_help_documents_every_option_and_datasets_lists_them():
    h = cli("race", "--help").stdout
    for f in fields(RunConfig):
        if f.name not in ("strategies", "weight_decay"):
            flag = {"frozen_stages": "--frozen"}.get(f.name, "--" + f.name.replace("_", "-"))
            assert flag in h, flag
    d = cli("datasets")
    assert d.returncode == 0
    for name in ("fashion-mnist", "animal-mnist", "mnist", "textures"):
        assert name in d.stdout
    listing = json.loads(cli("datasets", "--json").stdout)
    assert all(i["licence"] and i["n_val"] > 0 and "similarity" not in i for i in listing)


def test_race_on_a_users_folder_reports_skipped_files(tmp_path):
    from PIL import Image

    for c, value in (("dark", 40), ("light", 210)):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (40, 30), value + 3 * i).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "imgs" / "dark" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "r.json"
    r = cli("race", "--dataset", str(tmp_path / "imgs"), "--train-size", "4", "--epochs", "1",
            "--resolution", "32", "--json", str(out))
    assert r.returncode == 0, r.stderr
    # The default test and validation sizes are more than this set has: all of it is used, with a note.
    assert "imgs: the default of 1,000 test images does not fit; using all 2 it has." in r.stdout
    assert "splits: No train/ and test/ folders" in r.stdout and "noise: Test set: 2 images" in r.stdout
    assert "skipped 1 file(s)" in r.stdout and "damaged" in r.stdout
    data = json.loads(out.read_text())
    assert data["skipped_images"] == 1 and data["config"]["test_size"] == 2
