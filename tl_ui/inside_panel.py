"""The race page's views of the data and of what the models learned (Streamlit code; the figures are pure).

- :func:`data_preview`: sample training images per class, as stored or as the network sees them.
- :func:`look_inside`: after a race, one panel with tabs: confusion matrices (click a cell to see its images),
  accuracy per class, top mistakes, Δθ per stage, first-layer filters, feature map, "try your own photo",
  and downloads. The numbers come from the race result (so a race answered from the store shows them too);
  filters, the feature map and predictions need the trained models, which the job's worker saved.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from tl_engine.config import RunConfig
from tl_engine.data import DatasetInfo, load_dataset, split_balanced
from tl_engine.jobs import JobSnapshot
from tl_engine.models import label
from tl_ui import classroom, previews
from tl_ui import inside_charts as ic
from tl_ui.counters import inside_note
from tl_ui.previews import mistake_caption
from tl_ui.race_live import plot
from tl_ui.safe_text import md

MAX_CM_CLASSES = 30  # a bigger confusion matrix is unreadable, and 1,000 classes would send a million cells
PHOTO_SIDE = 256  # "Try your photo" decodes a photo's centre square to 256-511 px (at least any race resolution)


@st.cache_data(show_spinner=False, max_entries=16)
def _grid_png(dataset: str, resolution: int | None, page: int = 0) -> bytes:
    """One page of the sample grid as PNG bytes, cached per (dataset, resolution, page)."""
    buf = io.BytesIO()
    previews.sample_grid(load_dataset(dataset), per_class=6, resolution=resolution, page=page).save(buf, "PNG")
    return buf.getvalue()


def data_preview(cfg: RunConfig, info: DatasetInfo) -> None:
    with st.expander(f"See the data: {md(info.title)}", expanded=False):
        as_net = st.toggle(f"As the network sees them ({cfg.resolution} × {cfg.resolution} pixels)",
                           key="tl_preview_net")
        n, per = len(info.classes), previews.CLASSES_PER_PAGE
        page, shown = 0, f"each of the {n} classes"
        if previews.pages(n) > 1:  # many classes: one page of rows at a time keeps the image a few megapixels
            page = st.select_slider("Classes", list(range(previews.pages(n))), key=f"tl_preview_page:{cfg.dataset}",
                                    format_func=lambda p: f"{p * per + 1:,}–{min((p + 1) * per, n):,} of {n:,}")
            shown = f"classes {page * per + 1:,} to {min((page + 1) * per, n):,} of {n:,}"
        st.image(_grid_png(cfg.dataset, cfg.resolution if as_net else None, page),
                 caption=f"Six training images of {shown}, with how many training images each class has.")


@st.cache_data(show_spinner=False, max_entries=8)
def _test_images(cfg_json: str) -> tuple[np.ndarray, np.ndarray]:
    """The race's test images and labels, drawn again exactly as the race drew them (same seed, same sizes)."""
    cfg = RunConfig.from_dict(json.loads(cfg_json))
    sp = split_balanced(load_dataset(cfg.dataset), cfg.train_size, cfg.test_size, cfg.seed, val_size=cfg.val_size)
    return sp.test_x, sp.test_y


def _inside_data(models_dir: str | None) -> dict[str, np.ndarray] | None:
    """What the worker computed from the trained models (filters, feature map), or None."""
    from tl_engine.inspect import INSIDE_FILE  # imports torch: only once a race has finished

    path = Path(models_dir or "") / INSIDE_FILE
    if not models_dir or not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def look_inside(snap: JobSnapshot, info: DatasetInfo) -> None:
    result = snap.result
    cfg, classes = result.config, result.classes or info.classes
    summary = {s: v for s, v in result.summary.items() if v.confusion_matrix is not None}
    if not summary:
        return
    st.subheader("Look inside")
    if snap.status == "stopped":
        st.caption(inside_note(result.epochs, cfg.strategies))
    x_test, y_test = _test_images(json.dumps(cfg.to_dict(), sort_keys=True))
    inside = _inside_data(snap.models_dir)
    tabs = st.tabs(["Confusion", "Per class", "Top mistakes", "Δθ per stage", "First-layer filters", "Feature map",
                    "Try your photo", "Take it home"])
    with tabs[0]:
        _confusion(summary, classes, x_test, y_test)
    with tabs[1]:
        per = {s: v.per_class_acc for s, v in summary.items()}
        st.caption(ic.per_class_caption(per, classes))
        plot(ic.per_class_figure(per, classes), key="tl_per_class")
    with tabs[2]:
        _mistakes(summary, classes, x_test, y_test)
    with tabs[3]:
        delta = {s: v.delta_theta for s, v in summary.items()}
        st.caption(ic.delta_theta_caption(delta))
        plot(ic.delta_theta_figure(delta, cfg.frozen_stages), key="tl_delta")
    if inside is None:
        for t in tabs[4:7]:
            t.info("The trained models of this race are not on this server any more (or it was answered from the "
                   "results store): press **▷ Race it live** to train them again and look inside.")
    else:
        with tabs[4]:
            filters = {k[len("filters_"):]: v for k, v in inside.items() if k.startswith("filters_")}
            st.caption(ic.filters_caption(filters, "imagenet"))
            plot(ic.filters_figure(filters), key="tl_filters")
        with tabs[5]:
            points = {k[len("pca_"):]: v for k, v in inside.items() if k.startswith("pca_")}
            scores = {k[len("sep_"):]: float(v) for k, v in inside.items() if k.startswith("sep_")}
            st.caption(ic.feature_map_caption(scores, len(classes)))
            plot(ic.feature_map_figure(points, inside["labels"], classes), key="tl_features")
        with tabs[6]:
            _try_photo(snap.models_dir, summary, classes, cfg.backbone)
    with tabs[7]:
        _downloads(snap, inside is not None)


def _confusion(summary: dict, classes, x_test: np.ndarray, y_test: np.ndarray) -> None:
    from tl_engine.inspect import cell_members

    s = st.radio("Strategy", list(summary), format_func=label, horizontal=True, key="tl_cm_strategy")
    cm = summary[s].confusion_matrix
    shown = confused_classes(cm)
    note = "" if len(shown) == len(classes) else (f" Shown: the {len(shown)} classes with the most mistakes of "
                                                  f"{len(classes):,} (all of them would be {len(classes)**2:,} cells).")
    st.caption(ic.confusion_caption(cm, classes, s) + note + " Click a cell to see its test images.")
    sub = np.asarray(cm)[np.ix_(shown, shown)]
    event = plot(ic.confusion_figure(sub, [classes[c] for c in shown], s), key=f"tl_cm_{s}", on_select="rerun",
                 selection_mode="points")
    cell = ic.cell_from_selection(event)
    if cell is not None:
        t, p = shown[cell[0]], shown[cell[1]]
        members = cell_members(summary[s], y_test, t, p)[:24]
        st.markdown(f"**True {md(classes[t])}, predicted {md(classes[p])}**: {len(members)} image(s) shown, most "
                    "confident first.")
        if members:
            idx = [i for i, _ in members]
            st.image(previews.image_row(x_test[idx], [f"{c:.0%}" for _, c in members]))


def confused_classes(cm, most: int = MAX_CM_CLASSES) -> list[int]:
    """All classes, or the ``most`` with the most mistakes (as true or predicted class), in class order."""
    m = np.asarray(cm)
    if len(m) <= most:
        return list(range(len(m)))
    wrong = m.sum(0) + m.sum(1) - 2 * np.diag(m)
    return sorted(np.argsort(-wrong, kind="stable")[:most].tolist())


def _mistakes(summary: dict, classes, x_test: np.ndarray, y_test: np.ndarray) -> None:
    from tl_engine.inspect import top_mistakes

    st.caption("The most confident wrong answers of each strategy: what it is sure of and gets wrong.")
    for s, v in summary.items():
        wrong = top_mistakes(v, y_test, k=8)
        st.markdown(f"**{label(s)}**: " + ("no mistakes." if not wrong else ""))
        if wrong:
            idx = [i for i, *_ in wrong]
            caps = [mistake_caption(classes[t], classes[p], c) for _, t, p, c in wrong]
            st.image(previews.image_row(x_test[idx], caps))


def _try_photo(models_dir: str, summary: dict, classes, backbone: str) -> None:
    from tl_engine.inspect import load_exported

    st.caption("Upload a photo or take one with the camera: each trained strategy's top 3 guesses, side by side. "
               + previews.only_classes_note(list(classes)))
    c1, c2 = st.columns(2)
    shot = classroom.camera_input("Take a photo", key="tl_try_cam", where=c1)
    up = c2.file_uploader("…or upload one", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="tl_try_file")
    src = shot or up
    if src is None:
        return
    data = src.getvalue()
    image, why = _photo(hashlib.sha256(data).hexdigest(), data)
    if image is None:
        st.error(f"That photo cannot be used: {why}.")
        return
    preds = {}
    for s in summary:
        path = Path(models_dir) / f"{s}.pt"
        if path.exists():
            module, meta = load_exported(path)
            preds[s] = _top3(module, meta, image)
    st.caption(ic.prediction_caption(preds))
    plot(ic.prediction_table({**preds, "imagenet": _imagenet_top3(image, backbone)}), key="tl_preds")


@st.cache_data(show_spinner=False, max_entries=8)
def _photo(digest: str, _data: bytes) -> tuple[Image.Image | None, str]:
    """A photo decoded once per content (reruns and other tabs reuse it), bounded like every upload: header
    checks and a decoding slot first, then shrunk to about PHOTO_SIDE. (image, "") or (None, why not)."""
    from tl_engine.data import Skip, open_square

    try:
        return open_square(_data, PHOTO_SIDE), ""
    except Skip as e:
        return None, str(e)


def _top3(module, meta: dict, image: Image.Image) -> list[tuple[str, float]]:
    import torch

    from tl_engine.inspect import prepare_image

    a = prepare_image(image, grey=bool(meta.get("grey")))
    with torch.inference_mode():
        probs = module(torch.from_numpy(a))
    top = probs.topk(min(3, len(meta["classes"])))
    return [(meta["classes"][int(i)], float(p)) for p, i in zip(top.values, top.indices)]


def _imagenet_top3(image: Image.Image, backbone: str) -> list[tuple[str, float]]:
    """ImageNet's own top 3 for the photo: the pretrained network with its original 1,000-class head."""
    from tl_engine.inspect import prepare_image
    from tl_engine.inspect.similarity import imagenet_categories, imagenet_probs

    probs = imagenet_probs(prepare_image(image)[None], backbone)[0]
    names = imagenet_categories()
    return [(names[i], float(probs[i])) for i in np.argsort(-probs)[:3]]


def _downloads(snap: JobSnapshot, have_models: bool) -> None:
    result = snap.result
    st.caption("Each trained model as a TorchScript file that loads without this project (class names and "
               "preprocessing inside; see the README for the six lines that use it), and the race as JSON and CSV.")
    cols = st.columns(5)
    if have_models:
        for i, s in enumerate(result.summary):
            path = Path(snap.models_dir) / f"{s}.pt"
            if path.exists():
                cols[i].download_button(f"{label(s)} model (.pt)", path.read_bytes(), file_name=f"{s}.pt",
                                        key=f"tl_dl_{s}")
    cols[3].download_button("Race (.json)", json.dumps(result.to_dict(), indent=1), file_name="race.json",
                            mime="application/json", key="tl_dl_json")
    cols[4].download_button("Epochs (.csv)", _epochs_csv(result), file_name="race.csv", mime="text/csv",
                            key="tl_dl_csv")


def _epochs_csv(result) -> str:
    import pandas as pd

    return pd.DataFrame([e.to_dict() for e in result.epochs]).to_csv(index=False)
