"""Pure figure functions for the three experiments: sweep runs in, Plotly figures and short texts out.

No Streamlit here, so the tests need no server. Strategy colours and names come from :mod:`tl_ui.style`,
so an experiment's Fine-tune line is the same green as on the race page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_engine.config import NUM_STAGES, STRATEGY_NAMES
from tl_engine.sweep import Gain, Progress, SweepRun, Verdict, curve_points, swept_value
from tl_ui.style import FONT, color, fmt_params, label


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(
        uirevision="experiment",  # keep zoom and legend clicks while points arrive
        height=height,
        font=FONT,
        template="plotly_white",
        margin=dict(l=70, r=20, t=90 if title else 50, b=70),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0, font=dict(size=18)),
        hoverlabel=dict(font_size=16),
        title=dict(text=title, x=0, y=0.98, font=dict(size=20)) if title else None,
    )
    return fig


def fmt_duration(seconds: float) -> str:
    """Seconds for humans: 42 -> "42 s", 150 -> "2 min 30 s", 4000 -> "1 h 07 min"."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_text(p: Progress) -> str:
    """The progress bar's caption: runs done of total, how many were reused, the time left."""
    text = f"{p.done} of {p.total} runs"
    if p.reused:
        text += f" · {p.reused} reused from the store"
    if p.done < p.total:
        left = p.seconds_left
        text += " · estimating time left…" if left is None else f" · about {fmt_duration(left)} left"
    return text


def result_rows(kind: str, runs: Sequence[SweepRun]) -> list[dict]:
    """The results table: one row per run and strategy, in run order."""
    return [{"run": swept_value(kind, r.config), "strategy": label(s), "test accuracy (%)": round(100 *
             v["final_test_acc"], 1), "trainable parameters": v["trainable_params"],
             "compute seconds": round(v["compute_seconds"], 1), "reused": r.reused}
            for r in runs for s, v in r.summary.items()]


# ---- experiment 1: freeze depth ---------------------------------------------------------------------------------

FREEZE_TICKS = [f"{k}<br>all learn" if k == 0 else f"{k}<br>= frozen" if k == NUM_STAGES else str(k)
                for k in range(NUM_STAGES + 1)]


def freeze_figure(runs: Sequence[SweepRun]) -> go.Figure:
    """Fine-tune's final accuracy, trainable parameters and compute seconds against k; scratch as a dashed line."""
    ft = sorted((r for r in runs if r.config.strategies == ("finetune",)), key=lambda r: r.config.frozen_stages)
    ref = next((r.summary["scratch"] for r in runs if r.config.strategies == ("scratch",)), None)
    panels = [("final test accuracy (%)", "final_test_acc", lambda v: round(100 * v, 2)),
              ("trainable parameters", "trainable_params", int),
              ("compute seconds", "compute_seconds", lambda v: round(v, 2))]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.09)
    ks = [r.config.frozen_stages for r in ft]
    for col, (title, key, conv) in enumerate(panels, start=1):
        ys = [conv(r.summary["finetune"][key]) for r in ft]
        hover = [fmt_params(y) for y in ys] if key == "trainable_params" else [f"{y:.1f}" for y in ys]
        fig.add_trace(go.Scatter(x=ks, y=ys, name=label("finetune"), legendgroup="finetune", showlegend=col == 1,
                                 mode="lines+markers", line=dict(color=color("finetune"), width=4),
                                 marker=dict(size=12), customdata=hover,
                                 hovertemplate=f"k=%{{x}}: %{{customdata}}<extra>{title}</extra>"), row=1, col=col)
        ry = [conv(ref[key])] * 2 if ref else []
        fig.add_trace(go.Scatter(x=[-0.3, NUM_STAGES + 0.3] if ref else [], y=ry, name=f"{label('scratch')} "
                                 "(reference)", legendgroup="scratch", showlegend=col == 1, mode="lines",
                                 line=dict(color=color("scratch"), width=3, dash="dash"),
                                 hovertemplate=f"scratch: %{{y}}<extra>{title}</extra>"), row=1, col=col)
        fig.update_xaxes(range=[-0.5, NUM_STAGES + 0.5], tickvals=list(range(NUM_STAGES + 1)), ticktext=FREEZE_TICKS,
                         title_text="frozen stages k", row=1, col=col)
    fig.update_yaxes(range=[0, 101], row=1, col=1)
    fig.update_yaxes(type="log", tickformat="~s", row=1, col=2)  # 12 k (head) to 2 M (all): log shows both
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    fig.update_annotations(font_size=18)
    fig = _layout(fig, height=450)
    fig.update_layout(margin=dict(t=110), legend=dict(y=1.16))  # legend above the three panel titles
    return fig


# ---- experiment 2: data size (learning curves) ------------------------------------------------------------------

def size_figure(runs: Sequence[SweepRun], verdict: Verdict | None = None) -> go.Figure:
    """Final test accuracy against training-set size (log x), one line per strategy, the claim marked.

    With a verdict, the two compared points are circled and a dotted line at scratch's accuracy on the
    larger set shows at a glance whether fine-tune on the small set lies above it.
    """
    points = curve_points(runs)
    fig = go.Figure()
    for s in STRATEGY_NAMES:
        pts = points.get(s, [])
        fig.add_trace(go.Scatter(x=[n for n, _ in pts], y=[round(100 * a, 2) for _, a in pts], name=label(s),
                                 mode="lines+markers", line=dict(color=color(s), width=4), marker=dict(size=11),
                                 hovertemplate=f"{label(s)}, %{{x:,}} images: %{{y:.1f}} %<extra></extra>"))
    sizes = sorted({n for pts in points.values() for n, _ in pts})
    title = None
    if verdict is not None and verdict.scratch_acc is not None:
        ft_y, sc_y = 100 * verdict.finetune_acc, 100 * verdict.scratch_acc
        fig.add_trace(go.Scatter(x=[min(sizes), max(sizes)], y=[sc_y, sc_y], mode="lines", hoverinfo="skip",
                                 name=f"scratch on {verdict.scratch_size:,}", line=dict(color=color("scratch"),
                                                                                         width=2, dash="dot")))
        fig.add_trace(go.Scatter(x=[verdict.finetune_size, verdict.scratch_size], y=[ft_y, sc_y], name="the claim",
                                 mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="circle-open", size=30, color="#111", line=dict(width=3))))
        mark = {True: "supported ✓", False: "not supported ✗", None: "cannot be tested"}[verdict.supported]
        title = (f"Fine-tune on {verdict.finetune_size:,} vs scratch on {verdict.scratch_size:,}: {mark} "
                 f"({ft_y:.1f} % vs {sc_y:.1f} %)")
    fig.update_layout(xaxis=dict(type="log", title="training images (log scale)", tickvals=sizes,
                                 ticktext=[f"{n:,}" for n in sizes]),
                      yaxis=dict(title="final test accuracy (%)", range=[0, 101]))
    return _layout(fig, height=470, title=title)


# ---- experiment 3: domain similarity ----------------------------------------------------------------------------

def domain_figure(gains: Sequence[Gain]) -> go.Figure:
    """Accuracy points that frozen and fine-tune gain over scratch, per dataset, most ImageNet-like first."""
    xs = [f"{Path(g.dataset).name}<br>({g.similarity})" for g in gains]  # an uploaded set is a path: its name
    fig = go.Figure()
    for s, attr in (("frozen", "frozen_gain"), ("finetune", "finetune_gain")):
        ys = [round(100 * getattr(g, attr), 2) for g in gains]
        accs = [[round(100 * getattr(g, f"{s}_acc"), 1), round(100 * g.scratch_acc, 1)] for g in gains]
        fig.add_trace(go.Bar(x=xs, y=ys, name=f"{label(s)} − scratch", marker_color=color(s),
                             text=[f"{y:+.1f}" for y in ys], textposition="outside", cliponaxis=False,
                             textfont=dict(size=18), customdata=accs,
                             hovertemplate=f"{label(s)} %{{customdata[0]}} % vs scratch %{{customdata[1]}} %"
                                           "<extra></extra>"))
    fig.add_hline(y=0, line_color="#444", line_width=2)
    fig.update_layout(barmode="group", xaxis=dict(title="dataset (similarity to ImageNet)"),
                      yaxis=dict(title="transfer gain (accuracy points)", zeroline=True))
    return _layout(fig, height=450)
