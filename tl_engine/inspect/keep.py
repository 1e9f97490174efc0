"""What a finished race leaves behind for the look-inside views: exported models and what they learned.

Called in the worker that trained the race (it has the networks; the page does not), into one folder per job:
``<strategy>.pt`` (TorchScript, see :mod:`tl_engine.inspect.export`) and ``inside.npz`` with the first-layer filters of
every network (and of the untouched ImageNet backbone), a 2-D PCA of the test images' pooled features for
the ImageNet backbone and for each trained body, the labels, and a measured class separation per map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from ..models import SPECS, build
from .export import export_torchscript
from .views import feature_separation, first_layer_filters, pca_2d, pooled_features

INSIDE_FILE = "inside.npz"
MAX_MAP_POINTS = 1000  # test images in the feature map: enough to see clusters, cheap to send and draw


def save_trained(race, folder: str | Path) -> str:
    """Export ``race.models`` and compute ``inside.npz`` in ``folder``; returns the folder."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cfg, data = race.cfg, race.data
    bspec = SPECS[cfg.backbone]
    for name, net in race.models.items():
        export_torchscript(net, data.classes, cfg.resolution, bspec.mean, bspec.std, out / f"{name}.pt", grey=data.grey)
    nets = dict(race.models)
    imagenet = build(cfg.backbone, len(data.classes)).eval()  # the shipped ImageNet weights, untouched
    # Pixels has no convolution at all: no filters to show (its PCA map is of the pixels themselves).
    arrays: dict[str, np.ndarray] = {f"filters_{s}": first_layer_filters(n) for s, n in nets.items()
                                     if any(isinstance(m, nn.Conv2d) for m in n.stages[0].modules())}
    arrays["filters_imagenet"] = first_layer_filters(imagenet)
    x, y = data.x_test[:MAX_MAP_POINTS].cpu(), data.y_test[:MAX_MAP_POINTS].cpu().numpy()
    # The frozen strategy's body *is* the ImageNet backbone; scratch and fine-tune show what training changed.
    bodies = {"imagenet": imagenet, **{s: n.cpu() for s, n in nets.items() if s != "frozen"}}
    points = pca_2d({s: pooled_features(n, x) for s, n in bodies.items()})
    for s, p in points.items():
        arrays[f"pca_{s}"] = p
        arrays[f"sep_{s}"] = np.float64(feature_separation(p, y))
    arrays["labels"] = y
    np.savez(out / INSIDE_FILE, **arrays)
    return str(out)
