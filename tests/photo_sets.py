"""Teachers' real upload shapes, generated with Pillow (small images, so tests stay fast): the `train/` + `val/`
photo layout with unequal classes, an imbalanced set, a camera set of a few shots, and many classes.

Each layout maps a folder path inside the zip ("train/ants") to its image count. Every class gets its own hue,
so a race can learn something, with a little noise so that no two images are equal.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

ANTS_BEES = {"train/ants": 105, "train/bees": 103, "val/ants": 70, "val/bees": 83}  # the photo zip
IMBALANCED = {"cats": 20, "dogs": 4}
CAMERA = {"mug": 6, "pen": 4}


def many_classes(n_classes: int, per_class: int) -> dict[str, int]:
    return {f"class{i:04d}": per_class for i in range(n_classes)}


def photo_zip(layout: dict[str, int], size: int = 24, wrapper: str = "photos", seed: int = 0) -> bytes:
    """A .zip of PNGs in ``layout`` (see the module docstring), under one wrapper folder."""
    rng = np.random.default_rng(seed)
    classes = sorted({path.rsplit("/", 1)[-1] for path in layout})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, n in layout.items():
            c = classes.index(path.rsplit("/", 1)[-1])
            base = np.array([(97 * c) % 256, (57 * c + 80) % 256, (31 * c + 160) % 256], np.int16)
            for i in range(n):
                px = np.clip(base + rng.integers(-30, 31, (size, size, 3)), 0, 255).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(px).save(out, "PNG")
                zf.writestr(f"{wrapper}/{path}/{i:04d}.png", out.getvalue())
    return buf.getvalue()
