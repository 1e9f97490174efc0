"""Small labelled sets of real photos, built offline from the photos that ship inside scikit-image.

No colour natural-photo dataset ships offline (docs/datasets.md), so the similarity measure is checked on
sets made here: each class is one (or two) real photos, and its images are random crops of them (35-90 % of
each side, flipped half the time, brightness and contrast jittered by up to 15 %), resized to 128 px, the size
an upload is stored at. Classes come from distinct photos, so a set is a stand-in for "a few hundred photos of
a few everyday things", the textbook example of data similar to ImageNet, not a benchmark of accuracy.

Two groups:

- ``PHOTO_SETS``: photos of things ImageNet has classes for (what MobileNetV2's own head says on the whole
  photo, measured: chelsea "Egyptian cat" 0.70, coffee "espresso" 0.99, motorcycle "moped" 0.52 / 0.58; the
  rocket photo shows a Falcon 9 on its launch pad, "obelisk" 0.35, "drilling platform" 0.28).
- ``SCAN_SETS``: medical images (a retina fundus photo, an immunohistochemistry slide, a grey retina detail),
  which the guide must not call similar.

``python -m benchmarks.photo_fixtures DIR`` writes every set as ``DIR/<name>.npz`` (a MedMNIST-style file the
app and ``python -m tl_engine similarity --dataset DIR/<name>.npz`` read). Deterministic: same scikit-image,
same files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 128  # pixels, as tl_engine.data.images.STORE_SIZE stores uploads
PER_CLASS = {"train": 100, "val": 30, "test": 30}


@dataclass(frozen=True)
class Photo:
    name: str  # scikit-image's name
    load: Callable[[], np.ndarray]  # uint8 H x W (x 3)
    shows: str
    licence: str


def _skd():
    import skimage.data as skd  # scikit-image: requirements-dev.txt

    return skd


PHOTOS: dict[str, Photo] = {p.name: p for p in (
    Photo("chelsea", lambda: _skd().chelsea(), "a tabby cat", "CC0 (photographer Stefan van der Walt)"),
    Photo("coffee", lambda: _skd().coffee(), "a cup of espresso on a saucer", "CC0 (photographer Rachel Michetti)"),
    Photo("motorcycle_left", lambda: _skd().stereo_motorcycle()[0], "a motorcycle (left view of a stereo pair)",
          "Middlebury 2014 stereo benchmark (Scharstein et al.), as redistributed by scikit-image"),
    Photo("motorcycle_right", lambda: _skd().stereo_motorcycle()[1], "the same motorcycle (right view)",
          "Middlebury 2014 stereo benchmark (Scharstein et al.), as redistributed by scikit-image"),
    Photo("rocket", lambda: _skd().rocket(), "a Falcon 9 rocket on its launch pad", "public domain (SpaceX)"),
    Photo("retina", lambda: _skd().retina(), "a retina fundus photo", "CC0 (Wikimedia Commons)"),
    Photo("immunohistochemistry", lambda: _skd().immunohistochemistry(), "a stained tissue slide (colon)",
          "no known copyright restrictions (scikit-image)"),
    Photo("microaneurysms", lambda: _skd().microaneurysms(), "a grey retina detail (green channel)",
          "CC0 (Andreas Maier, HRF database)"),
)}

# class name -> the photos its crops are cut from (in turn)
CLASSES: dict[str, tuple[str, ...]] = {
    "cat": ("chelsea",), "coffee": ("coffee",), "motorcycle": ("motorcycle_left", "motorcycle_right"),
    "rocket": ("rocket",), "retina": ("retina",), "tissue": ("immunohistochemistry",),
    "retina detail": ("microaneurysms",),
}

PHOTO_SETS: dict[str, tuple[str, ...]] = {
    "photos-cat-coffee": ("cat", "coffee"),
    "photos-cat-motorcycle": ("cat", "motorcycle"),
    "photos-coffee-rocket": ("coffee", "rocket"),
    "photos-motorcycle-rocket": ("motorcycle", "rocket"),
    "photos-cat-coffee-rocket": ("cat", "coffee", "rocket"),
    "photos-cat-coffee-motorcycle": ("cat", "coffee", "motorcycle"),
    "photos-coffee-motorcycle-rocket": ("coffee", "motorcycle", "rocket"),
}
SCAN_SETS: dict[str, tuple[str, ...]] = {
    "scans-retina-tissue": ("retina", "tissue"),
    "scans-retina-tissue-detail": ("retina", "tissue", "retina detail"),
}
ALL_SETS = {**PHOTO_SETS, **SCAN_SETS}


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def crops(img: np.ndarray, n: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """``n`` random augmented crops of one photo, uint8 n x size x size x 3."""
    from PIL import Image

    img = _rgb(img)
    h, w = img.shape[:2]
    out = np.empty((n, size, size, 3), np.uint8)
    for j in range(n):
        fh, fw = rng.uniform(0.35, 0.9, 2)
        ch, cw = max(8, int(h * fh)), max(8, int(w * fw))
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = img[y0:y0 + ch, x0:x0 + cw]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        im = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR), float)
        gain, shift = rng.uniform(0.85, 1.15), rng.uniform(-0.15, 0.15) * 255
        mean = im.mean()
        out[j] = np.clip((im - mean) * gain + mean + shift, 0, 255).astype(np.uint8)
    return out


def build(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of set ``name`` (one of ``ALL_SETS``), as a MedMNIST-style .npz holds them."""
    classes = ALL_SETS[name]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    images = {c: [PHOTOS[p].load() for p in CLASSES[c]] for c in classes}
    arrays: dict[str, np.ndarray] = {}
    for split, n in PER_CLASS.items():
        xs, ys = [], []
        for k, c in enumerate(classes):
            ims = images[c]
            parts = [crops(im, n // len(ims) + (i < n % len(ims)), rng) for i, im in enumerate(ims)]
            xs.append(np.concatenate(parts))
            ys.append(np.full(n, k, np.int64))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = np.concatenate(xs), np.concatenate(ys)
    arrays["classes"] = np.array(classes)
    return arrays


def write(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Write set ``name`` to ``folder/<name>.npz`` and return the path."""
    path = Path(folder) / f"{name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **build(name, seed))
    return path


def describe(name: str) -> dict:
    """Where a set's images come from: per class, the photos with what they show and their licence."""
    return {c: [{"photo": f"skimage.data {PHOTOS[p].name}", "shows": PHOTOS[p].shows,
                 "licence": PHOTOS[p].licence} for p in CLASSES[c]] for c in ALL_SETS[name]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    a = ap.parse_args()
    for name in ALL_SETS:
        print(write(name, a.folder))


if __name__ == "__main__":
    main()
