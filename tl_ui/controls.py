"""The sidebar: every race setting as a widget, restored from and written back to the URL.

Settings are kept in ``st.session_state["tl_settings"]`` (a plain dict, not a widget key) so that they survive
a visit to another page, where Streamlit forgets the state of widgets it did not draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from tl_engine.config import BACKBONE_NAMES, NUM_STAGES
from tl_ui import settings as S
from tl_ui.upload import uploader

_PREFIX = "w_"  # widget keys: "w_train_size", ...


def _seed_widgets(values: dict[str, Any]) -> None:
    """Give each widget its value before it is drawn (only where Streamlit has none)."""
    for k, v in values.items():
        st.session_state.setdefault(_PREFIX + k, v)


def sidebar(datasets: Sequence[Any], backbone_title: Callable[[str], str] = str) -> tuple[dict[str, Any], Any]:
    """Draw the controls; return the current settings (RunConfig field -> value) and the dataset's info.

    Args:
        datasets: ``list_datasets()`` records (name, domain, similarity, n_train, n_test, classes).
        backbone_title: how to name a backbone in its select box.
    """
    ss = st.session_state
    if "tl_settings" not in ss:  # first run of this session: the URL decides
        ss["tl_settings"] = S.settings_from_query(st.query_params.to_dict(), datasets)
    _seed_widgets(ss["tl_settings"])

    sb = st.sidebar
    sb.header("Race settings")
    dataset_box = sb.container()  # drawn after the uploader below, which may add (and select) a dataset
    uploads = ss.setdefault("tl_uploads", {})  # path -> info: stays selectable for the whole session
    own = uploader(sb)
    if own is not None and own.name not in uploads:
        uploads[own.name] = own
        ss[_PREFIX + "dataset"] = own.name  # a fresh upload is what the user wants to race
    by_name = {i.name: i for i in [*datasets, *uploads.values()]}
    if ss[_PREFIX + "dataset"] not in by_name:
        ss[_PREFIX + "dataset"] = S.default_settings(datasets)["dataset"]
    name = dataset_box.selectbox("Dataset", list(by_name), key="w_dataset",
                                 format_func=lambda n: getattr(by_name[n], "title", n))
    info = by_name[name]
    dataset_box.markdown(
        f"{info.domain}  \nSimilar to ImageNet? **{info.similarity}**  \n"
        f"{info.n_train:,} train / {info.n_test:,} test images · {S.num_classes(info)} classes"
    )
    sb.selectbox("Backbone (ImageNet-pretrained)", list(BACKBONE_NAMES), key="w_backbone",
                 format_func=backbone_title)

    # The dataset may just have changed: snap sizes to steps it can supply before the sliders are drawn.
    for key, options in (("train_size", S.train_options(info)), ("test_size", S.test_options(info))):
        if ss[_PREFIX + key] not in options:
            ss[_PREFIX + key] = S.snap(ss[_PREFIX + key], options)
    n = sb.select_slider("Training images (target data)", S.train_options(info), key="w_train_size",
                         format_func=lambda v: f"{v:,}")
    sb.caption(f"≈ {n / S.num_classes(info):.0f} images per class")
    sb.slider("Frozen stages k (fine-tune)", 0, NUM_STAGES, key="w_frozen_stages",
              help="Fine-tune keeps the first k of the 7 stages at their ImageNet weights and trains the rest. "
                   "k = 0 trains everything, k = 7 equals the frozen strategy.")
    sb.slider("Epochs", 1, S.MAX_EPOCHS, key="w_epochs")

    with sb.expander("Advanced"):
        st.select_slider("Resolution (pixels)", S.RESOLUTIONS, key="w_resolution")
        lr = dict(options=S.LEARNING_RATES, format_func=lambda v: f"{v:g}")
        st.select_slider("Learning rate, new head", key="w_lr_head", **lr)
        st.select_slider("Learning rate, fine-tuned stages", key="w_lr_body", **lr)
        st.select_slider("Learning rate, from scratch", key="w_lr_scratch", **lr)
        st.toggle("Augment (random shifts and flips)", key="w_augment")
        st.number_input("Seed", 0, S.MAX_SEED, step=1, key="w_seed")
        st.select_slider("Test images", S.test_options(info), key="w_test_size", format_func=lambda v: f"{v:,}")

    values = {k: ss[_PREFIX + k] for k in S.URL_NAMES}
    ss["tl_settings"] = values
    query = S.to_query(values)
    if st.query_params.to_dict() != query:  # write only on change: each write is a message to the browser
        st.query_params.from_dict(query)
    return values, info
