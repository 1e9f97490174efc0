"""What ImageNet sees in a dataset: the pretrained network's own 1,000-class head run on a sample of its images.

This module draws the sample, runs the network and caches the result; the score itself (confidence x
separation, its interval and the guide's boundary :data:`SIMILAR_FROM`) is defined, with what was measured, in
:mod:`tl_engine.inspect.simscore`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..models import SPECS
from ..store import write_json_atomic
from .simscore import (  # noqa: F401  (re-exported: the statistics live in simscore, this module measures)
    GUIDE_WORDS,
    SIMILAR_FROM,
    adjusted_mutual_info,
    combine,
    guide_word,
    score_from_predictions,
    separation,
)

BACKBONES = tuple(SPECS)
METHOD_VERSION = 2  # bump when the score's definition changes, so cached results stop matching (2: separation)
RESOLUTION = 224  # ImageNet's native scale: the 1,000-class head is only meaningful near it
N_TOP = 10  # most frequent ImageNet labels reported
N_EXAMPLES = 4  # example images per reported label
METHOD = ("geometric mean of the ImageNet head's mean top-1 confidence and the chance-corrected leave-one-out "
          "nearest-class-mean accuracy on its 1,000 outputs (square roots of the probabilities)")



@dataclass(frozen=True)
class TopLabel:
    label: str  # ImageNet class name, from torchvision's weight metadata
    share: float  # fraction of the sample whose top-1 ImageNet label this is
    examples: tuple[tuple[str, int], ...]  # (split, index) of the most confident images with this label


@dataclass(frozen=True)
class Similarity:
    score: float  # in [0, 1]; see the module docstring
    top_labels: tuple[TopLabel, ...]
    method: str
    n_images: int
    details: dict = field(default_factory=dict)  # confidence, separation, interval, per class, timing...

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Similarity:
        tops = tuple(TopLabel(t["label"], t["share"], tuple((s, int(i)) for s, i in t["examples"]))
                     for t in d["top_labels"])
        return cls(d["score"], tops, d["method"], d["n_images"], d.get("details", {}))


# --- data, model and cache ----------------------------------------------------------------------------------


def _pool(ds) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], str]:
    """The splits a sample may come from (train and validation; test is never looked at) and their digest."""
    splits = [("train", ds.train_x, ds.train_y)]
    if getattr(ds, "val_x", None) is not None and len(ds.val_x):  # val split: in the ImageSet contract
        splits.append(("val", ds.val_x, ds.val_y))
    h = hashlib.sha256(json.dumps(list(ds.info.classes)).encode())
    for name, x, y in splits:  # content, not path: an edited folder is re-measured, a renamed one is not
        h.update(f"{name}{x.shape}{x.dtype}".encode())
        h.update(np.ascontiguousarray(x).data)
        h.update(np.ascontiguousarray(y, dtype=np.int64).data)
    return splits, h.hexdigest()


def draw_sample(y_by_split: list[np.ndarray], n_classes: int, sample: int, seed: int) -> list[tuple[int, int]]:
    """A class-balanced draw of (split number, index) pairs; a class with too few images gives all it has."""
    rng = np.random.default_rng([seed, 3])
    refs = np.array([(s, i) for s, y in enumerate(y_by_split) for i in range(len(y))], dtype=np.int64)
    labels = np.concatenate(y_by_split)
    quotas = np.full(n_classes, sample // n_classes)
    quotas[: sample % n_classes] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in enumerate(quotas)]
    idx = np.sort(np.concatenate(picked))
    return [(int(s), int(i)) for s, i in refs[idx]]


def cache_path() -> Path:
    from ..store import default_path

    return default_path().parent / "similarity.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # missing or damaged: a cache, so start again rather than fail
        return {}


def _key(digest: str, backbone: str, sample: int, seed: int) -> str:
    return f"v{METHOD_VERSION}:{digest[:32]}:{backbone}:{sample}:{seed}"


def imagenet_probs(x: np.ndarray, backbone: str, batch: int = 50) -> np.ndarray:
    """Softmax over ImageNet's 1,000 classes for uint8 images, at 224 px, with the backbone's own normalisation."""
    import torch

    from ..data import to_model_input
    from ..models import imagenet_model, spec

    s = spec(backbone)
    model = imagenet_model(backbone)
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):  # preprocessed per batch: 224 px inputs are 600 kB each
            out.append(model(to_model_input(x[i:i + batch], RESOLUTION, s.mean, s.std)).softmax(1).numpy())
    return np.concatenate(out).astype(np.float64)


def imagenet_categories() -> list[str]:
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])  # metadata only: nothing downloaded


def cached(dataset: str, backbone: str = "mobilenet_v2", sample: int = 200, seed: int = 0,
           ds=None) -> Similarity | None:
    """The stored measurement, or None without measuring (what a page may show without spending a core)."""
    from ..data import load_dataset

    ds = load_dataset(dataset) if ds is None else ds
    _, digest = _pool(ds)
    hit = _read_cache(cache_path()).get(_key(digest, backbone, sample, seed))
    return None if hit is None else Similarity.from_dict(hit)


def measure(dataset: str, backbone: str = "mobilenet_v2", sample: int = 200, seed: int = 0,
            use_cache: bool = True, ds=None) -> Similarity:
    """Run the ImageNet classifier on a class-balanced sample of ``dataset``'s train/val images and score it.

    ``ds`` may pass an already loaded ImageSet (the page has one). The result is cached in
    :func:`cache_path` keyed by (image content, backbone, sample, seed, method version).

    Raises:
        DataError: the dataset cannot be loaded, or the sample holds fewer than two classes.
    """
    from ..data import display_name, load_dataset
    from ..models import spec

    spec(backbone)  # an unknown backbone is a ConfigError before any work
    if sample < 2:
        raise DataError(f"sample must be at least 2 images, got {sample}")
    ds = load_dataset(dataset) if ds is None else ds
    splits, digest = _pool(ds)
    key, path = _key(digest, backbone, sample, seed), cache_path()
    if use_cache and key in (cached := _read_cache(path)):
        hit = Similarity.from_dict(cached[key])
        return replace(hit, details={**hit.details, "cached": True})
    start = time.perf_counter()
    refs = draw_sample([y for _, _, y in splits], len(ds.info.classes), sample, seed)
    x = np.stack([splits[s][1][i] for s, i in refs])
    y = np.array([splits[s][2][i] for s, i in refs], dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise DataError(f"{display_name(ds.info)!r}: the sample holds only one class; similarity needs at least two")
    probs = imagenet_probs(x, backbone)
    result = _assemble(probs, y, refs, [n for n, _, _ in splits], ds.info.classes, seed)
    result.details["seconds"] = round(time.perf_counter() - start, 2)
    result.details.update(backbone=backbone, resolution=RESOLUTION, seed=seed, dataset=str(dataset))
    if use_cache:
        cached = _read_cache(path)  # re-read just before writing: another process may have added entries
        cached[key] = result.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cached)
    return result


def _assemble(probs: np.ndarray, y: np.ndarray, refs: list[tuple[int, int]], split_names: list[str],
              classes: tuple[str, ...], seed: int) -> Similarity:
    names = imagenet_categories()
    stats = score_from_predictions(probs, y, seed)
    top1, conf = probs.argmax(1), probs.max(1)
    labels, counts = np.unique(top1, return_counts=True)
    order = np.lexsort((labels, -counts))[:N_TOP]  # most frequent first, ties by class index (deterministic)
    tops = []
    for j in order:
        members = np.flatnonzero(top1 == labels[j])
        best = members[np.argsort(-conf[members], kind="stable")][:N_EXAMPLES]
        tops.append(TopLabel(names[labels[j]], float(counts[j] / len(y)),
                             tuple((split_names[refs[b][0]], refs[b][1]) for b in best)))
    per_class = []
    for c, cname in enumerate(classes):  # what each true class mostly looks like to ImageNet
        mine = top1[y == c]
        if len(mine):
            lab, cnt = np.unique(mine, return_counts=True)
            per_class.append({"class": cname, "n": int(len(mine)), "label": names[lab[cnt.argmax()]],
                              "share": float(cnt.max() / len(mine))})
    details = {**stats, "n_classes": int(len(np.unique(y))), "distinct_labels": int(len(labels)),
               "per_class": per_class}
    return Similarity(stats["score"], tuple(tops), f"{METHOD}, on {len(y)} train/val images",
                      int(len(y)), details)


def example_images(ds, top: TopLabel) -> np.ndarray:
    """The uint8 example images of one reported label, from a loaded ImageSet."""
    split = {"train": ds.train_x, "val": getattr(ds, "val_x", None)}
    return np.stack([split[s][i] for s, i in top.examples])
