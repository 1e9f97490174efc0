"""The dataset builder: name classes, add shots from the camera or dropped files, race on them.

Teachable Machine is the model for how easy it must feel. The images live in this browser session only
(``st.session_state``); "Race on these" packs them as a zip in the very layout the upload accepts (one folder
per class) and hands it to :func:`tl_engine.data.uploads.save_upload`, so they go through every check an upload
does. The kept copy is deleted when the session ends (:func:`_session_uploads` ``on_release``); the zip can be
downloaded first and uploaded again later.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
from PIL import Image

from tl_engine.data import Skip, Upload, decode, delete_upload, min_per_class, save_upload
from tl_engine.errors import DataError
from tl_ui import classroom, keys
from tl_ui.safe_text import md

MAX_CLASSES = 10  # a classroom builder; more classes need more shots than a lesson has time for
MAX_PER_CLASS = 200  # shots or files per class (each is re-encoded to a small JPEG, so ~20 KB each)
MAX_FILE_BYTES = 20 * 2**20  # one dropped file
THUMB = 64  # pixels, for the thumbnails
SHOT_SIZE = 256  # pixels: shots and files are kept as centre-cropped squares of this size (JPEG)
GOOD_PER_CLASS = 20  # the number the page suggests: below it a race is noisy (a rule of thumb)
MIN_PER_CLASS = min_per_class(("val", "test"))  # one image each for validation and test, one to train on
BLACK_MEAN = 4.0  # a shot whose mean pixel value (0..255) is below this counts as black and is not kept


@dataclass
class Builder:
    """The classes and their images (JPEG bytes), in the order they were added."""

    classes: dict[str, list[bytes]] = field(default_factory=dict)
    camera_round: int = 0  # bumped after each shot: a fresh camera widget, so one click takes one shot

    def ready(self) -> tuple[bool, str]:
        """Whether a race can start, and what is missing (a message a student can act on)."""
        if len(self.classes) < 2:
            return False, "Add at least two classes."
        few = [c for c, ims in self.classes.items() if len(ims) < MIN_PER_CLASS]
        if few:
            return False, (f"{', '.join(few)}: each class needs at least {MIN_PER_CLASS} images (one for "
                           "validation, one for testing, the rest to train on); "
                           f"{GOOD_PER_CLASS} or more make a fairer race.")
        return True, ""

    def zip_bytes(self) -> bytes:
        """The images in the upload's layout: ``<class>/<n>.jpg``."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # JPEGs do not compress further
            for c, ims in self.classes.items():
                for i, data in enumerate(ims):
                    zf.writestr(f"{c}/{i:04d}.jpg", data)
        return buf.getvalue()


def is_black(a: np.ndarray) -> bool:
    """Whether a shot is (nearly) all black: a camera's first frames often are, before its stream has a picture."""
    return float(np.asarray(a, dtype=np.float32).mean()) < BLACK_MEAN


def _normalise(data: bytes, skip_black: bool = False) -> bytes | None:
    """A shot or file -> a SHOT_SIZE square JPEG, through the engine's safe decoder (None if unusable, or black
    when ``skip_black``)."""
    try:
        a = decode(data, SHOT_SIZE)
    except Skip:
        return None
    if skip_black and is_black(a):
        return None
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG", quality=90)
    return out.getvalue()


def _clean_name(raw: str) -> str:
    return re.sub(r"[^\w -]+", "", raw, flags=re.UNICODE).strip()[:40]


def _delete_all(names: list[str]) -> None:
    for n in names:
        delete_upload(n)


@st.cache_resource(scope="session", on_release=_delete_all, show_spinner=False)
def _session_uploads() -> list[str]:
    """Uploads made by this session's builder: deleted when the session ends."""
    return []


def builder_panel() -> Upload | None:
    """Draw the builder; returns the upload made by "Race on these" (once), else None."""
    ss = st.session_state
    b: Builder = ss.setdefault(keys.BUILDER, Builder())
    with st.form("tl_add_class", clear_on_submit=True, border=False):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        name = c1.text_input("New class", placeholder="e.g. mug, banana, pen", max_chars=40)
        if c2.form_submit_button("Add class", width="stretch"):
            clean = _clean_name(name)
            if not clean:
                st.warning("Give the class a name (letters, digits, spaces).")
            elif clean in b.classes:
                st.warning(f"There is already a class {clean!r}.")
            elif len(b.classes) >= MAX_CLASSES:
                st.warning(f"At most {MAX_CLASSES} classes.")
            else:
                b.classes[clean] = []
    _camera(b)
    for c in list(b.classes):
        _class_box(b, c)
    ok, why = b.ready()
    if b.classes and not ok:
        st.info(why)
    if not b.classes:
        return None
    c1, c2 = st.columns(2)
    made = None
    if c1.button("▷ Race on these", type="primary", disabled=not ok, width="stretch", key="tl_build_race"):
        try:
            made = save_upload("my-classes.zip", b.zip_bytes())
            _session_uploads().append(made.name)
        except DataError as e:
            st.error(md(e, limit=1000))
    c2.download_button("Download as .zip", b.zip_bytes() if ok else b"", file_name="my-classes.zip",
                       mime="application/zip", disabled=not ok, width="stretch", key="tl_build_zip")
    return made


def _camera(b: Builder) -> None:
    """One camera for the class picked above it (one live stream, not one per class: the browser stays light)."""
    open_ = [c for c, ims in b.classes.items() if len(ims) < MAX_PER_CLASS]
    if not open_:
        return
    if st.session_state.get(keys.CAMERA_TARGET) not in open_:  # a class was removed or filled up
        st.session_state[keys.CAMERA_TARGET] = open_[0]
    target = st.radio("Shots go to", open_, horizontal=True, key=keys.CAMERA_TARGET)
    # Keyed by class and round: a new class or a taken shot gives a fresh widget, so one click is one shot.
    shot = classroom.camera_input(f"Take a photo of “{target}”", key=f"tl_cam_{target}_{b.camera_round}")
    if shot is not None:
        data = _normalise(shot.getvalue(), skip_black=True)
        if data is not None:
            b.classes[target].append(data)
        else:  # not kept: a black or unreadable shot would teach the network nothing
            st.session_state[f"tl_bad_{target}"] = ("That shot came out black or could not be read (a camera's "
                                                    "first frame often is black): it was not kept; take it again.")
        b.camera_round += 1
        st.rerun()


def _class_box(b: Builder, c: str) -> None:
    ims = b.classes[c]
    with st.container(border=True):
        head, rm = st.columns([4, 1], vertical_alignment="center")
        head.markdown(f"**{c}** · {len(ims)} image{'s' if len(ims) != 1 else ''}")
        if rm.button("Remove class", key=f"tl_rm_class_{c}"):
            del b.classes[c]
            st.rerun()
        if len(ims) < MAX_PER_CLASS:
            files = st.file_uploader(f"…or drop images of “{c}”", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                                     accept_multiple_files=True, key=f"tl_files_{c}_{b.camera_round}")
            if files:
                bad = 0
                for f in files[: MAX_PER_CLASS - len(ims)]:
                    data = _normalise(f.getvalue()) if f.size <= MAX_FILE_BYTES else None
                    bad += data is None
                    if data is not None:
                        ims.append(data)
                if bad:
                    st.session_state[f"tl_bad_{c}"] = f"{bad} file(s) could not be read as PNG/JPEG/BMP/GIF/WebP."
                b.camera_round += 1
                st.rerun()
        else:
            st.caption(f"{MAX_PER_CLASS} images is the most a class can hold here.")
        if msg := st.session_state.pop(f"tl_bad_{c}", None):
            st.warning(msg)
        _thumbnails(c, ims)


def _thumbnails(c: str, ims: list[bytes]) -> None:
    cols = st.columns(8)
    for i, data in enumerate(ims[-16:]):  # the newest 16: enough to see what was taken
        idx = len(ims) - min(16, len(ims)) + i
        with cols[i % 8]:
            st.image(data, width=THUMB)
            if st.button("✕", key=f"tl_rm_{c}_{idx}_{len(ims)}", help="remove this image"):
                del ims[idx]
                st.rerun()
