"""Your own images: a .zip of class folders or a .npz, checked by the engine and raced like a bundled dataset.

The upload is saved under a name made from its content hash, so the same file always becomes the same
``RunConfig.dataset`` path (the results store can then reuse its runs) and a re-upload costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from tl_engine.data import load_dataset, max_balanced
from tl_engine.errors import DataError

UPLOAD_DIR = Path(tempfile.gettempdir()) / "tl-race-uploads"
SUFFIXES = ("zip", "npz")


def save_upload(filename: str, data: bytes, root: Path = UPLOAD_DIR) -> Path:
    """Write ``data`` to ``root/<safe stem>-<sha256[:12]>.<zip|npz>`` (idempotent) and return the path."""
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix not in SUFFIXES:
        raise DataError(f"{filename}: upload a .zip of class folders or a .npz file")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename).stem)[:40] or "upload"
    path = root / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.{suffix}"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return path


@st.cache_resource(show_spinner="Reading your images…", max_entries=16)
def dataset_info(path: str) -> Any:
    """The engine's DatasetInfo for an uploaded file, renamed to its path (what RunConfig.dataset holds).

    Its sizes are what a class-balanced draw can take, so the size sliders never offer more than that.
    """
    ds = load_dataset(path)
    n = len(ds.info.classes)
    return dataclasses.replace(
        ds.info, name=path, title=f"Your data: {Path(path).stem}",
        n_train=max_balanced(np.bincount(ds.train_y, minlength=n)),
        n_test=max_balanced(np.bincount(ds.test_y, minlength=n)),
    )


def uploader(container: Any) -> Any | None:
    """The upload widget in ``container``; the uploaded dataset's info, or None (errors are shown there)."""
    with container.expander("Use your own images"):
        st.caption("A .zip with one folder per class (optionally under train/ and test/), or a .npz with "
                   "train_images, train_labels, test_images, test_labels.")
        file = st.file_uploader("Dataset file", type=list(SUFFIXES), key="w_upload")
        if file is None:
            return None
        try:
            return dataset_info(str(save_upload(file.name, file.getvalue(), UPLOAD_DIR)))
        except DataError as e:
            st.error(str(e))
            return None
