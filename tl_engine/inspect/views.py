"""What each trained network learned, as plain numbers: the look-inside views and "try it" read these.

Everything here works on a trained :class:`~tl_engine.models.backbones.StagedNet` (``Race(..., keep_models=True)``
keeps them in ``race.models``) or on a finished :class:`~tl_engine.config.StrategySummary`, and returns numpy
arrays or lists of plain values, so the charts in :mod:`tl_ui.inside_charts` need no torch.

- first-layer filters (what the stem looks for in pixels),
- pooled 1280-d features of images and a 2-D PCA of them (numpy SVD, no sklearn), with a measured number for
  how well the classes separate in that map,
- the prediction for one photo, preprocessed exactly like the race's images,
- the test images behind a confusion-matrix cell, and the most confident mistakes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import NUM_STAGES, StrategySummary
from ..data import to_model_input
from ..models import StagedNet

__all__ = ["first_layer_filters", "pooled_features", "pca_2d", "feature_separation", "prepare_image", "predict",
           "top_mistakes", "cell_members", "as_seen"]


def _stem_conv(net: StagedNet) -> nn.Conv2d:
    # The first Conv2d of stage 0 is the stem for both backbones (MobileNetV2: features[0][0]; Lite0: conv_stem).
    for m in net.stages[0].modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("stage 0 holds no Conv2d")


def first_layer_filters(net: StagedNet) -> np.ndarray:
    """The stem convolution's filters as K×3×h×w float32 in 0..1, each filter stretched to its own min..max.

    Per-filter scaling (as in the classic AlexNet figure) shows each filter's pattern; the absolute size is
    lost, so two arrays are equal exactly when the raw weights are equal up to a per-filter affine map (in
    practice: when they are the same weights).
    """
    w = _stem_conv(net).weight.detach().float().cpu().numpy().copy()
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - lo
    return ((w - lo) / np.where(span > 0, span, 1.0)).astype(np.float32)


def pooled_features(net: StagedNet, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    """The globally pooled features (N×1280) the head sees, for normalised N×3×R×R images (eval mode, no grad)."""
    was_training = net.training
    device = next(net.parameters()).device
    net.eval()
    try:
        with torch.inference_mode():
            parts = [net.prefix(x[i:i + batch].to(device), NUM_STAGES).float().cpu() for i in range(0, len(x), batch)]
    finally:
        net.train(was_training)
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0), np.float32)


def pca_2d(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A separate 2-D PCA per network (N×2 each), computed with numpy's SVD of the centred features.

    Each network gets its own axes because their feature spaces are unrelated. The sign of each axis is fixed
    (largest loading positive) so the same features always give the same picture.
    """
    out = {}
    for name, f in features.items():
        centred = np.asarray(f, dtype=np.float64) - np.mean(f, axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]
        signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
        axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
        pts = centred @ axes.T
        if pts.shape[1] < 2:  # a single image or rank-1 features: pad so callers can always read x and y
            pts = np.pad(pts, ((0, 0), (0, 2 - pts.shape[1])))
        out[name] = pts.astype(np.float32)
    return out


def feature_separation(points: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Leave-one-out nearest-class-centre accuracy (0..1) of the points: how well classes separate in the map.

    Each point is assigned to the class whose centre (mean of that class's *other* points) is nearest; the
    score is the fraction assigned to their own class. Chance is about 1 / classes. A point alone in its class
    has no centre to be compared with and counts as wrong.
    """
    p = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    classes = np.unique(y)
    if len(p) == 0:
        return float("nan")
    counts = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
    sums = np.stack([p[y == c].sum(axis=0) for c in classes])
    d = np.linalg.norm(p[:, None, :] - (sums / counts[:, None])[None], axis=2)  # N × classes
    own = np.searchsorted(classes, y)
    n_own = counts[own]
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = (sums[own] - p) / (n_own - 1)[:, None]  # own centre without the point itself
    d[np.arange(len(p)), own] = np.where(n_own > 1, np.linalg.norm(p - loo, axis=1), np.inf)
    return float(np.mean(d.argmin(axis=1) == own))


def prepare_image(image: Image.Image, grey: bool = False) -> np.ndarray:
    """A photo as the uint8 array the race's images are: centre-cropped to a square, H×W×3 (or H×W if grey).

    ``grey``: the race's images were greyscale (``ds.train_x.ndim == 3``); the photo is then converted with
    PIL's "L" (ITU-R 601-2 luma), so the network sees the kind of input it was trained on.
    """
    image = image.convert("L" if grey else "RGB")
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2  # the same integer crop as the exported model's (export.py)
    return np.array(image.crop((left, top, left + s, top + s)))  # a writable copy: torch warns on read-only


def predict(net: StagedNet, image: Image.Image, resolution: int, mean: Sequence[float], std: Sequence[float],
            classes: Sequence[str], k: int = 3, grey: bool = False) -> list[tuple[str, float]]:
    """The top-``k`` classes and their softmax probabilities for one photo.

    Preprocessing is the race's own: :func:`prepare_image`, then :func:`~tl_engine.data.bundled.to_model_input`
    (bilinear resize to ``resolution``, normalised with ``mean``/``std``).
    """
    x = to_model_input(prepare_image(image, grey)[None], resolution, tuple(mean), tuple(std))
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            probs = net(x.to(device)).float().softmax(1)[0].cpu()
    finally:
        net.train(was_training)
    top = probs.topk(min(k, len(classes)))
    return [(classes[int(i)], float(p)) for p, i in zip(top.values, top.indices)]


def _preds(summary: StrategySummary, y_test: Sequence[int] | np.ndarray | torch.Tensor
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if summary.test_pred is None or summary.test_conf is None:
        raise ValueError("this summary kept no test predictions (it was not the strategy's last epoch)")
    y = y_test.cpu().numpy() if isinstance(y_test, torch.Tensor) else np.asarray(y_test)
    pred, conf = np.asarray(summary.test_pred), np.asarray(summary.test_conf, dtype=np.float64)
    if len(y) != len(pred):
        raise ValueError(f"{len(y)} test labels for {len(pred)} predictions")
    return y, pred, conf


def _by_confidence(idx: np.ndarray, conf: np.ndarray) -> np.ndarray:
    # Most confident first; ties keep test-set order (stable sort) so the same race shows the same images.
    return idx[np.argsort(-conf[idx], kind="stable")]


def top_mistakes(summary: StrategySummary, y_test: Sequence[int] | np.ndarray | torch.Tensor, k: int = 8
                 ) -> list[tuple[int, int, int, float]]:
    """The ``k`` most confident wrong test predictions: (test index, true class, predicted class, confidence)."""
    y, pred, conf = _preds(summary, y_test)
    wrong = _by_confidence(np.flatnonzero(pred != y), conf)[:k]
    return [(int(i), int(y[i]), int(pred[i]), float(conf[i])) for i in wrong]


def cell_members(summary: StrategySummary, y_test: Sequence[int] | np.ndarray | torch.Tensor, true_c: int,
                 pred_c: int) -> list[tuple[int, float]]:
    """The test images of one confusion-matrix cell (true ``true_c``, predicted ``pred_c``), most confident
    first: (test index, confidence)."""
    y, pred, conf = _preds(summary, y_test)
    members = _by_confidence(np.flatnonzero((y == true_c) & (pred == pred_c)), conf)
    return [(int(i), float(conf[i])) for i in members]


def as_seen(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised N×3×R×R images (e.g. ``race.data.x_test[idx]``) back to uint8 N×R×R×3: what the network saw.

    Lets a page show the test images of a confusion cell or a mistake without drawing the split again.
    """
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    v = (x.detach().float().cpu() * s + m) * 255
    return v.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
