""""What ImageNet sees in these images": the ImageNet classifier's own labels for a sample, and the measured score.

Measuring runs the 1,000-class ImageNet network on 200 images at 224 px (20-30 s on a 2-core CPU), so it
happens only when someone presses Measure; the result is kept on disk (tl_engine.similarity) and every page,
the decision guide and the domain experiment then read it for free.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tl_engine.config import RunConfig
from tl_engine.data import load_dataset
from tl_engine.errors import UserError
from tl_engine.imageset import DatasetInfo
from tl_engine.similarity import Similarity, cached, example_images, measure
from tl_ui import previews


def imagenet_view(cfg: RunConfig, info: DatasetInfo) -> None:
    with st.expander("What ImageNet sees in these images", expanded=False):
        try:
            sim = cached(cfg.dataset, cfg.backbone)
        except UserError as e:
            st.error(str(e))
            return
        if sim is None:
            st.caption("Runs the pretrained network with its original 1,000-class ImageNet head on 200 training "
                       "and validation images (never test images) and scores how confidently and how "
                       "consistently ImageNet's labels follow your classes: 0 = not at all, 1 = perfectly.")
            if not st.button("Measure (about half a minute)", key="tl_measure_sim"):
                return
            try:
                with st.spinner("Running the ImageNet classifier…"):
                    sim = measure(cfg.dataset, cfg.backbone)
            except UserError as e:
                st.error(str(e))
                return
        _show(sim, cfg)


def _show(sim: Similarity, cfg: RunConfig) -> None:
    d = sim.details
    st.markdown(f"**Similarity to ImageNet: {sim.score:.2f}** (95 % interval {d['score_low']:.2f}–"
                f"{d['score_high']:.2f}, from {sim.n_images} images): confidence {d['confidence']:.2f} × "
                f"consistency {d['consistency']:.2f}, combined as their geometric mean.")
    st.caption(f"Method: {sim.method}. Everyday photos scored 0.65 here, handwritten digits 0.16 "
               "(see the README).")
    ds = load_dataset(cfg.dataset)
    for top in sim.top_labels[:5]:
        st.markdown(f"ImageNet says **{top.label}** for {top.share:.0%} of the sample; its most confident cases:")
        ims = example_images(ds, top)
        st.image(previews.image_row(ims, [f"{top.label}"] * len(ims)))
    if d.get("per_class"):
        st.dataframe(pd.DataFrame(d["per_class"]).rename(columns={
            "class": "your class", "n": "images", "label": "ImageNet's usual label", "share": "share"}),
            hide_index=True, width="stretch")
