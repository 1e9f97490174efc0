"""The fixed probe photos of the forgetting measure: 96 crops of six natural colour photos that ship with
the app (``assets/probe/``, built by ``scripts/build_probe.py`` from photos inside scikit-image's wheel;
sources and licences in ``assets/probe/PROVENANCE.md``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError

PROBE_FILE = Path(__file__).resolve().parents[2] / "assets" / "probe" / "imagenet_probe.npz"


@lru_cache(maxsize=1)
def probe_photos() -> np.ndarray:
    """The probe crops, uint8 N x 112 x 112 x 3 (read once per process; do not write to it)."""
    try:
        with np.load(PROBE_FILE, allow_pickle=False) as z:
            images = z["images"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"the ImageNet probe photos {PROBE_FILE} cannot be read ({e}); rebuild them with "
                        "`.venv/bin/python scripts/build_probe.py`") from e
    return images
