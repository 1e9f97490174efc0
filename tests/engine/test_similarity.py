"""Similarity to ImageNet: the statistics on synthetic predictions (fast), and the real classifier on real images.

The "everyday photos" dataset below is only a test fixture: random crops of real photos that ship inside
scikit-image (a cat, coffee, a rocket...), two classes. Its "medical" counterpart is crops of a retina fundus
photo and an immunohistochemistry slide from the same package.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile

import numpy as np
import pytest

from tl_engine.cli.similarity import add_similarity_command
from tl_engine.data.bundled import load_dataset
from tl_engine.inspect import similarity as sim


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


def test_score_needs_both_confidence_and_consistency():
    y = np.repeat(np.arange(4), 50)
    sure_and_consistent = sim.score_from_predictions(_probs(y * 7, 0.9), y)
    unsure_consistent = sim.score_from_predictions(_probs(y * 7, 0.1), y)
    sure_random = sim.score_from_predictions(_probs(np.random.default_rng(0).integers(0, 4, 200), 0.9), y)
    assert sure_and_consistent["score"] == pytest.approx(np.sqrt(0.9), abs=1e-6)
    assert unsure_consistent["score"] == pytest.approx(np.sqrt(0.1), abs=1e-6)
    assert sure_random["score"] < 0.25
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


# --- real weights, real images -------------------------------------------------------------------------------


def _crops(img: np.ndarray, n: int, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        f = rng.uniform(0.5, 0.9)
        ch, cw = int(h * f), int(w * f)
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = img[y0:y0 + ch, x0:x0 + cw]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        out.append(np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def _fixture(path, per_class: list[list[np.ndarray]], n: int) -> str:
    """A two-class .npz of augmented crops (train and test splits), written to ``path``."""
    rng = np.random.default_rng(0)
    xs = [np.concatenate([_crops(im, n // len(ims), rng) for im in ims]) for ims in per_class]
    x, y = np.concatenate(xs), np.repeat(np.arange(len(xs)), [len(a) for a in xs])
    np.savez(path, train_images=x, train_labels=y, test_images=x[::5], test_labels=y[::5])
    return str(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    skd = pytest.importorskip("skimage.data", reason="scikit-image ships the real photos of this fixture")
    return _fixture(tmp_path_factory.mktemp("photos") / "photos.npz",
                    [[skd.chelsea(), skd.cat()], [skd.coffee(), skd.rocket()]], 120)


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
    assert 0 <= d["score"] <= 1 and d["n_images"] == 16 and "mutual information" in d["method"]
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


@pytest.mark.slow
def test_everyday_photos_score_above_digits_and_medical_images(photos, tmp_path):
    skd = pytest.importorskip("skimage.data")
    medical = _fixture(tmp_path / "medical.npz", [[skd.retina()], [skd.immunohistochemistry()]], 120)
    photo = sim.measure(photos, sample=100, use_cache=False)
    digits = sim.measure("mnist", sample=100, use_cache=False)
    scans = sim.measure(medical, sample=100, use_cache=False)
    assert photo.score > 0.5 and photo.details["score_low"] > digits.details["score_high"]
    assert photo.score > scans.score + 0.2
    assert photo.details["confidence"] > 2 * digits.details["confidence"]
    ds = load_dataset(photos)
    ex = sim.example_images(ds, photo.top_labels[0])
    assert ex.shape[0] == len(photo.top_labels[0].examples) and ex.dtype == np.uint8


@pytest.mark.slow
def test_every_bundled_dataset_gets_a_score():
    from tl_engine.data.bundled import list_datasets

    for info in list_datasets():
        r = sim.measure(info.name, sample=len(info.classes) * 2, use_cache=False)
        assert 0 <= r.score <= 1 and r.n_images == len(info.classes) * 2, info.name
        assert {c["class"] for c in r.details["per_class"]} == set(info.classes)
