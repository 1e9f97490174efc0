"""What ImageNet sees in a dataset: the pretrained network's own 1,000-class head run on a sample of its images.

The score (0 to 1) is the geometric mean of two measurements on ``sample`` train/validation images (never test):

- **confidence**: the ImageNet classifier's mean top-1 softmax probability (the maximum-softmax-probability
  baseline for telling in- from out-of-distribution inputs, Hendrycks & Gimpel 2017). Near 1 when it is sure it
  sees one of its 1,000 everyday things (a cat photo), near 0 when nothing looks like any of them.
- **separation**: how well ImageNet's 1,000 outputs alone tell the dataset's classes apart: the leave-one-out
  accuracy of a nearest-class-mean rule on the square roots of the probabilities (Hellinger distance), corrected
  for chance, (acc - 1/C) / (1 - 1/C): 1 when every image sits nearest its own class's mean, 0 at chance.

Why both: ImageNet features help when the network recognises the content (confidence) *and* its outputs
already separate the task's classes (separation). Method version 1 measured separation with the adjusted
mutual information (AMI) between classes and top-1 labels, which punishes a fine vocabulary: a real ant/bee
set scored 0.40, "different". When each class gets ten top-1 labels of its own (say "ant", "ground beetle"...
and "bee", "fly"...), the labels follow the classes perfectly, yet AMI is 0.36 and version 1's score 0.42 at
confidence 0.5 (a test); version 2 gives 0.71. The class means see the whole probability vector, not one label,
so many labels per class cost nothing. Separation alone is not
enough: medical scans and textures separate perfectly too (two different images look different to any
network); what marks them is ImageNet's low confidence on them.

Measured on 200 images with MobileNetV2, ``benchmarks/bench_similarity.py`` (benchmarks/results/similarity.json):
seven two- and three-class sets of crops of real photos of ImageNet things (cat, espresso, motorcycle, rocket;
``benchmarks/photo_fixtures.py``) score 0.72-0.84; textures 0.56, medical scans 0.41-0.44, fashion-mnist 0.43,
mnist 0.38, animal-mnist 0.33. :data:`SIMILAR_FROM` lies between the two groups.
The score ranks datasets; it is not a probability.

Uncertainty: the score is an estimate from ``sample`` images; ``details`` carries its standard error (from
random half-samples) and a 95 % interval, score ± 1.96 SE.
"""

from __future__ import annotations

import numpy as np

N_HALVES = 200  # random half-samples for the standard error
# The guide's boundary: a score at or above it is "similar" to ImageNet. Chosen by benchmarks/bench_similarity.py
# as the middle of the gap between the lowest-scoring set of real photos of ImageNet things and the highest-scoring
# other set (textures, scans, digits, clothes, silhouettes), MobileNetV2, 200 images (docs/datasets.md).
SIMILAR_FROM = 0.64
GUIDE_WORDS = ("similar", "different")


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


def separation(features: np.ndarray, y: np.ndarray) -> float:
    """Chance-corrected leave-one-out accuracy of the nearest class mean (Euclidean) on ``features``.

    Each image is left out of its own class's mean before it is classified; a class with one image cannot be
    right. Returns (acc - 1/C) / (1 - 1/C) for the C classes present: 1 perfect, 0 chance, negative below it.
    """
    classes, y = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        return 0.0
    counts = np.bincount(y, minlength=n_classes).astype(float)
    means = np.stack([features[y == c].mean(0) for c in range(n_classes)])
    # Squared distances to every class mean, N x C (expanded: no N x C x D array, whatever the sample size).
    dist = (features ** 2).sum(1)[:, None] - 2 * features @ means.T + (means ** 2).sum(1)[None]
    rows, n_own = np.arange(len(y)), counts[y]
    # Leaving an image out of its own class mean moves the mean away from it: the distance scales by (n/(n-1))^2.
    scale = (n_own / np.maximum(n_own - 1, 1)) ** 2
    dist[rows, y] = np.where(n_own > 1, np.maximum(dist[rows, y], 0) * scale, np.inf)
    acc = float((dist.argmin(1) == y).mean())
    return (acc - 1 / n_classes) / (1 - 1 / n_classes)


def combine(confidence: float, separation: float) -> float:
    """The score: geometric mean of the two, each clipped to [0, 1]."""
    return float(np.sqrt(np.clip(confidence, 0, 1) * np.clip(separation, 0, 1)))


def guide_word(score: float) -> str:
    """The decision guide's row for a measured score: "similar" from :data:`SIMILAR_FROM` on, else "different".

    The one definition of the boundary: the CLI's JSON and the race page's guide both call this.
    """
    return GUIDE_WORDS[0] if score >= SIMILAR_FROM else GUIDE_WORDS[1]


def score_from_predictions(probs: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Confidence, separation, score and its standard error from N×1000 softmax rows and true classes.

    The standard error is half-sampling's: the spread of the score over random halves of the sample (drawn
    without replacement). For averages a half's variance equals the full sample's, and unlike the ordinary
    bootstrap it adds no duplicate images, which would put copies of an image in its own class mean.
    ``ami`` (method version 1's consistency: adjusted mutual information of classes and top-1 labels) is
    reported for comparison only.
    """
    top1, conf, root = probs.argmax(1), probs.max(1), np.sqrt(probs)
    confidence, sep = float(conf.mean()), separation(root, y)
    score = combine(confidence, sep)
    rng, n = np.random.default_rng([seed, 2]), len(y)
    halves = [combine(conf[i].mean(), separation(root[i], y[i]))
              for i in (rng.permutation(n)[: n // 2] for _ in range(N_HALVES))]
    se = float(np.std(halves))
    return {"score": score, "confidence": confidence, "separation": sep, "ami": adjusted_mutual_info(y, top1),
            "score_se": se, "score_low": max(0.0, score - 1.96 * se), "score_high": min(1.0, score + 1.96 * se)}
