"""The live race page: pick a setup, press "▷ Train all three", watch three strategies race.

Thin on purpose: figures come from tl_ui.charts, the worker from tl_ui.runner, the controls from
tl_ui.controls. The race runs in a daemon thread; a fragment polls its event log while it runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from tl_engine.config import NUM_STAGES, summarize
from tl_engine.data import list_datasets
from tl_engine.errors import ConfigError, DataError
from tl_engine.store import ResultStore
from tl_ui import charts, controls, runner, workers
from tl_ui.counters import counters_html
from tl_ui.settings import num_classes, to_config
from tl_ui.strip import StripRow, strip_html, strip_rows
from tl_ui.style import BACKBONE_LABELS, color
from tl_ui.teaching import guide_cell, guide_html, strategies_html

# Also set here: a deep link (e.g. /experiments) on a freshly started server runs this page before
# app.py has registered the navigation, and it must still get the wide layout.
st.set_page_config(page_title="Race · Transfer learning race", page_icon=":material/flag:", layout="wide")

CSS = Path(__file__).resolve().parent.parent / "assets" / "style.css"
POLL_SECONDS = 0.5


@st.cache_resource(show_spinner=False)
def datasets() -> list:
    return list_datasets()


@st.cache_resource(show_spinner=False)
def stage_rows(backbone: str, n_classes: int, k: int) -> list[StripRow]:
    from tl_engine.backbones import stage_table  # imports torch: only after the first paint

    return strip_rows(stage_table(backbone, n_classes), k)  # builds the model without weights: fast


def plot(fig, key: str) -> None:
    """A chart that keeps its identity (key) across redraws, so Plotly updates it in place."""
    # theme=None: Streamlit's theme would shrink and grey out the big fonts set in tl_ui.charts.
    # No toolbar on a projector.
    st.plotly_chart(fig, key=key, width="stretch", theme=None, config={"displayModeBar": False})


def start(settings: dict, reuse: bool = True) -> None:
    """Button callback: stop any previous race of this session and start a new one (or reuse a stored one)."""
    old = st.session_state.get("race_run")
    if old is not None:
        old.stop()
    st.session_state["race_run"] = run = runner.start_race(to_config(settings), store=ResultStore(), reuse=reuse)
    workers.register(run.stop_event)


def stop() -> None:
    run = st.session_state.get("race_run")
    if run is not None:
        run.stop()


def show_result(snap: runner.Snapshot) -> None:
    summary = summarize(snap.events)
    st.subheader("Result")
    prefix = ""
    if snap.status == "stopped":
        prefix = f"Stopped after {len(snap.events)} of {snap.total} epochs. "
    best = max(summary, key=lambda s: summary[s]["final_test_acc"])
    st.markdown(f'<div class="tl-verdict" style="border-left-color:{color(best)}">{prefix}'
                f"{charts.verdict(summary)}</div>", unsafe_allow_html=True)
    if snap.finished_at:
        st.caption(f"{len(snap.events)} epochs in {snap.finished_at - snap.started_at:.0f} s wall-clock "
                   "(data preparation and weight loading included).")
    plot(charts.summary_figure(summary), key="summary_chart")


def figures(snap: runner.Snapshot, x: str) -> tuple:
    """The race and loss figures, rebuilt only when a new epoch arrived or the x-axis changed.

    Most polls find nothing new; building Plotly figures costs tens of milliseconds of GIL time that the
    training thread needs on a 2-core machine.
    """
    key = (snap.started_at, len(snap.events), x)
    cached = st.session_state.get("tl_figures")
    if cached is None or cached[0] != key:
        cfg = snap.cfg
        all_infos = [*datasets(), *st.session_state.get("tl_uploads", {}).values()]
        info = next((i for i in all_infos if i.name == cfg.dataset), None)
        chance = 1 / num_classes(info) if info else None
        cached = (key, charts.race_figure(snap.events, x, cfg.strategies, cfg.epochs, chance),
                  charts.loss_figure(snap.events, cfg.strategies, x, cfg.epochs))
        st.session_state["tl_figures"] = cached
    return cached[1], cached[2]


@st.fragment(run_every=POLL_SECONDS)
def live_polling() -> None:
    live(polling=True)


@st.fragment
def live_idle() -> None:
    live(polling=False)


def live(polling: bool) -> None:
    """Progress, counters, curves and (once finished) the result, drawn from the worker's event log."""
    run: runner.RaceRun | None = st.session_state.get("race_run")
    if run is None:
        st.info("Press **▷ Train all three** to start the race. Curves appear after each epoch.")
        return
    snap = run.snapshot()
    if polling != snap.running:
        # Once: the full rerun picks the polling or the idle fragment and redraws the buttons. (A race
        # can start from inside this fragment: the "Race it live" button reruns only the fragment.)
        st.rerun()
    cfg = snap.cfg
    if snap.reused_from:
        note, again = st.columns([4, 1], vertical_alignment="center")
        note.info(f"This exact race already ran ({snap.reused_from[:16].replace('T', ' ')} UTC): its stored "
                  "result is shown at once.")
        again.button("▷ Race it live", on_click=start, args=(cfg.to_dict(), False), width="stretch")
    if snap.status == "error":
        st.error(snap.error)
    if snap.running:
        elapsed = time.time() - snap.started_at
        what = "preparing data and ImageNet weights…" if not snap.events else "training"
        if run.stop_event.is_set():
            what = "stopping…"
        st.progress(snap.progress, text=f"{len(snap.events)} of {snap.total} epochs · {elapsed:.0f} s · {what}")
    # Counters beside the chart, not above it: the curves must fit on one projector screen with the strip.
    left, right = st.columns([3.3, 1])
    with right:
        by_seconds = st.toggle("x-axis: compute seconds", key="x_seconds")
        st.markdown(counters_html(snap.events, cfg.strategies, cfg.epochs), unsafe_allow_html=True)
    x = "seconds" if by_seconds else "epoch"
    race_fig, loss_fig = figures(snap, x)
    tab_acc, tab_loss = left.tabs(["Test accuracy", "Loss"])
    with tab_acc:
        plot(race_fig, key="race_chart")
    with tab_loss:
        plot(loss_fig, key="loss_chart")
    if not snap.running and snap.events:
        show_result(snap)


def main() -> None:
    st.markdown(f"<style>{CSS.read_text()}</style>", unsafe_allow_html=True)
    head, c1, c2 = st.columns([3, 1.25, 0.6], vertical_alignment="bottom")  # buttons in the title row
    head.title("Transfer learning race")
    st.markdown(
        '<p class="tl-sub">Same images, same network, three ways to train it. Who wins, and at what cost?</p>',
        unsafe_allow_html=True,
    )
    try:
        infos = datasets()
        settings, info = controls.sidebar(infos, backbone_title=lambda b: BACKBONE_LABELS.get(b, b))
    except (ConfigError, DataError) as e:
        st.error(str(e))
        st.stop()

    # The strip needs torch (stage_table); reserve its place and fill it after the cheap parts are drawn,
    # so that the first paint does not wait for the import on a cold server.
    strip_slot = st.empty()
    strip_slot.caption("Counting the parameters of each stage…")

    run: runner.RaceRun | None = st.session_state.get("race_run")
    snap = run.snapshot() if run else None
    running = bool(snap and snap.running)
    c1.button("▷ Train all three", type="primary", disabled=running, on_click=start, args=(settings,),
              width="stretch")
    c2.button("Stop", disabled=not running, on_click=stop, width="stretch")
    if running and to_config(settings) != snap.cfg:
        st.info("The race keeps running with the settings it started with; your changes apply to the next race.")

    # run_every is fixed when the fragment is defined, so pick the polling or the idle one on each full run.
    (live_polling if running else live_idle)()

    try:
        rows = stage_rows(settings["backbone"], num_classes(info), settings["frozen_stages"])
    except (ConfigError, DataError) as e:
        st.error(str(e))
        st.stop()
    with strip_slot.container():
        st.markdown(strip_html(rows), unsafe_allow_html=True)
        k = settings["frozen_stages"]
        st.caption(f"Coloured blocks learn; grey 🔒 blocks keep their ImageNet weights (fine-tune, k = {k}: "
                   f"the first {k} of {NUM_STAGES} stages). Hatched: random start. Numbers: parameters per block.")

    st.subheader("The three strategies")
    seconds = {s: v["compute_seconds"] for s, v in summarize(snap.events).items()} if snap else {}
    st.markdown(strategies_html(rows, seconds), unsafe_allow_html=True)
    st.subheader("Which one should I use?")
    cell = guide_cell(settings["train_size"] / num_classes(info), info.similarity)
    st.markdown(guide_html(cell), unsafe_allow_html=True)
    if cell[0] is None:
        st.caption(f"How similar your own images are to ImageNet photos is for you to judge: pick the row; "
                   f"with {settings['train_size'] / num_classes(info):.0f} images per class, the column is "
                   f"“{cell[1]}”.")


main()
