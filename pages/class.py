"""The class page: every race stored on this server, pooled into the sweeps' two pictures (against k and against
training size), with the same noise rule and verdict words as the Experiments page.

Thin: the pooling lives in tl_engine.experiments.pool, the figures in tl_ui.class_charts. The store is read once
per change of its files; one fragment checks the files' stamp every few seconds (a stat, no redraw) and reruns
the page only when a race was stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import streamlit as st

from tl_engine.config import RaceResult
from tl_engine.data import list_datasets
from tl_engine.errors import StoreError
from tl_engine.experiments import pool
from tl_engine.store import ResultStore
from tl_ui import class_charts, keys
from tl_ui import experiment_charts as charts
from tl_ui.style import ICON

# Also set here: a deep link (/class) on a freshly started server runs this page before app.py's navigation.
st.set_page_config(page_title="Class · Transfer learning race", page_icon=ICON, layout="wide")

CSS = Path(__file__).resolve().parent.parent / "assets" / "style.css"
POLL_SECONDS = 3.0  # a race appears this long after it was stored, at most (one stat per tab per poll)
WINDOWS = {"the last hour": timedelta(hours=1), "today": None, "the last 7 days": timedelta(days=7),
           "all time": None}
SAID = {"the last hour": "in the last hour", "today": "today", "the last 7 days": "in the last 7 days",
        "all time": "at any time"}
PICTURES = {"freeze": ("Accuracy against k", "Fine-tune with different numbers of frozen stages *k*; scratch and "
                       "frozen, which *k* cannot move, as reference lines."),
            "size": ("Accuracy against training size", "All three strategies at each training-set size the class "
                     "raced: a learning curve.")}


@st.cache_resource(show_spinner=False, max_entries=2)
def stored(path: str, stamp: tuple) -> list[RaceResult]:
    """Every stored race; cached per stamp of the store's files, shared read-only by every tab."""
    return ResultStore(path).all()


def since(window: str, now: datetime) -> datetime | None:
    if window == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    span = WINDOWS[window]
    return None if span is None else now - span


def filters(results: list[RaceResult]) -> list[RaceResult]:
    """The teacher's filters (dataset, time window); returns the races they keep."""
    names = {i.name: i.title for i in list_datasets()}
    mine = [r for r in results if pool.is_bundled(r, names)]
    counts = {n: sum(r.config.dataset == n for r in mine) for n in names}
    present = [n for n in names if counts[n]] or list(names)
    c1, c2 = st.columns(2)
    name = c1.selectbox("Dataset", present, key=keys.CLASS_DATASET,
                        format_func=lambda n: f"{names[n]} ({counts[n]} race{'s' if counts[n] != 1 else ''})")
    window = c2.radio("Finished in", list(WINDOWS), index=1, horizontal=True, key=keys.CLASS_WINDOW)
    kept = pool.in_window([r for r in mine if r.config.dataset == name], since(window, datetime.now().astimezone()))
    own = len(results) - len(mine)
    st.caption(f"{len(kept)} stored race{'s' if len(kept) != 1 else ''} on {names[name]} finished {SAID[window]}."
               + (f" {own} race{'s' if own != 1 else ''} on students' own images "
                  "are not pooled (their pictures differ)." if own else ""))
    return kept


def picture(kind: str, kept: list[RaceResult]) -> None:
    title, what = PICTURES[kind]
    st.subheader(title)
    groups = pool.groups(kind, kept)
    if not groups:
        st.info("No races for this picture yet: " + ("races with fine-tune at different *k* draw it." if
                kind == "freeze" else "races at different training sizes draw it."))
        return
    st.markdown(what)
    fields = pool.telling_fields(groups)
    g = groups[0]
    if len(groups) > 1:
        i = st.selectbox("Races that share these settings", range(len(groups)), key=f"{keys.CLASS_GROUP}{kind}",
                         format_func=lambda i: f"{groups[i].describe(fields)} ({len(groups[i].races)} races)",
                         help="Only races that differ in nothing but this setting and the seed are comparable.")
        g = groups[i]
    verdict = pool.group_verdict(g)
    st.markdown(charts.verdict_html(verdict), unsafe_allow_html=True)
    fig = class_charts.k_figure(g, verdict) if kind == "freeze" else class_charts.size_figure(g, verdict)
    st.plotly_chart(fig, key=f"class_chart_{kind}", width="stretch", theme=None)
    st.caption(f"{len(g.races)} races, {len(g.xs)} different "
               f"{'k' if kind == 'freeze' else 'sizes'}; shared settings: {g.describe()}.")


def main() -> None:
    st.markdown(f"<style>{CSS.read_text()}</style>", unsafe_allow_html=True)
    st.title("The class")
    st.markdown('<p class="tl-sub">Every race finished on this server, pooled: what the class found together. '
                "One marker per race; no names.</p>", unsafe_allow_html=True)
    store = ResultStore()
    stamp = store.stamp()
    st.session_state[keys.CLASS_STAMP] = stamp
    try:
        results = stored(str(store.path), stamp)
    except StoreError as e:
        st.warning(str(e))
        results = []
    kept = filters(results)
    for kind in PICTURES:
        picture(kind, kept)
    if kept:
        import pandas as pd

        st.download_button("Download CSV (one row per race and strategy)",
                           pd.DataFrame(pool.csv_rows(kept), columns=pool.CSV_FIELDS).to_csv(index=False),
                           file_name="class-races.csv", mime="text/csv", key="class_csv")

    def watch() -> None:  # a stat of two files; the page reruns only when a race was stored
        if ResultStore().stamp() != st.session_state.get(keys.CLASS_STAMP):
            st.rerun()

    st.fragment(watch, run_every=POLL_SECONDS)()


main()
