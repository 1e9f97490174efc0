""""▷ Race 3 seeds": the race just shown, again with the next two seeds, and the verdict over all three.

One seed's verdict counts only the test set's noise, and the next seed can flip its order (other images drawn,
other starting weights). So the one-seed sentence says "leads", not "wins", and offers this button; the extra
races run in the server's scheduler like any race (answered from the results store when they ran before) and
this tab watches them in the roles :data:`tl_ui.jobs.SEED_ROLES`. The sentence over three seeds uses the seeds'
own spread as its noise when that is larger (:mod:`tl_engine.experiments.noise`).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from tl_engine.config import RunConfig
from tl_engine.experiments import Verdict, compare_curves, curves_from_events
from tl_engine.jobs import JobSnapshot
from tl_ui import jobs, keys

SEEDS = 1 + len(jobs.SEED_ROLES)


def configs(cfg: RunConfig) -> list[RunConfig]:
    """The extra races: the same settings with the next seeds."""
    return [replace(cfg, seed=cfg.seed + i) for i in range(1, SEEDS)]


def start(cfg: RunConfig) -> None:
    for role, c in zip(jobs.SEED_ROLES, configs(cfg)):
        jobs.start_race(c, role=role)


def extra(cfg: RunConfig) -> list[JobSnapshot] | None:
    """This tab's extra-seed jobs of the race ``cfg`` (None when it has none for exactly this race)."""
    snaps = [jobs.current(role) for role in jobs.SEED_ROLES]
    if any(s is None for s in snaps) or [s.cfg for s in snaps] != configs(cfg):
        return None
    return snaps


def active(snap: JobSnapshot | None) -> JobSnapshot | None:
    """The extra-seed job still queued or running for this race, if any (the page polls while one is)."""
    others = extra(snap.cfg) if snap is not None else None
    return next((s for s in others or () if s.status in jobs.ACTIVE), None)


def verdict(snap: JobSnapshot, others: list[JobSnapshot]) -> Verdict:
    """The race's verdict over its own seed and every extra seed that finished."""
    runs = [snap, *(o for o in others if o.status == "done")]
    return compare_curves({r.cfg.seed: curves_from_events(r.events) for r in runs}, snap.cfg.test_size,
                          snap.cfg.epochs)


def progress_text(others: list[JobSnapshot]) -> str:
    """"Seed 1: epoch 3 of 10 · seed 2: queued (position 1)"."""
    parts = []
    for o in others:
        if o.status == "queued":
            state = f"queued (position {o.queue_position})"
        elif o.status == "running":
            done = min((sum(e.strategy == s for e in o.events) for s in o.cfg.strategies), default=0)
            state = f"epoch {done} of {o.cfg.epochs} for every strategy"
        else:
            state = {"done": "done", "stopped": "stopped", "error": "failed"}.get(o.status, o.status)
        parts.append(f"seed {o.cfg.seed}: {state}")
    return " · ".join(parts)


def panel(snap: JobSnapshot) -> None:
    """Under a finished one-seed result: the button, then the extra seeds' progress, then the 3-seed sentence."""
    others = extra(snap.cfg)
    if others is None:
        if snap.status == "done" and st.button(f"▷ Race {SEEDS} seeds", key="tl_race_seeds",
                                               help=f"The same race with seeds {snap.cfg.seed + 1} and "
                                                    f"{snap.cfg.seed + SEEDS - 1} too: does the lead hold?"):
            start(snap.cfg)
            st.rerun(scope="app")  # a full run: the page polls while the extra seeds run
        return
    running = any(o.status in jobs.ACTIVE for o in others)
    if not running and st.session_state.get(keys.SEEDS_WAS_ACTIVE):
        st.session_state[keys.SEEDS_WAS_ACTIVE] = False
        st.rerun()  # once: the full run stops polling
    st.session_state[keys.SEEDS_WAS_ACTIVE] = running
    if running:
        st.caption(f"Racing {SEEDS} seeds: {progress_text(others)}.")
        return
    v = verdict(snap, others)
    st.markdown(f'<div class="tl-verdict">{v.sentence}</div>', unsafe_allow_html=True)
    failed = [o for o in others if o.status != "done"]
    if failed:
        st.caption(f"Not every extra seed finished ({progress_text(failed)}): the sentence uses the ones that did.")
