"""The race page's live part: queue position, progress, counters, curves and the result, from one job snapshot.

Drawn by the page's single fragment, whose ``run_every`` is computed on each full run (polling while the job
is queued or running, never when idle). One chart is drawn (test accuracy or loss), and its figure is rebuilt
only when a new epoch arrived or the view or x-axis changed; most polls find nothing new and cost a lock and a
tuple copy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import streamlit as st

from tl_engine.config import summarize
from tl_engine.experiments import compare_curves, curves_from_events
from tl_engine.jobs import JobSnapshot
from tl_ui import charts, jobs, keys, seeds
from tl_ui.counters import at_epoch, common_epoch, counters_html, stopped_note
from tl_ui.forgetting import dip_depth_note, dip_sentence, forgetting_html
from tl_ui.safe_text import md
from tl_ui.style import color, plural

if TYPE_CHECKING:
    import plotly.graph_objects as go

ACCURACY, LOSS = "Test accuracy", "Loss"


def plot(fig, key: str, **kw) -> object:
    """A chart that keeps its identity (key) across redraws, so Plotly updates it in place."""
    # theme=None: Streamlit's theme would shrink and grey out the big fonts set in tl_ui.charts.
    return st.plotly_chart(fig, key=key, width="stretch", theme=None, config={"displayModeBar": False}, **kw)


def _figure(snap: JobSnapshot, view: str, x: str, chance: float) -> go.Figure:
    key = (snap.id, len(snap.events), view, x)
    cached = st.session_state.get(keys.FIGURES)
    if cached is None or cached[0] != key:
        cfg = snap.cfg
        fig = (charts.loss_figure(snap.events, cfg.strategies, x, cfg.epochs) if view == LOSS else
               charts.race_figure(snap.events, x, cfg.strategies, cfg.epochs, chance))
        cached = (key, fig)
        st.session_state[keys.FIGURES] = cached
    return cached[1]


def _status_line(snap: JobSnapshot) -> None:
    cfg = snap.cfg
    done = {s: sum(e.strategy == s for e in snap.events) for s in cfg.strategies}
    if snap.status == "queued":
        wait = "" if snap.eta_seconds is None else f" · about {snap.eta_seconds:.0f} s to wait"
        st.info(f"Queued: position {snap.queue_position} (the server runs a few races at a time so that each "
                f"runs at full speed){wait}.")
        st.button("Leave the queue", on_click=jobs.stop, args=("race",), key="tl_leave_queue")
        return
    if snap.status == "running" and snap.result is not None:
        st.progress(1.0, text="Every epoch is done · preparing the look-inside views and the models to take "
                              "home…")
        return
    if snap.status == "running":
        elapsed = time.time() - (snap.started_at or time.time())
        slowest = min(done.values())
        what = "preparing data and ImageNet weights…" if not snap.events else "training"
        if snap.watchers > 1:
            what += f" · {snap.watchers} tabs watch this race"
        st.progress(snap.progress, text=f"epoch {slowest} of {cfg.epochs} for every strategy · {elapsed:.0f} s · "
                                        f"{what}")


def live(snap: JobSnapshot | None, chance: float) -> None:
    """Everything that changes while a race runs; drawn from one snapshot."""
    if snap is None:
        st.info("Press **▷ Train all three** (or as many racers as you picked) to start the race. Curves appear "
                "after each epoch.")
        return
    if snap.status not in jobs.ACTIVE and st.session_state.get(keys.RACE_WAS_ACTIVE):
        st.session_state[keys.RACE_WAS_ACTIVE] = False
        st.rerun()  # once: the full rerun stops polling and re-enables the buttons
    st.session_state[keys.RACE_WAS_ACTIVE] = snap.status in jobs.ACTIVE
    cfg = snap.cfg
    if snap.reused_from:
        note, again = st.columns([4, 1], vertical_alignment="center")
        note.info(f"This exact race already ran ({snap.reused_from[:16].replace('T', ' ')} UTC): its stored "
                  "result is shown at once.")
        # Not on_click: this button sits in the polling fragment, whose click reruns only the fragment, and
        # run_every changes only on a full run. Start the race, then rerun the whole page so polling starts.
        if again.button("▷ Race it live", width="stretch", key="tl_race_live"):
            _race_live(cfg)
            st.rerun(scope="app")
    if snap.status == "error":
        st.error(md(snap.error, limit=1000))
    _status_line(snap)
    if snap.status == "queued":
        return
    left, right = st.columns([3.3, 1])
    with right:
        st.markdown(counters_html(shown_events(snap), cfg.strategies, cfg.epochs, cfg.frozen_stages),
                    unsafe_allow_html=True)
    with left:
        # One chart drawn, the other a click away. Not st.tabs: a hidden tab's chart is redrawn on every new epoch
        # too, and a Plotly redraw is most of what a poll costs the browser (~0.1 s of CPU each, measured).
        # The x-axis toggle beside it, in the wide column: in the narrow one its label was cut at 1280 px.
        pick, axis = st.columns([1.2, 1], vertical_alignment="center")
        view = pick.segmented_control("Chart", [ACCURACY, LOSS], default=ACCURACY, required=True,
                                      key=keys.CHART_VIEW, label_visibility="collapsed")
        by_seconds = axis.toggle("x-axis: compute seconds", key=keys.X_SECONDS)
        fig = _figure(snap, view, "seconds" if by_seconds else "epoch", chance)
        plot(fig, key="loss_chart" if view == LOSS else "race_chart")
    if snap.events and (snap.result is not None or snap.status not in jobs.ACTIVE):
        show_result(snap)  # as soon as the result is in (the look-inside views follow when the job ends)


def _race_live(cfg) -> None:
    st.session_state.pop(keys.FIGURES, None)
    jobs.start_race(cfg, reuse=False)


def shown_events(snap: JobSnapshot) -> list:
    """The events the numbers below the chart use: a stopped race's up to the last epoch every strategy reached,
    so that the sentence, the counters and the bars all speak of one epoch."""
    if snap.status != "stopped":
        return list(snap.events)
    return at_epoch(snap.events, common_epoch(snap.events, snap.cfg.strategies))


def show_result(snap: JobSnapshot) -> None:
    summary = summarize(shown_events(snap))
    v = compare_curves({snap.cfg.seed: curves_from_events(snap.events)}, snap.cfg.test_size, snap.cfg.epochs)
    st.subheader("Result")
    if snap.status == "stopped":
        st.caption(stopped_note(snap.events, snap.cfg.strategies))
    prefix = "Stopped before the end. " if snap.status == "stopped" else ""
    lead = v.numbers.get("winner") if v.status == "supported" else None
    edge = color(lead) if lead else "#888888"  # no winner's colour when nothing was won
    st.markdown(f'<div class="tl-verdict" style="border-left-color:{edge}">{prefix}{v.sentence}</div>',
                unsafe_allow_html=True)
    if snap.finished_at and snap.started_at and not snap.reused_from:
        reached = max(e.epoch for e in snap.events)
        st.caption(f"{plural(reached, 'epoch')} of {plural(len(snap.cfg.strategies), 'strategy', 'strategies')} in "
                   f"{snap.finished_at - snap.started_at:.0f} s of wall-clock time "
                   "(data preparation and weight loading included).")
    seeds.panel(snap)  # one seed "leads"; three seeds can name a winner
    plot(charts.summary_figure(summary), key="summary_chart")
    dip = dip_sentence(snap.events, snap.cfg.test_size)
    if dip:
        st.caption(f"{dip} {dip_depth_note()} One seed: **▷ Race {seeds.SEEDS} seeds** shows whether it repeats.")
    full = snap.result.summary if snap.result is not None else {}
    if any(r.imagenet_agreement is not None for r in full.values()):
        cfg = snap.cfg
        st.markdown("**Did it forget ImageNet?** The original ImageNet head on each pretrained racer's trained body, "
                    "over 96 fixed photos: how often it still gives the untouched network's answer.")
        st.markdown(forgetting_html(full, cfg.lr_body / cfg.lr_head), unsafe_allow_html=True)
