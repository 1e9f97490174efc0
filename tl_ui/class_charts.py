"""Pure figures for the class page: a group of pooled races in, a Plotly figure out (no Streamlit).

Drawn as the sweeps are (:mod:`tl_ui.experiment_charts`: the mean over seeds, a min..max band where several
seeds ran, the verdict's status word in the title), plus one marker per race, so every student can find their
own point. Markers at one x are spread a little by seed so that they do not hide each other.
"""

from __future__ import annotations

import plotly.graph_objects as go

from tl_engine.config import NUM_STAGES, STRATEGY_NAMES
from tl_engine.experiments import Point, Verdict
from tl_engine.experiments.pool import Group, group_points, race_points, reference
from tl_ui.experiment_charts import FREEZE_TICKS, _layout, band, size_claim_layout, verdict_title
from tl_ui.style import color, label

SPREAD = 0.12  # horizontal spread of one x's race markers: in k units, or as a share of x on the log size axis


def _offsets(rows: list[tuple[object, int, float]]) -> list[float]:
    """-1..1 per race, by seed rank among the races at the same x (0 when alone)."""
    by_x: dict[object, list[int]] = {}
    for x, seed, _ in rows:
        by_x.setdefault(x, []).append(seed)
    out = []
    for x, seed, _ in rows:
        seeds = sorted(set(by_x[x]))
        out.append(0.0 if len(seeds) < 2 else 2 * seeds.index(seed) / (len(seeds) - 1) - 1)
    return out


def race_markers(group: Group, strategy: str) -> go.Scatter:
    """One marker per stored race that ran ``strategy``: x = its k or training size, y = its test accuracy."""
    rows = race_points(group, strategy)
    offs = _offsets(rows)
    if group.kind == "freeze":
        xs = [x + SPREAD * o for (x, _, _), o in zip(rows, offs)]
    else:
        xs = [x * (1 + SPREAD * o / 2) for (x, _, _), o in zip(rows, offs)]
    return go.Scatter(x=xs, y=[round(100 * a, 2) for _, _, a in rows], mode="markers", name=f"{label(strategy)}: "
                      "one race each", legendgroup=strategy, showlegend=False,
                      marker=dict(size=9, color=color(strategy), opacity=0.6, line=dict(width=1, color="#fff")),
                      customdata=[[x, seed] for x, seed, _ in rows],
                      hovertemplate=f"{label(strategy)}, one race: %{{customdata[0]:,}}, seed %{{customdata[1]}}: "
                                    "%{y:.1f} %<extra></extra>")


def _mean(ps: list[Point], strategy: str, what: str) -> go.Scatter:
    seeds = [f"{p.n_seeds} seed" + ("s" if p.n_seeds > 1 else "") for p in ps]
    return go.Scatter(x=[p.x for p in ps], y=[round(100 * p.mean, 2) for p in ps], name=label(strategy),
                      legendgroup=strategy, mode="lines+markers", line=dict(color=color(strategy), width=4),
                      marker=dict(size=12, symbol="diamond"), customdata=seeds,
                      hovertemplate=f"{label(strategy)}, {what}: mean %{{y:.1f}} % (%{{customdata}})<extra></extra>")


def k_figure(group: Group, verdict: Verdict | None = None) -> go.Figure:
    """Fine-tune's test accuracy against k (mean, band, every race); scratch and frozen, which k cannot move, as
    dashed reference lines with their own bands over every seed they ran."""
    ft = group_points(group).get("finetune", [])
    fig = go.Figure()
    ks = [p.x for p in ft]
    fig.add_trace(band(ks, [100 * p.min for p in ft], [100 * p.max for p in ft], "finetune", name="fine-tune band"))
    fig.add_trace(_mean(ft, "finetune", "k=%{x}"))
    fig.add_trace(race_markers(group, "finetune"))
    edges = [-0.3, NUM_STAGES + 0.3]
    for s in ("scratch", "frozen"):
        ref = reference(group, s)
        if ref is None:
            continue
        fig.add_trace(band(edges, [100 * ref.min] * 2, [100 * ref.max] * 2, s, name=f"{s} band"))
        fig.add_trace(go.Scatter(x=edges, y=[round(100 * ref.mean, 2)] * 2, mode="lines", legendgroup=s,
                                 name=f"{label(s)} (k does not move it; {ref.n_seeds} seed"
                                      + ("s" if ref.n_seeds > 1 else "") + ")",
                                 line=dict(color=color(s), width=3, dash="dash"),
                                 hovertemplate=f"{label(s)}: mean %{{y:.1f}} %<extra></extra>"))
    fig.update_xaxes(range=[-0.5, NUM_STAGES + 0.5], tickvals=list(range(NUM_STAGES + 1)), ticktext=FREEZE_TICKS,
                     title_text="frozen stages k")
    fig.update_yaxes(range=[0, 101], title_text="final test accuracy (%)")
    return _layout(fig, height=470, title=verdict_title("Best depth k (chosen on validation)", verdict))


def size_figure(group: Group, verdict: Verdict | None = None) -> go.Figure:
    """Each strategy's test accuracy against training images (log x): mean line, band over seeds, every race;
    with a verdict that compared 500 and 5,000 images, the two points are circled as on the Experiments page."""
    pts = group_points(group)
    fig = go.Figure()
    for s in STRATEGY_NAMES:
        ps = pts.get(s, [])
        if not ps:
            continue
        xs = [p.x for p in ps]
        fig.add_trace(band(xs, [100 * p.min for p in ps], [100 * p.max for p in ps], s, name=f"{s} band"))
        fig.add_trace(_mean(ps, s, "%{x:,} images"))
        fig.add_trace(race_markers(group, s))
    return size_claim_layout(fig, group.xs, verdict)
