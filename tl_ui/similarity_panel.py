""""What ImageNet sees in these images": the ImageNet classifier's own labels for a sample, and the measured score.

Measuring runs the 1,000-class ImageNet network on 200 images at 224 px (20-30 s on a 2-core CPU), so it
happens only when someone presses Measure; the result is kept on disk (tl_engine.inspect.similarity) and every page,
the decision guide and the domain experiment then read it for free.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tl_engine.config import RunConfig
from tl_engine.data import DatasetInfo, load_dataset
from tl_engine.errors import UserError
from tl_engine.inspect import SIMILAR_FROM, Similarity, example_images, guide_word, measure, similarity
from tl_engine.store import Timings, file_stamp
from tl_ui import previews, timing
from tl_ui.safe_text import md, one_line

SAMPLE = 200  # images measure() runs by default (its ``sample``)


@st.cache_resource(show_spinner=False, max_entries=64)
def _measured(dataset: str, backbone: str, stamp: tuple) -> Similarity | None:
    return similarity.cached(dataset, backbone)


def measured(dataset: str, backbone: str) -> Similarity | None:
    """The stored similarity of a dataset (None if never measured), read once per change of the cache file:
    finding its key loads the whole dataset (~0.1 s), too much for every run of every tab. A dataset's name
    fixes its images (bundled files; uploads are named by their content's hash)."""
    return _measured(dataset, backbone, file_stamp(similarity.cache_path()))


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs={Similarity: lambda s: repr(s.to_dict())})
def _example_rows(sim: Similarity, dataset: str) -> list:
    """The example images of the top labels, as captioned rows: drawn once, not on every run (the expander's
    body runs even when it is closed, and loading the dataset for them costs ~0.1 s)."""
    ds = load_dataset(dataset)
    rows = []
    for top in sim.top_labels[:5]:
        ims = example_images(ds, top)
        rows.append(previews.image_row(ims, [f"{top.label}"] * len(ims)))
    return rows


def imagenet_view(cfg: RunConfig, info: DatasetInfo) -> None:
    with st.expander("What ImageNet sees in these images", expanded=False):
        try:
            sim = measured(cfg.dataset, cfg.backbone)
        except UserError as e:
            st.error(md(e, limit=1000))
            return
        if sim is None:
            st.caption("Runs the pretrained network with its original 1,000-class ImageNet head on 200 training "
                       "and validation images (never test images) and scores how confidently it recognises "
                       "them and how well its outputs tell your classes apart: 0 = not at all, 1 = perfectly.")
            kind = f"similarity:{cfg.backbone}"  # seconds per image, measured on this machine (tl_ui.timing)
            if not st.button(timing.button_label("Measure", Timings().estimate(kind, SAMPLE)), key="tl_measure_sim"):
                return
            try:
                sim = timing.run_timed(lambda: measure(cfg.dataset, cfg.backbone, sample=SAMPLE), kind, SAMPLE,
                                       f"Running the ImageNet classifier on {SAMPLE} images",
                                       record=lambda s: not s.details.get("cached"))
            except UserError as e:
                st.error(md(e, limit=1000))
                return
        _show(sim, cfg)


def _show(sim: Similarity, cfg: RunConfig) -> None:
    d = sim.details
    st.markdown(f"**Similarity to ImageNet: {sim.score:.2f}** (95 % interval {d['score_low']:.2f}–"
                f"{d['score_high']:.2f}, from {sim.n_images} images): confidence {d['confidence']:.2f} × "
                f"separation {d['separation']:.2f}, combined as their geometric mean: **{guide_word(sim.score)}** "
                f"by the decision guide ({SIMILAR_FROM} or more is similar).")
    st.caption(f"Method: {sim.method}. Sets of real photos of everyday things scored 0.72–0.84 here, textures "
               "0.56, medical scans 0.41–0.44, handwritten digits 0.38 (MobileNetV2; see docs/datasets.md).")
    for top, row in zip(sim.top_labels[:5], _example_rows(sim, cfg.dataset), strict=True):
        st.markdown(f"ImageNet says **{top.label}** for {top.share:.0%} of the sample; its most confident cases:")
        st.image(row)
    if d.get("per_class"):
        rows = [{**r, "class": one_line(r.get("class", ""))} for r in d["per_class"]]  # a folder name: one line
        st.dataframe(pd.DataFrame(rows).rename(columns={
            "class": "your class", "n": "images", "label": "ImageNet's usual label", "share": "share"}),
            hide_index=True, width="stretch")
