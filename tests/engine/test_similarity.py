"""Similarity to ImageNet: the statistics on synthetic predictions (fast), and the real classifier on real images.

The real images are the sets of ``benchmarks/photo_fixtures.py``: augmented crops of real photos that ship
inside scikit-image (a cat, an espresso, a motorcycle, a rocket; a retina and a tissue slide for the scans).
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks import photo_fixtures as pf
from tl_engine.cli.similarity import add_similarity_command, to_json
from tl_engine.data.bundled import load_dataset
from tl_engine.inspect import similarity as sim
from tl_ui.teaching import guide_cell

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "similarity.json"


def _probs(labels: np.ndarray, conf: float, n_classes: int = 1000) -> np.ndarray:
    """Softmax rows putting ``conf`` on ``labels`` and the rest spread evenly."""
    p = np.full((len(labels), n_classes), (1 - conf) / (n_classes - 1))
    p[np.arange(len(labels)), labels] = conf
    return p


def test_ami_is_one_for_the_same_partition_and_near_zero_for_unrelated_ones():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 10, 400)
    assert sim.adjusted_mutual_info(a, a) == pytest.approx(1.0)
    assert sim.adjusted_mutual_info(a, (a + 3) % 10 + 500) == pytest.approx(1.0)  # names do not matter
    # Unrelated labelings with many labels: plain MI would be large by chance; AMI removes that.
    unrelated = [sim.adjusted_mutual_info(a, rng.integers(0, 40, 400)) for _ in range(5)]
    assert abs(np.mean(unrelated)) < 0.02
    half = np.where(rng.random(400) < 0.5, a, rng.integers(0, 10, 400))
    assert 0.2 < sim.adjusted_mutual_info(a, half) < 0.8


@pytest.mark.slow  # imports scikit-learn (seconds)
def test_ami_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for n, ka, kb in [(200, 10, 40), (50, 2, 7), (30, 3, 30)]:
        a = rng.integers(0, ka, n)
        b = np.where(rng.random(n) < 0.6, a * 2 % kb, rng.integers(0, kb, n))
        assert sim.adjusted_mutual_info(a, b) == pytest.approx(metrics.adjusted_mutual_info_score(a, b), abs=1e-9)


def test_score_needs_both_confidence_and_separation():
    y = np.repeat(np.arange(4), 50)
    sure_and_consistent = sim.score_from_predictions(_probs(y * 7, 0.9), y)
    unsure_consistent = sim.score_from_predictions(_probs(y * 7, 0.1), y)
    sure_random = sim.score_from_predictions(_probs(np.random.default_rng(0).integers(0, 4, 200), 0.9), y)
    assert sure_and_consistent["score"] == pytest.approx(np.sqrt(0.9), abs=1e-6)
    assert unsure_consistent["score"] == pytest.approx(np.sqrt(0.1), abs=1e-6)
    # Chance-level separation is 0 on average (its spread over random draws is about ±0.1 at 200 images).
    assert sure_random["separation"] < 0.2 and sure_random["score"] < 0.45 < sim.SIMILAR_FROM
    for s in (sure_and_consistent, unsure_consistent, sure_random):
        assert 0 <= s["score_low"] <= s["score"] <= s["score_high"] <= 1
    assert sure_random["score_se"] > 0  # a noisy sample gives a real interval


def test_draw_sample_is_class_balanced_deterministic_and_within_the_given_splits():
    ys = [np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 2)]  # train, val
    refs = sim.draw_sample(ys, 3, 31, seed=5)
    assert refs == sim.draw_sample(ys, 3, 31, seed=5) != sim.draw_sample(ys, 3, 31, seed=6)
    assert len(set(refs)) == 31
    assert np.bincount([ys[s][i] for s, i in refs]).tolist() == [11, 10, 10]
    short = sim.draw_sample([np.array([0, 0, 0, 1])], 2, 6, seed=0)  # class 1 has one image: all it has
    assert len(short) == 4


def _loo_ncm_by_hand(f: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out nearest class mean, written the slow and obvious way."""
    classes = np.unique(y)
    right = 0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        means = [f[keep & (y == c)].mean(0) if (keep & (y == c)).any() else np.full(f.shape[1], np.inf)
                 for c in classes]
        right += classes[int(np.argmin([((f[i] - m) ** 2).sum() for m in means]))] == y[i]
    c = len(classes)
    return (right / len(y) - 1 / c) / (1 - 1 / c)


def test_separation_is_leave_one_out_nearest_class_mean_corrected_for_chance():
    rng = np.random.default_rng(4)
    for n, c, shift in [(40, 2, 0.3), (31, 3, 0.5), (25, 4, 0.0), (9, 3, 1.0)]:
        y = rng.integers(0, c, n)
        f = rng.normal(size=(n, 6)) + shift * np.eye(6)[y % 6]
        assert sim.separation(f, y) == pytest.approx(_loo_ncm_by_hand(f, y))
    one = np.array([0, 0, 0, 1])  # a class with one image: left out, it has no mean, so it cannot be right
    assert sim.separation(np.eye(4), one) == pytest.approx((3 / 4 - 1 / 2) / (1 - 1 / 2))
    assert sim.separation(np.zeros((6, 3)), np.zeros(6, int)) == 0.0


def test_a_fine_vocabulary_that_follows_the_classes_is_similar():
    """The ant/bee case: each class gets many ImageNet labels of its own ("ant", "ground beetle", ...; "bee",
    "fly", "daisy", ...). Version 1's AMI punished the many labels and called this "different"."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 100)
    labels = np.where(y == 0, rng.integers(0, 10, 200), rng.integers(10, 20, 200))
    fine = sim.score_from_predictions(_probs(labels, 0.5), y)
    assert fine["ami"] < 0.4 and sim.combine(0.5, fine["ami"]) < 0.5  # what version 1 saw
    assert fine["separation"] == pytest.approx(1.0) and fine["score"] == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert sim.guide_word(fine["score"]) == "similar"
    shared = sim.score_from_predictions(_probs(rng.integers(0, 20, 200), 0.5), y)  # labels ignore the classes
    assert shared["score"] < 0.35 and sim.guide_word(shared["score"]) == "different"


def test_guide_word_has_one_boundary_shared_by_the_cli_and_the_page():
    b = sim.SIMILAR_FROM
    assert sim.guide_word(b) == "similar" and sim.guide_word(np.nextafter(b, 0)) == "different"
    for score in np.linspace(0, 1, 101):
        r = sim.Similarity(float(score), (), "stand-in", 10, {"score_low": 0.0, "score_high": 1.0})
        assert to_json(r)["guide"] == guide_cell(500, float(score))[0] == sim.guide_word(float(score))


def test_the_boundary_is_the_one_the_benchmark_measured():
    """benchmarks/results/similarity.json (bench_similarity.py) holds the scores the boundary was chosen from."""
    res = json.loads(RESULTS.read_text())
    assert res["method_version"] == sim.METHOD_VERSION
    mobile = res["backbones"]["mobilenet_v2"]
    assert mobile["boundary"]["engine_boundary"] == sim.SIMILAR_FROM == mobile["boundary"]["middle"]
    photos = [r["score"] for r in mobile["sets"] if r["group"] == "photos"]
    other = [r["score"] for r in mobile["sets"] if r["group"] == "other"]
    assert max(other) < sim.SIMILAR_FROM <= min(photos)
    assert {r["set"] for r in mobile["sets"] if r["group"] == "photos"} == set(pf.PHOTO_SETS)
    assert {"mnist", "textures", "fashion-mnist", *pf.SCAN_SETS} <= {r["set"] for r in mobile["sets"]}
    for backbone, b in res["backbones"].items():  # the one boundary holds for every backbone measured
        assert b["boundary"]["separates_scores"] and b["boundary"]["misplaced"] == [], backbone


# --- real weights, real images -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    pytest.importorskip("skimage.data", reason="scikit-image ships the real photos of this fixture")
    return str(pf.write("photos-cat-coffee", tmp_path_factory.mktemp("photos")))


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_similarity_command(p.add_subparsers())
    a = p.parse_args(argv)
    return a.func(a)


@pytest.mark.slow
def test_cli_writes_the_json_and_the_cache_answers_the_second_time(photos, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert _cli(["similarity", "--dataset", photos, "--sample", "16", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert 0 <= d["score"] <= 1 and d["n_images"] == 16 and "nearest-class-mean" in d["method"]
    assert d["guide"] == sim.guide_word(d["score"])
    shares = [t["share"] for t in d["top_labels"]]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-9
    assert all(t["label"] and 0 < t["share"] <= 1 and t["examples"] for t in d["top_labels"])
    assert "measured" in capsys.readouterr().out
    cache = json.loads(sim.cache_path().read_text())
    assert len(cache) == 1
    again = sim.measure(photos, sample=16)
    assert again.details.get("cached") and again.score == d["score"]
    assert sim.measure(photos, sample=16, seed=1).details.get("cached") is None  # another draw: measured


@pytest.mark.slow  # runs the ImageNet classifier
def test_user_folder_and_zip_give_the_same_images_a_score(photos, tmp_path):
    from PIL import Image

    arrays = np.load(photos)
    folder = tmp_path / "mine"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, (img, label) in enumerate(zip(arrays["train_images"][::6], arrays["train_labels"][::6])):
            (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"class{label}" / f"{i:03d}.png")
            z.write(folder / f"class{label}" / f"{i:03d}.png", f"class{label}/{i:03d}.png")
    (tmp_path / "mine.zip").write_bytes(buf.getvalue())
    a = sim.measure(str(folder), sample=12, use_cache=False)
    b = sim.measure(str(tmp_path / "mine.zip"), sample=12, use_cache=False)
    assert a.n_images == b.n_images == 12 and 0 <= a.score <= 1
    assert a.score == pytest.approx(b.score, abs=1e-6)  # same images, same classes: the same measurement


@pytest.mark.slow  # runs the ImageNet classifier on 300 images (about 30 s on a busy 2-core CPU)
def test_the_guide_calls_real_photos_similar_and_digits_and_scans_different(photos, tmp_path, capsys):
    pytest.importorskip("skimage.data")
    scans = str(pf.write("scans-retina-tissue", tmp_path))
    words = {}
    for name, dataset in [("photos", photos), ("mnist", "mnist"), ("scans", scans)]:
        out = tmp_path / f"{name}.json"
        assert _cli(["similarity", "--dataset", dataset, "--sample", "100", "--no-cache", "--json", str(out)]) == 0
        words[name] = json.loads(out.read_text())
    assert words["photos"]["guide"] == "similar" and words["mnist"]["guide"] == "different"
    assert words["scans"]["guide"] == "different"
    assert words["photos"]["details"]["score_low"] > sim.SIMILAR_FROM > words["mnist"]["details"]["score_high"]
    assert "decision guide: similar" in capsys.readouterr().out
    ds = load_dataset(photos)
    top = sim.Similarity.from_dict(words["photos"]).top_labels[0]
    ex = sim.example_images(ds, top)
    assert ex.shape[0] == len(top.examples) and ex.dtype == np.uint8


@pytest.mark.slow
def test_every_bundled_dataset_gets_a_score():
    from tl_engine.data.bundled import list_datasets

    for info in list_datasets():
        r = sim.measure(info.name, sample=len(info.classes) * 2, use_cache=False)
        assert 0 <= r.score <= 1 and r.n_images == len(info.classes) * 2, info.name
        assert {c["class"] for c in r.details["per_class"]} == set(info.classes)


@pytest.mark.slow  # half a second or more: the edit-run loop stays under 20 s
def test_photo_fixtures_are_deterministic_balanced_and_say_where_each_photo_comes_from(tmp_path):
    pytest.importorskip("skimage.data", reason="scikit-image ships the real photos of these sets")
    a, b = pf.build("photos-cat-coffee"), pf.build("photos-cat-coffee")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    for split, n in pf.PER_CLASS.items():
        x, y = a[f"{split}_images"], a[f"{split}_labels"]
        assert x.shape == (2 * n, pf.SIZE, pf.SIZE, 3) and x.dtype == np.uint8
        assert np.bincount(y).tolist() == [n] * 2
    assert not np.array_equal(a["train_images"][0], a["train_images"][1])  # crops differ
    np.savez(tmp_path / "set.npz", **a)
    assert load_dataset(str(tmp_path / "set.npz")).info.classes == ("cat", "coffee")
    for name in pf.ALL_SETS:
        assert all(p["licence"] and p["shows"] for ps in pf.describe(name).values() for p in ps)
