"""Your own images: a .zip of class folders or a .npz, checked by the engine and raced like a bundled dataset.

The engine does the safe part (:mod:`tl_engine.data.uploads`: every cap, decoded once, private folder, content
name). This module only remembers, per browser session, what was accepted (selectable for the whole session)
and what was rejected or could not be kept (its message, so a failed 50 MB file is not parsed again on every
rerun: a bad file, a full disk, a read-only data folder). Names in messages are escaped (:mod:`tl_ui.safe_text`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from tl_engine.data import Upload, save_upload
from tl_engine.errors import UserError
from tl_ui import keys
from tl_ui.safe_text import md

SUFFIXES = ("zip", "npz")


@st.cache_resource(show_spinner="Reading your images…", max_entries=32)
def _accept(filename: str, digest: str, _data: bytes) -> Upload:
    """Parse and keep one upload (cached by content: a second tab with the same file costs nothing)."""
    return save_upload(filename, _data)


def uploader(container: Any) -> Upload | None:
    """The upload widget in ``container``; the new upload, or None. Errors are shown right under the widget."""
    ss = st.session_state
    errors: dict[str, str] = ss.setdefault(keys.UPLOAD_ERRORS, {})
    with container.expander("Use your own images", expanded=bool(errors)):
        st.caption("A .zip with one folder per class (optionally under train/, val/ and test/), or a .npz with "
                   "train_images, train_labels, test_images, test_labels (and optionally val_*). "
                   "PNG, JPEG, BMP, GIF and WebP images; limits: docs/limits.md.")
        file = st.file_uploader("Dataset file", type=list(SUFFIXES), key="w_upload")
        if file is None:
            return None
        data = file.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in errors:
            st.error(errors[digest])
            return None
        try:
            up = _accept(file.name, digest, data)
        except UserError as e:  # a file that cannot be used, or a server that cannot keep it (StorageError)
            said = md(e, limit=1000)  # the engine's message usually starts with the file's name already
            errors[digest] = said if str(e).startswith(file.name) else f"{md(file.name)}: {said}"
        except OSError as e:  # not turned into a message by the engine: still one line, never a traceback
            errors[digest] = (f"{md(file.name)}: this server could not read or keep the file "
                              f"({md(e.strerror or type(e).__name__)}); reload the page and try again later.")
        if digest in errors:
            st.error(errors[digest])
            return None
        n = up.info.n_train + up.info.n_val + up.info.n_test
        shown = ", ".join(md(c, limit=30) for c in up.info.classes[:8]) + ("…" if len(up.info.classes) > 8 else "")
        st.success(f"{md(up.filename)}: {len(up.info.classes)} classes ({shown}), {n:,} images: "
                   f"{up.info.n_train:,} train / {up.info.n_val:,} validation / {up.info.n_test:,} test.")
        if up.skipped:
            st.warning(f"{up.skipped} file(s) skipped: " + "; ".join(md(r, limit=200) for r in up.skipped_reasons))
        return up
