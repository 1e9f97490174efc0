"""What ImageNet sees in a dataset: the pretrained network's own 1,000-class head run on a sample of its images.

The score (0 to 1) is the geometric mean of two measurements on ``sample`` train/validation images (never test):

- **confidence**: the ImageNet classifier's mean top-1 softmax probability. Near 1 when it is sure it sees one
  of its 1,000 everyday things (a cat photo), near 0 when nothing in the picture looks like any of them.
- **consistency**: the adjusted mutual information (AMI) between the dataset's true classes and the top-1
  ImageNet labels: 1 when each class gets its own ImageNet label(s), 0 when the labels are no better than chance
  at telling the classes apart (negative values, worse than chance, count as 0). AMI, not plain mutual
  information, because with 200 images and dozens of distinct labels chance alone gives a high plain MI.

Why both: ImageNet features help a new task when the network recognises the content (confidence) *and* its
vocabulary already separates the task's classes (consistency). Handwritten digits are mostly "nematode" or
"pick" whatever the digit (consistency 0.09); colour microscopy and fundus crops get labels that do follow the
class but with low confidence (0.18). The geometric mean is 0 when either is 0.
Measured on 200 images with MobileNetV2 (score, confidence, consistency): two-class crops of everyday photos
(a test fixture) 0.65 (0.66, 0.64); textures 0.41 (0.32, 0.54); fashion-mnist 0.27 (0.32, 0.23); retina vs
immunohistochemistry crops 0.25 (0.18, 0.35); animal-mnist 0.23 (0.20, 0.27); mnist 0.16 (0.28, 0.09).
The score ranks datasets; it is not a probability. Consistency depends on the classes as well as on the
images: the two-class fixtures above separate two very different scenes.

Uncertainty: the score is an estimate from ``sample`` images; ``details`` carries its standard error (from
random half-samples) and a 95 % interval, score ± 1.96 SE: ±0.01 (fixture crops) to ±0.06 (mnist) at 200 images.
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

BACKBONES = tuple(SPECS)
METHOD_VERSION = 1  # bump when the score's definition changes, so cached results stop matching
RESOLUTION = 224  # ImageNet's native scale: the 1,000-class head is only meaningful near it
N_TOP = 10  # most frequent ImageNet labels reported
N_EXAMPLES = 4  # example images per reported label
N_HALVES = 200  # random half-samples for the standard error
METHOD = ("geometric mean of the ImageNet head's mean top-1 confidence and the adjusted mutual information "
          "between true classes and top-1 ImageNet labels")


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
    details: dict = field(default_factory=dict)  # confidence, consistency, interval, per class, timing...

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Similarity:
        tops = tuple(TopLabel(t["label"], t["share"], tuple((s, int(i)) for s, i in t["examples"]))
                     for t in d["top_labels"])
        return cls(d["score"], tops, d["method"], d["n_images"], d.get("details", {}))


# --- the measurements (numpy only) -------------------------------------------------------------------------


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def adjusted_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """AMI of two labelings (arithmetic-mean normalisation, as scikit-learn's default); 1.0 if both are constant.

    The expected mutual information under random labelings with the same class sizes (the hypergeometric
    model of Vinh, Epps & Bailey 2010) is subtracted, so unrelated labelings score about 0 at any sample size.
    """
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    n = len(a)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    ra, cb = table.sum(1), table.sum(0)
    h_a, h_b = _entropy(ra), _entropy(cb)
    if h_a == 0 and h_b == 0:
        return 1.0
    nz = table > 0
    mi = float((table[nz] / n * np.log(n * table[nz] / np.outer(ra, cb)[nz])).sum())
    # Expected MI: every cell (i, j) and every possible count k, vectorised over a (rows, cols, k) grid.
    lf = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])  # log k!
    ai, bj = ra[:, None, None].astype(int), cb[None, :, None].astype(int)
    k = np.arange(1, int(min(ra.max(), cb.max())) + 1)[None, None, :]
    ok = (k >= np.maximum(1, ai + bj - n)) & (k <= np.minimum(ai, bj))
    kk = np.where(ok, k, 1)
    log_p = (lf[ai] + lf[bj] + lf[n - ai] + lf[n - bj] - lf[n] - lf[kk] - lf[np.clip(ai - kk, 0, n)]
             - lf[np.clip(bj - kk, 0, n)] - lf[np.clip(n - ai - bj + kk, 0, n)])
    term = kk / n * np.log(n * kk / (ai * bj)) * np.exp(log_p)
    emi = float(np.where(ok, term, 0.0).sum())
    denom = (h_a + h_b) / 2 - emi
    return float((mi - emi) / denom) if abs(denom) > 1e-12 else 0.0


def combine(confidence: float, consistency: float) -> float:
    """The score: geometric mean of the two, each clipped to [0, 1]."""
    return float(np.sqrt(np.clip(confidence, 0, 1) * np.clip(consistency, 0, 1)))


def score_from_predictions(probs: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Confidence, consistency, score and its standard error from N×1000 softmax rows and true classes.

    The standard error is half-sampling's: the spread of the score over random halves of the sample (drawn
    without replacement). For averages a half's variance equals the full sample's, and unlike the ordinary
    bootstrap it adds no duplicate images, which would inflate the agreement AMI measures.
    """
    top1, conf = probs.argmax(1), probs.max(1)
    confidence, consistency = float(conf.mean()), adjusted_mutual_info(y, top1)
    score = combine(confidence, consistency)
    rng, n = np.random.default_rng([seed, 2]), len(y)
    halves = [combine(conf[i].mean(), adjusted_mutual_info(y[i], top1[i]))
              for i in (rng.permutation(n)[: n // 2] for _ in range(N_HALVES))]
    se = float(np.std(halves))
    return {"score": score, "confidence": confidence, "consistency": consistency, "score_se": se,
            "score_low": max(0.0, score - 1.96 * se), "score_high": min(1.0, score + 1.96 * se)}


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
