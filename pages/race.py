"""The live race page: pick a setup and up to five racers, press "▷ Train all three" (or four, five), watch them race.

Top-down and thin: the controls come from tl_ui.controls, the live part from tl_ui.race_live, the views
after a race from tl_ui.inside_panel. Training runs in the server's scheduler (never in this script's
thread); one fragment polls this tab's job while it is queued or running.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from tl_engine.config import NUM_STAGES, summarize
from tl_engine.data import list_datasets
from tl_engine.errors import UserError
from tl_engine.models import Stage
from tl_engine.store import ResultStore
from tl_ui import builder, controls, inside_panel, jobs, keys, race_live, seeds
from tl_ui.chosen_k import chosen_k_note
from tl_ui.safe_text import md
from tl_ui.settings import to_config
from tl_ui.similarity_panel import imagenet_view
from tl_ui.strip import strip_html, strip_rows
from tl_ui.style import ICON
from tl_ui.teaching import guide_panel, strategies_html, train_label

# Also set here: a deep link (e.g. /experiments) on a freshly started server runs this page before
# app.py has registered the navigation, and it must still get the wide layout.
st.set_page_config(page_title="Race · Transfer learning race", page_icon=ICON, layout="wide")

CSS = Path(__file__).resolve().parent.parent / "assets" / "style.css"


@st.cache_resource(show_spinner=False)
def datasets() -> list:
    return list_datasets()


@st.cache_resource(show_spinner=False)
def stage_table(backbone: str, n_classes: int) -> list[Stage]:
    from tl_engine.models import stage_table as table  # imports torch: only after the first paint

    return table(backbone, n_classes)  # builds the model without weights: fast, once per server


@st.cache_resource(show_spinner=False, max_entries=2)
def stored_races(path: str, stamp: tuple) -> tuple[list, int]:
    """Every readable stored race and how many rows could not be read, once per change of the store (``stamp``),
    not on every run of every tab: parsing costs ~2 ms a race, and a classroom's store holds hundreds."""
    return ResultStore(path).all_counted()


def main() -> None:
    st.markdown(f"<style>{CSS.read_text()}</style>", unsafe_allow_html=True)
    head, c1, c2 = st.columns([3, 1.7, 0.5], vertical_alignment="bottom")  # buttons in the title row
    head.title("Transfer learning race")
    st.markdown('<p class="tl-sub">Same images, same network, different ways to train it. Who wins, and at what '
                "cost?</p>", unsafe_allow_html=True)
    try:
        settings, info = controls.sidebar(datasets())
        cfg = to_config(settings)
    except UserError as e:
        st.error(md(e, limit=1000))
        st.stop()
    snap = jobs.current("race")
    extra = seeds.active(snap)  # "▷ Race 3 seeds": the same race's extra seeds, still queued or running
    active = bool(snap and snap.status in jobs.ACTIVE) or extra is not None
    # The strip needs torch: its place is filled after the cheap parts are drawn. Once a race is on the page
    # (running, or finished: the finish is what the class looks at) it goes below the live chart, so that the
    # curves stay on a 1280 x 720 projector screen without scrolling and do not jump down when the race ends.
    strip_slot = None if snap is not None else st.empty()  # extra seeds imply a race
    if strip_slot is not None:
        strip_slot.caption("Counting the parameters of each stage…")
    c1.button(train_label(len(cfg.strategies)), type="primary", disabled=active, on_click=jobs.start_race, args=(cfg,),
              width="stretch")
    c2.button("Stop", disabled=not active, on_click=jobs.stop, args=("race",), width="stretch")
    if active and cfg != snap.cfg:
        st.info("The race keeps running with the settings it started with; your changes apply to the next race.")

    # One fragment; run_every is computed on every full run: polling while the job is active, never when idle.
    chance = 1 / len(info.classes)

    every = jobs.poll_plan(snap if extra is None else extra)

    def live() -> None:
        now = jobs.current("race")
        if jobs.poll_drifted(now if extra is None else seeds.active(now) or now, every):
            st.rerun()  # tabs came or went: the full run computes this tab's share of the poll budget again
        race_live.live(now, chance)

    st.fragment(live, run_every=every)()
    strip_slot = strip_slot or st.empty()

    try:
        stages = stage_table(settings["backbone"], len(info.classes))
    except UserError as e:
        st.error(md(e, limit=1000))
        st.stop()
    k = settings["frozen_stages"]
    with strip_slot.container():
        st.markdown(strip_html(strip_rows(stages, k, cfg.strategies, cfg)), unsafe_allow_html=True)
        st.caption(f"Coloured blocks learn; grey 🔒 blocks keep their ImageNet weights (fine-tune, k = {k}: "
                   f"the first {k} of {NUM_STAGES} stages). Hatched: random start. Numbers: parameters per block.")

    inside_panel.data_preview(cfg, info)
    imagenet_view(cfg, info)
    if snap is not None and snap.status in ("done", "stopped") and snap.result is not None:
        inside_panel.look_inside(snap, info)
    # Keyed and tracked: open or closed is the user's choice, kept across reruns (a computed ``expanded`` reopened
    # it on every rerun); its content runs only while it is open.
    box = st.expander("Build a dataset with your camera", key=keys.BUILDER_OPEN, on_change="rerun")
    if box.open:
        with box:
            made = builder.builder_panel()
        if made is not None:
            controls.select_on_next_run(made)
            st.rerun()

    st.subheader("The racers")
    summary = summarize(race_live.shown_events(snap)) if snap is not None and snap.result is not None else {}
    if snap is not None and snap.result is not None:  # the agreement is measured once, after the last epoch
        full = snap.result.summary
        summary = {s: replace(v, imagenet_agreement=full[s].imagenet_agreement,
                              imagenet_agreement_noise=full[s].imagenet_agreement_noise)
                   if s in full and v.epochs == full[s].epochs else v for s, v in summary.items()}
    st.markdown(strategies_html(strip_rows(stages, k, cfg.strategies, cfg), summary), unsafe_allow_html=True)
    try:
        store = ResultStore()
        stored, unreadable = stored_races(str(store.path), store.stamp())
        if unreadable:
            st.caption(f"{unreadable} stored race{'s' * (unreadable > 1)} could not be read (skipped); the others "
                       "are used.")
    except UserError as e:  # a damaged store: the guide still shows the rule of thumb
        st.caption(md(e, limit=1000))
        stored = []
    note = chosen_k_note(stored, cfg)
    if note:
        st.caption(note)
    guide_panel(cfg, info, stored)
    jobs.warm_workers()  # last: once no page has been drawn for 5 s, the workers' imports start, off the first race


main()
