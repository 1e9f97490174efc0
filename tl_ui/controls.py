"""The sidebar: every race setting as a widget, restored from and written back to the URL.

Settings are kept in ``st.session_state[keys.SETTINGS]`` (a plain dict, not a widget key) so that they survive
a visit to another page, where Streamlit forgets the state of widgets it did not draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from tl_engine.config import BACKBONE_NAMES, KNOWN_STRATEGIES, MAX_RACERS, NUM_STAGES
from tl_engine.data import DatasetInfo, Upload, draw_note, is_upload, load_meta
from tl_engine.errors import DataError
from tl_engine.experiments import noise_sentence
from tl_ui import keys
from tl_ui import settings as S
from tl_ui.safe_text import md, one_line
from tl_ui.style import backbone_label, label, plural
from tl_ui.upload import uploader

W = keys.WIDGET_PREFIX


def _seed_widgets(values: dict[str, Any]) -> None:
    """Give each widget its value before it is drawn (only where Streamlit has none)."""
    for k, v in values.items():
        st.session_state.setdefault(W + k, list(v) if isinstance(v, tuple) else v)  # a multiselect holds a list


def remember(up: Upload, select: bool = True) -> None:
    """Make an upload selectable for the rest of the session (and select it: it is what the user wants)."""
    st.session_state.setdefault(keys.UPLOADS, {})[up.name] = up
    if select:
        st.session_state[W + "dataset"] = up.name


PENDING_UPLOAD = "tl_pending_upload"  # an upload made below the sidebar (the builder), selected on the next run


def select_on_next_run(up: Upload) -> None:
    """Select ``up`` from the next run on: the dataset widget is already drawn in this one, and Streamlit
    refuses a new value for a widget after it was instantiated (StreamlitWidgetAlreadyInstantiatedError)."""
    st.session_state[PENDING_UPLOAD] = up


def _linked_upload(query: dict[str, str]) -> None:
    """A shared link may name an upload: use it if this server still has it, else say why it is not used."""
    name = query.get("dataset", "")
    if not is_upload(name) or name in st.session_state.get(keys.UPLOADS, {}):
        return
    try:
        remember(load_meta(name), select=False)
    except DataError as e:
        st.warning(f"The link's dataset is not available: {md(e, limit=1000)} Showing a bundled dataset instead.")


def sidebar(datasets: Sequence[DatasetInfo]) -> tuple[dict[str, Any], DatasetInfo]:
    """Draw the controls; return the current settings (RunConfig field -> value) and the dataset's info."""
    ss = st.session_state
    if keys.SETTINGS not in ss:  # first run of this session: the URL decides
        query = st.query_params.to_dict()
        _linked_upload(query)
        known = [*datasets, *(u.info for u in ss.get(keys.UPLOADS, {}).values())]
        ss[keys.SETTINGS] = S.settings_from_query(query, known)
    _seed_widgets(ss[keys.SETTINGS])
    if (pending := ss.pop(PENDING_UPLOAD, None)) is not None:
        remember(pending)  # before the dataset widget is drawn

    sb = st.sidebar
    sb.header("Race settings")
    dataset_box = sb.container()  # drawn after the uploader below, which may add (and select) a dataset
    own = uploader(sb)
    if own is not None and own.name not in ss.get(keys.UPLOADS, {}):
        remember(own)
    by_name = {i.name: i for i in [*datasets, *(u.info for u in ss.get(keys.UPLOADS, {}).values())]}
    if ss[W + "dataset"] not in by_name:
        ss[W + "dataset"] = S.default_settings(datasets)["dataset"]
    name = dataset_box.selectbox("Dataset", list(by_name), key=W + "dataset",
                                 format_func=lambda n: one_line(by_name[n].title))
    info = by_name[name]
    dataset_box.markdown(f"{md(info.domain, 200)}  \n{info.n_train:,} train / {info.n_val:,} validation / "
                         f"{info.n_test:,} test images · {len(info.classes)} classes")
    sb.selectbox("Backbone (ImageNet-pretrained)", list(BACKBONE_NAMES), key=W + "backbone",
                 format_func=backbone_label)
    racers = sb.multiselect(f"Racers (up to {MAX_RACERS})", list(KNOWN_STRATEGIES), key=W + "strategies",
                            max_selections=MAX_RACERS, format_func=label,
                            help="Scratch, Frozen and Fine-tune are the classic three. Head first trains the new "
                                 "head alone, then unfreezes; LoRA adds small adapters beside locked weights; Early "
                                 "layers uses only the first stages; Pixels is the no-network baseline.")
    if not racers:
        sb.caption("No racer picked: the race runs the default three.")

    fit_sizes(info)
    n = size_control(sb, "Training images (target data)", S.train_options(info), "train_size")
    sb.caption(f"≈ {plural(n / len(info.classes), 'image')} per class"
               + (f". {note}" if (note := draw_note(info, "train", n, show=md)) else ""))
    sb.slider("Frozen stages k (fine-tune)", 0, NUM_STAGES, key=W + "frozen_stages",
              help="Fine-tune keeps the first k of the 7 stages at their ImageNet weights and trains the rest. "
                   "k = 0 trains everything, k = 7 equals the frozen strategy.")
    sb.slider("Epochs", 1, S.MAX_EPOCHS, key=W + "epochs")

    with sb.expander("Advanced"):
        st.select_slider("Resolution (pixels)", S.RESOLUTIONS, key=W + "resolution")
        lr = dict(options=S.LEARNING_RATES, format_func=lambda v: f"{v:g}")
        st.select_slider("Learning rate, new head", key=W + "lr_head", **lr)
        st.select_slider("Body learning rate (× the head's)", S.BODY_MULTIPLES, key=W + "body_x",
                         format_func=lambda v: f"{v:g}×",
                         help="Fine-tune's pretrained stages and LoRA's adapters learn at this multiple of the head's "
                              f"rate; head first uses {S.DEFAULTS.gradual_ratio:g}× of that. 10× pushes fine-tune "
                              "into forgetting ImageNet (see the ImageNet agreement after a race).")
        st.select_slider("LoRA rank r", S.LORA_RANKS, key=W + "lora_rank",
                         help="Rank of LoRA's adapters: more rank, more trainable parameters.")
        st.select_slider("Learning rate, from scratch", key=W + "lr_scratch", **lr)
        st.toggle("Augment (random shifts of ±6 % and zoom 0.9–1.1×)", key=W + "augment")
        st.number_input("Seed", 0, S.MAX_SEED, step=1, key=W + "seed")
        size_control(st, "Test images", S.test_options(info), "test_size")
    test_size = ss[W + "test_size"]
    dataset_box.caption((f"How the splits were made: {md(info.splits, limit=600)} " if info.splits else "")
                        + noise_sentence(test_size))

    values = {k: ss[W + k] for k in S.URL_NAMES}
    ss[keys.SETTINGS] = values
    query = S.to_query(values)
    if st.query_params.to_dict() != query:  # write only on change: each write is a message to the browser
        st.query_params.from_dict(query)
    # Not a URL setting: the default validation draw, fitted to the dataset (at least one image per class).
    return {**values, "val_size": S.fitted(info, "val_size")}, info


def fit_sizes(info: DatasetInfo) -> None:
    """Before the size sliders are drawn: a dataset chosen just now starts at its fitted defaults (the largest
    class-balanced draw at most), or at the size chosen before if that is smaller and was not just the previous
    dataset's default; a value the dataset cannot supply snaps to the nearest one it can."""
    ss = st.session_state
    fitted = {key: S.fitted(info, key) for key in ("train_size", "test_size")}
    before, before_fitted = ss.get(keys.SIZED_FOR, (info.name, fitted))
    new = before != info.name
    ss[keys.SIZED_FOR] = (info.name, fitted)
    for key, options in (("train_size", S.train_options(info)), ("test_size", S.test_options(info))):
        value = ss[W + key]
        if new:
            value = fitted[key] if value == before_fitted.get(key) else min(value, fitted[key])
        if new or value not in options:
            ss[W + key] = S.snap(value, options)


def size_control(where: Any, label: str, options: list[int], key: str) -> int:
    """A select-slider over ``options``; a caption instead when only one size can run (a slider of one value
    offers nothing to choose)."""
    if len(options) == 1:
        st.session_state[W + key] = options[0]
        where.caption(f"{label}: {options[0]:,} (the only size this dataset allows)")
        return options[0]
    return where.select_slider(label, options, key=W + key, format_func=lambda v: f"{v:,}")
