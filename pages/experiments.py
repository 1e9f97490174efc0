"""The experiments page: a sweep of races (freeze depth, data size or domain), points appearing as runs finish.

Thin on purpose: the grid and the results store live in tl_engine.experiments / tl_engine.store, the figures in
tl_ui.experiment_charts. The sweep runs as a job of the server's scheduler (a worker process, never this
script's thread); one fragment, polling only while the job is queued or running, redraws from its snapshot.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from tl_engine.config import BACKBONE_NAMES, NUM_STAGES, RunConfig
from tl_engine.data import list_datasets
from tl_engine.errors import StoreError, UserError
from tl_engine.experiments import (
    CLAIM,
    DOMAIN_PER_CLASS,
    SEED_CHOICES,
    SIZES,
    Progress,
    csv_text,
    domain_gains,
    plan,
    points,
    run_cost,
    sweep_verdict,
    swept_value,
)
from tl_engine.store import ResultStore, Timings
from tl_ui import experiment_charts as charts
from tl_ui import jobs, keys
from tl_ui.safe_text import md, one_line
from tl_ui.settings import (
    MAX_EPOCHS,
    MAX_SEED,
    RESOLUTIONS,
    fitted,
    num_classes,
    snap,
    test_options,
    train_options,
)
from tl_ui.style import ICON, backbone_label, plural

# Also set here: a deep link (e.g. /experiments) on a freshly started server runs this page before
# app.py has registered the navigation, and it must still get the wide layout.
st.set_page_config(page_title="Experiments · Transfer learning race", page_icon=ICON, layout="wide")

CSS = Path(__file__).resolve().parent.parent / "assets" / "style.css"
EXPERIMENTS = {
    "freeze": ("Freeze depth", "Fine-tune with k = 7, 6, …, 0 frozen stages (cheapest first), then one scratch race as "
               "the reference. How many ImageNet stages should stay locked? (Yosinski et al. 2014)"),
    "size": ("Data size", "All three strategies at 50 to 5,000 training images: learning curves. Does a pretrained "
             f"model really need less data? The claim under test: {CLAIM}."),
    "domain": ("Domain similarity", "All three strategies on every bundled dataset with the same number of training "
               "images per class, ordered by their measured similarity to ImageNet. Does transfer help more when the "
               "images look like ImageNet photos? The gain is the *error reduction relative to scratch*, "
               "(acc − acc_scratch) / (1 − acc_scratch): the share of scratch's test errors that pretraining "
               "removes, so that a dataset where scratch already scores 97 % is not compared in raw points with "
               "one where it scores 40 %."),
}


@st.cache_resource(show_spinner=False)
def datasets() -> list:
    return list_datasets()


def _sweep_estimate(grid: list[RunConfig]) -> tuple[float | None, int]:
    """Seconds the races of ``grid`` not in the results store should take here, from measured races."""
    timings = Timings()
    try:
        store = ResultStore()
        todo = [c for c in grid if store.get(c) is None]
    except StoreError:
        todo = grid
    return timings.estimate("race", sum(run_cost(c) for c in todo)), timings.count("race")


def dataset_title(name: str) -> str:
    """A dataset's display name ("Fashion-MNIST (clothes)"), a user's upload's own title, else its file name."""
    uploads = [u.info for u in (st.session_state.get(keys.UPLOADS) or {}).values()]
    by_name = {i.name: getattr(i, "title", i.name) for i in [*datasets(), *uploads]}
    return by_name.get(name, Path(name).name)


def base_settings() -> dict:
    """Start from the race page's settings when this session has them, so the two pages share runs."""
    race = st.session_state.get(keys.SETTINGS) or {}
    names = {f for f in RunConfig.__dataclass_fields__}
    return RunConfig(**{k: v for k, v in race.items() if k in names}).to_dict()


def settings_form(infos: list) -> tuple[str, RunConfig, dict]:
    """The widgets; returns the experiment, the shared config and the grid options."""
    ss, base = st.session_state, base_settings()
    uploads = [u.info for u in (ss.get(keys.UPLOADS) or {}).values()]  # the race page's uploads
    by_name = {i.name: i for i in [*infos, *uploads]}
    fields = ("dataset", "backbone", "train_size", "test_size", "epochs", "resolution", "seed", "frozen_stages")
    for key in fields:
        ss.setdefault(f"xp_{key}", base[key])
    if ss["xp_dataset"] not in by_name:
        ss["xp_dataset"] = infos[0].name
    kind = st.radio("Experiment", list(EXPERIMENTS), key="xp_kind", horizontal=True,
                    format_func=lambda k: EXPERIMENTS[k][0])
    st.markdown(EXPERIMENTS[kind][1])
    c1, c2, c3, c4 = st.columns(4)
    name = c1.selectbox("Dataset", list(by_name), key="xp_dataset", disabled=kind == "domain",
                        format_func=lambda n: one_line(getattr(by_name[n], "title", n)),
                        help="The domain experiment runs every dataset (and your uploads).")
    info = by_name[name]
    c2.selectbox("Backbone", list(BACKBONE_NAMES), key="xp_backbone", format_func=backbone_label)
    for key, options in (("train_size", train_options(info)), ("test_size", test_options(info))):
        if ss[f"xp_{key}"] not in options:  # the dataset changed: snap to a size it can supply
            ss[f"xp_{key}"] = snap(ss[f"xp_{key}"], options)
    c3.select_slider("Training images", train_options(info), key="xp_train_size", disabled=kind != "freeze",
                     format_func=lambda v: f"{v:,}", help="The size experiment sweeps this; the domain experiment uses "
                     f"{DOMAIN_PER_CLASS} per class on every dataset.")
    c4.slider("Epochs", 1, MAX_EPOCHS, key="xp_epochs")
    opts: dict = {}
    with st.expander("Grid and advanced settings"):
        if kind == "freeze":
            ks = st.multiselect("k values (run from 7 down to 0)", list(range(NUM_STAGES, -1, -1)),
                                default=list(range(NUM_STAGES, -1, -1)), key="xp_ks")
            opts["ks"] = sorted(ks, reverse=True) or None
        if kind == "size":
            offered = sorted({min(s, info.n_train) for s in SIZES if min(s, info.n_train) >= num_classes(info)})
            sizes = st.multiselect("Training-set sizes", offered, default=offered, key="xp_sizes")
            opts["sizes"] = sorted(sizes) or None
        if kind != "freeze":
            st.slider("Fine-tune: frozen stages k", 0, NUM_STAGES, key="xp_frozen_stages")
        st.select_slider("Resolution (pixels)", RESOLUTIONS, key="xp_resolution")
        st.select_slider("Test images", test_options(info), key="xp_test_size", format_func=lambda v: f"{v:,}")
        st.number_input("First seed", 0, MAX_SEED, step=1, key="xp_seed")
    # Seeds: every grid point runs with seeds seed .. seed+N-1; verdicts then use the seeds' spread as noise.
    opts["seeds"] = c4.selectbox("Seeds", SEED_CHOICES, key="xp_seeds",
                                 help="Each point runs with this many seeds; the figure shows their mean and "
                                      "min..max band, and a verdict is 'inconclusive' inside the noise.")
    # The race page's validation rule: the default draw fitted to the dataset (an upload may hold only a few).
    cfg = RunConfig(**{**base, **{k: ss[f"xp_{k}"] for k in fields}, "val_size": fitted(info, "val_size")})
    if kind == "domain":
        listed = list(by_name.values()) if uploads else infos
        if uploads:
            opts["datasets"] = listed
            st.caption("Plus your own: " + ", ".join(md(getattr(i, "title", i.name)) for i in uploads))
        opts["scores"] = similarity_scores(tuple(i.name for i in listed), cfg.backbone)
        st.caption(f"{DOMAIN_PER_CLASS} training images per class on every dataset (fewer if one cannot supply "
                   "them); measured similarity: " + ", ".join(f"{md(Path(n).name)} {v:.2f}" for n, v in
                                                             opts["scores"].items()))
    return kind, cfg, opts


@st.cache_data(show_spinner="Measuring how ImageNet-like each dataset is (once per dataset)…")
def similarity_scores(names: tuple[str, ...], backbone: str) -> dict[str, float]:
    """dataset -> measured similarity score (tl_engine.inspect, cached on disk too); unmeasurable ones left out."""
    try:
        from tl_engine.inspect import measure
    except ImportError:  # not part of this installation: the domain sweep runs in the listed order
        return {}
    out = {}
    for n in names:
        try:
            out[n] = measure(n, backbone).score
        except UserError:  # e.g. an upload with one class: it runs last, unordered
            continue
    return out


def results() -> None:
    """Progress, the figure, the conclusion, reuse notes and downloads, drawn from the job's snapshot."""
    snap = jobs.current("sweep")
    if snap is None:
        st.info("Pick an experiment and press **▷ Run experiment**. Points appear as runs finish; runs done "
                "before (here or with `python -m tl_engine sweep`) are reused from the results store at once.")
        return
    if not snap.active and st.session_state.get(keys.SWEEP_WAS_ACTIVE):
        st.session_state[keys.SWEEP_WAS_ACTIVE] = False
        st.rerun()  # once: the full rerun stops polling and re-enables the Run button
    st.session_state[keys.SWEEP_WAS_ACTIVE] = snap.active
    kind, runs, p, b = snap.sweep_kind, list(snap.events), snap.sweep_progress, snap.cfg
    st.subheader(f"{EXPERIMENTS[kind][0]}: {dataset_title(b.dataset) if kind != 'domain' else 'all datasets'}, "
                 f"{backbone_label(b.backbone)}, {plural(b.epochs, 'epoch')}"
                 + ("" if kind == "freeze" else f", fine-tune k = {b.frozen_stages}"))
    if snap.status == "error":
        st.error(md(snap.error, limit=1000))
    if snap.status == "queued":
        wait = "" if snap.eta_seconds is None else f" · about {charts.fmt_duration(snap.eta_seconds)} to wait"
        st.info(f"Queued: position {snap.queue_position}{wait}. The server runs a few jobs at a time so that "
                "each runs at full speed.")
    if snap.status == "running":
        p = p or Progress(0, snap.total, 0, 0.0, None, None)
        st.progress(min(1.0, p.fraction), text=charts.progress_text(p))
    elif snap.status == "stopped":
        st.warning(f"Stopped after {len(runs)} of {snap.total} runs; the finished ones are kept and shown.")
    fname = f"experiment-{kind}-{Path(b.dataset).name}"
    plotly_config = {"toImageButtonOptions": {"format": "png", "filename": fname, "scale": 2}}
    # The verdict is drawn once the sweep is no longer running: a half-run grid would read as a result.
    pts = points(kind, runs)
    # Measured once per dataset and cached (here and on disk): the domain gains are ordered by it.
    names = tuple(dict.fromkeys(r.config.dataset for r in runs))
    scores = similarity_scores(names, b.backbone) if kind == "domain" and names else {}
    verdict = sweep_verdict(kind, pts, scores) if not snap.active and runs else None
    if kind == "freeze":
        fig = charts.freeze_figure(runs, verdict)
    elif kind == "size":
        fig = charts.size_figure(runs, verdict)
    else:
        fig = charts.domain_figure(domain_gains(pts, scores), verdict)
    if verdict is not None:
        st.markdown(charts.verdict_html(verdict), unsafe_allow_html=True)
    # theme=None: Streamlit's theme would shrink and grey out the projector-sized fonts of the figure.
    st.plotly_chart(fig, key="xp_chart", width="stretch", theme=None, config=plotly_config)
    for r in runs:
        if r.reused:
            st.caption(f"♻️ {swept_value(kind, r.config)}, seed {r.config.seed}: reused from the results store "
                       f"(trained earlier on {r.result.device or 'an unknown device'}), not trained again.")
    if runs:
        st.dataframe(charts.results_table(kind, runs), hide_index=True, width="stretch")
        st.download_button("Download CSV (every epoch of every run)", csv_text(runs), file_name=f"{fname}.csv",
                           mime="text/csv", key="xp_csv")


def main() -> None:
    st.markdown(f"<style>{CSS.read_text()}</style>", unsafe_allow_html=True)
    st.title("Experiments")
    st.markdown('<p class="tl-sub">Many races, one question each. Every finished race is kept, so a point '
                "you have already run appears at once.</p>", unsafe_allow_html=True)
    try:
        kind, cfg, opts = settings_form(datasets())
        grid = plan(kind, cfg, **opts)
        try:
            stored = sum(ResultStore().get(c) is not None for c in grid)
        except StoreError as e:  # a damaged store: the experiment still runs, without reuse
            st.warning(md(e, limit=1000))
            stored = 0
    except UserError as e:
        st.error(md(e, limit=1000))
        st.stop()
    snap = jobs.current("sweep")
    active = bool(snap and snap.active)
    c1, c2, c3 = st.columns([1.3, 0.7, 3], vertical_alignment="center")
    c1.button("▷ Run experiment", type="primary", disabled=active, on_click=jobs.start_sweep, args=(kind, cfg, opts),
              width="stretch")
    c2.button("Stop", disabled=not active, on_click=jobs.stop, args=("sweep",), width="stretch", key="xp_stop")
    c3.caption(f"{len(grid)} races, {stored} already in the results store · "
               + charts.estimate_text(*_sweep_estimate(grid)))
    # One fragment; run_every is computed on every full run: polling while the job is active, never when idle.
    every = jobs.poll_plan(snap)

    def poll() -> None:
        if jobs.poll_drifted(jobs.current("sweep"), every):
            st.rerun()  # tabs came or went: the full run computes this tab's share of the poll budget again
        results()

    st.fragment(poll, run_every=every)()


main()
