"""Pure figure functions for the three experiments: sweep runs in, Plotly figures and pandas tables out.

No Streamlit here, so the tests need no server. Every accuracy is the mean over the seeds that ran, drawn
with a shaded min..max band (with one seed the band is the line itself), and every figure's title carries
its verdict's status word: ``supported``, ``not supported`` or ``inconclusive`` (see tl_engine.experiments.verdicts).
Strategy colours and names come from :mod:`tl_ui.style`, so Fine-tune is the same green as on the race page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_engine.config import NUM_STAGES, STRATEGY_NAMES
from tl_engine.experiments import CLAIM_LARGE, CLAIM_SMALL, DomainGain, Point, Progress, SweepRun, Verdict, points, x_of
from tl_ui.safe_text import one_line, plotly_text
from tl_ui.style import FONT, color, fmt_params, label

BAND_ALPHA = 0.18  # light enough that three overlapping bands stay readable on a projector


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
    """The progress bar's caption: runs done of total, how many were reused, the time left (measured: by this
    sweep's own races, or before its first epoch by races measured earlier on this machine)."""
    text = f"{p.done} of {p.total} runs"
    if p.reused:
        text += f" · {p.reused} reused from the store"
    if p.done < p.total:
        left = p.seconds_left
        text += (" · estimating time left (no race measured on this machine yet)…" if left is None
                 else f" · about {fmt_duration(left)} left")
    return text


def estimate_text(seconds: float | None, measured: int) -> str:
    """What a sweep (or any work) should take here: from ``measured`` earlier runs, or "not measured yet"."""
    if seconds is None or measured == 0:
        return "time not measured on this machine yet: the first race gives the estimate"
    if seconds <= 0:
        return "nothing to train: every race is in the results store"
    return f"about {fmt_duration(seconds)} on this machine (from {measured} measured run{'s' if measured != 1 else ''})"


def verdict_title(question: str, verdict: Verdict | None) -> str | None:
    """"Best depth k: inconclusive": the status word as the engine wrote it, nothing added."""
    return None if verdict is None else f"{question}: <b>{verdict.status}</b>"


def verdict_html(verdict: Verdict) -> str:
    """The verdict box: the status word in bold (exactly as the engine wrote it), then the sentence."""
    text, status = html.escape(verdict.sentence), verdict.status
    if text.lower().startswith(status):  # "Not supported: ..." -> "<b>not supported</b>: ..."
        return f'<div class="tl-verdict"><b>{status}</b>{text[len(status):]}</div>'
    return f'<div class="tl-verdict"><b>{status}</b>: {text}</div>'


def results_table(kind: str, runs: Sequence[SweepRun]) -> pd.DataFrame:
    """One row per swept value and strategy: mean and min..max test accuracy over the seeds, and the costs."""
    reused: dict[tuple[str, object], int] = {}
    for r in runs:
        for s in r.summary:
            key = (s, x_of(kind, r.config))
            reused[key] = reused.get(key, 0) + r.reused
    rows = [{"run": _x_text(kind, p), "strategy": label(s), "test accuracy (%)": round(100 * p.mean, 1),
             "min (%)": round(100 * p.min, 1), "max (%)": round(100 * p.max, 1), "seeds": p.n_seeds,
             "validation accuracy (%)": round(100 * p.val_mean, 1), "test images": p.test_size,
             "trainable parameters": p.trainable_params, "compute seconds (mean)": round(p.compute_seconds, 1),
             "reused runs": reused.get((s, p.x), 0)}
            for s, ps in points(kind, runs).items() for p in ps]
    return pd.DataFrame(rows)


def _x_text(kind: str, p: Point) -> str:
    if kind == "freeze":
        return f"k = {p.x}" if p.strategy == "finetune" else p.strategy
    return f"{p.x:,} images" if kind == "size" else one_line(Path(str(p.x)).name)


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


def band(xs: Sequence, lo: Sequence[float], hi: Sequence[float], strategy: str, **kw) -> go.Scatter:
    """A shaded min..max polygon (``fill="toself"``): along the max forward, back along the min."""
    return go.Scatter(x=[*xs, *reversed(xs)], y=[*hi, *reversed(lo)], fill="toself", mode="lines",
                      line=dict(width=0), fillcolor=_rgba(color(strategy), BAND_ALPHA), hoverinfo="skip",
                      showlegend=False, legendgroup=strategy, **kw)


def _mean_line(ps: Sequence[Point], strategy: str, xs: Sequence, what: str, **kw) -> go.Scatter:
    spread = [f"{100 * p.mean:.1f} % (min {100 * p.min:.1f}, max {100 * p.max:.1f}; {p.n_seeds} seed"
              + ("s" if p.n_seeds > 1 else "") + ")" for p in ps]
    return go.Scatter(x=list(xs), y=[round(100 * p.mean, 2) for p in ps], name=label(strategy),
                      legendgroup=strategy, mode="lines+markers", line=dict(color=color(strategy), width=4),
                      marker=dict(size=11), customdata=spread,
                      hovertemplate=f"{label(strategy)}, {what}: %{{customdata}}<extra></extra>", **kw)


# ---- experiment 1: freeze depth ---------------------------------------------------------------------------------

FREEZE_TICKS = [f"{k}<br>all learn" if k == 0 else f"{k}<br>= frozen" if k == NUM_STAGES else str(k)
                for k in range(NUM_STAGES + 1)]


def freeze_figure(runs: Sequence[SweepRun], verdict: Verdict | None = None) -> go.Figure:
    """Fine-tune's accuracy (mean, min..max band), trainable parameters and compute seconds against k;
    scratch as a dashed reference line with its own band."""
    pts = points("freeze", runs)
    ft, ref = pts.get("finetune", []), next(iter(pts.get("scratch", [])), None)
    ks = [p.x for p in ft]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09, subplot_titles=[
        "final test accuracy (%)", "trainable parameters", "compute seconds (training + evaluation)"])
    fig.add_trace(band(ks, [100 * p.min for p in ft], [100 * p.max for p in ft], "finetune", name="fine-tune band"),
                  row=1, col=1)
    fig.add_trace(_mean_line(ft, "finetune", ks, "k=%{x}"), row=1, col=1)
    edges = [-0.3, NUM_STAGES + 0.3] if ref else []
    if ref:
        fig.add_trace(band(edges, [100 * ref.min] * 2, [100 * ref.max] * 2, "scratch", name="scratch band"),
                      row=1, col=1)
    fig.add_trace(go.Scatter(x=edges, y=[round(100 * ref.mean, 2)] * 2 if ref else [], mode="lines",
                             name=f"{label('scratch')} (reference)", legendgroup="scratch",
                             line=dict(color=color("scratch"), width=3, dash="dash"),
                             hovertemplate="scratch: %{y:.1f} %<extra></extra>"), row=1, col=1)
    for col, ys, text in ((2, [p.trainable_params for p in ft], [fmt_params(p.trainable_params) for p in ft]),
                          (3, [round(p.compute_seconds, 2) for p in ft], [f"{p.compute_seconds:.1f} s" for p in ft])):
        fig.add_trace(go.Scatter(x=ks, y=ys, name=label("finetune"), legendgroup="finetune", showlegend=False,
                                 mode="lines+markers", line=dict(color=color("finetune"), width=4),
                                 marker=dict(size=12), customdata=text,
                                 hovertemplate="k=%{x}: %{customdata}<extra></extra>"), row=1, col=col)
    if ref:
        fig.add_trace(go.Scatter(x=edges, y=[round(ref.compute_seconds, 2)] * 2, mode="lines", showlegend=False,
                                 legendgroup="scratch", line=dict(color=color("scratch"), width=3, dash="dash"),
                                 hovertemplate="scratch: %{y:.1f} s<extra></extra>"), row=1, col=3)
    fig.update_xaxes(range=[-0.5, NUM_STAGES + 0.5], tickvals=list(range(NUM_STAGES + 1)), ticktext=FREEZE_TICKS,
                     title_text="frozen stages k")
    fig.update_yaxes(range=[0, 101], row=1, col=1)
    fig.update_yaxes(type="log", tickformat="~s", row=1, col=2)  # 12 k (head) to 2 M (all): log shows both
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    fig.update_annotations(font_size=18)
    fig = _layout(fig, height=470, title=verdict_title("Best depth k (chosen on validation)", verdict))
    fig.update_layout(margin=dict(t=130), legend=dict(y=1.16))  # legend above the three panel titles
    return fig


# ---- experiment 2: data size (learning curves) ------------------------------------------------------------------

def size_figure(runs: Sequence[SweepRun], verdict: Verdict | None = None) -> go.Figure:
    """Final test accuracy against training-set size (log x): per strategy the mean line and a min..max band.

    With a verdict that compared runs at 500 and 5,000, the two points are circled and a dotted line at
    scratch's 5,000-image accuracy shows whether fine-tune on 500 lies above it; the title holds the status.
    """
    pts = points("size", runs)
    fig = go.Figure()
    for s in STRATEGY_NAMES:
        ps = pts.get(s, [])
        xs = [p.x for p in ps]
        fig.add_trace(band(xs, [100 * p.min for p in ps], [100 * p.max for p in ps], s, name=f"{s} band"))
        fig.add_trace(_mean_line(ps, s, xs, "%{x:,} images"))
    sizes = sorted({p.x for ps in pts.values() for p in ps})
    if verdict is not None and "scratch_acc" in verdict.numbers:
        sc_y = 100 * float(verdict.numbers["scratch_acc"])
        fig.add_trace(go.Scatter(x=[min(sizes), max(sizes)], y=[sc_y, sc_y], mode="lines", hoverinfo="skip",
                                 name=f"scratch on {CLAIM_LARGE:,}", line=dict(color=color("scratch"), width=2,
                                                                               dash="dot")))
    return size_claim_layout(fig, sizes, verdict)


def size_claim_layout(fig: go.Figure, sizes: Sequence[int], verdict: Verdict | None) -> go.Figure:
    """The data-size chart's claim markers (fine-tune at CLAIM_SMALL, scratch at CLAIM_LARGE), log axis and
    verdict title: shared by the sweep's chart and the class page's, so the two cannot drift apart."""
    if verdict is not None and "scratch_acc" in verdict.numbers:
        ft_y, sc_y = 100 * float(verdict.numbers["finetune_acc"]), 100 * float(verdict.numbers["scratch_acc"])
        fig.add_trace(go.Scatter(x=[CLAIM_SMALL, CLAIM_LARGE], y=[ft_y, sc_y], name="the claim", mode="markers",
                                 hoverinfo="skip",
                                 marker=dict(symbol="circle-open", size=30, color="#111", line=dict(width=3))))
    fig.update_layout(xaxis=dict(type="log", title="training images (log scale)", tickvals=list(sizes),
                                 ticktext=[f"{n:,}" for n in sizes]),
                      yaxis=dict(title="final test accuracy (%)", range=[0, 101]))
    title = verdict_title(f"Fine-tune on {CLAIM_SMALL:,} beats scratch on {CLAIM_LARGE:,}", verdict)
    return _layout(fig, height=470, title=title)


# ---- experiment 3: domain similarity ----------------------------------------------------------------------------

def domain_figure(gains: Sequence[DomainGain], verdict: Verdict | None = None) -> go.Figure:
    """Error reduction relative to scratch per dataset (mean bars, min..max error bars), most ImageNet-like first.

    Error reduction = (acc − acc_scratch) / (1 − acc_scratch): the share of scratch's test errors that
    pretraining removes (100 % = all of them, 0 = none, negative = more errors than scratch).
    """
    names = list(dict.fromkeys(g.dataset for g in gains))
    score = {g.dataset: g.score for g in gains}
    xs = [f"{plotly_text(Path(n).name)}<br>({'not measured' if score[n] is None else f'similarity {score[n]:.2f}'})"
          for n in names]  # an uploaded set is a path: show its name
    fig = go.Figure()
    for s in ("frozen", "finetune"):
        by = {g.dataset: g for g in gains if g.strategy == s}
        gs = [by.get(n) for n in names]
        ys = [None if g is None else round(100 * g.mean, 2) for g in gs]
        fig.add_trace(go.Bar(
            x=xs, y=ys, name=f"{label(s)}: error reduction vs scratch", marker_color=color(s),
            error_y=dict(type="data", symmetric=False, thickness=2, width=8, color="#333",
                         array=[0 if g is None else round(100 * (g.max - g.mean), 2) for g in gs],
                         arrayminus=[0 if g is None else round(100 * (g.mean - g.min), 2) for g in gs]),
            text=["" if g is None else f"{100 * g.mean:+.0f} % ({g.verdict.status})" for g in gs],
            textposition="outside", cliponaxis=False, textfont=dict(size=16),
            customdata=[[0, 0, 0] if g is None else [round(100 * g.acc, 1), round(100 * g.scratch_acc, 1),
                                                     g.n_seeds] for g in gs],
            hovertemplate=f"{label(s)} %{{customdata[0]}} % vs scratch %{{customdata[1]}} % "
                          "(mean of %{customdata[2]} seeds)<extra></extra>"))
    fig.add_hline(y=0, line_color="#444", line_width=2)
    fig.update_layout(barmode="group", xaxis=dict(title="dataset (measured similarity to ImageNet)"),
                      yaxis=dict(title="error reduction vs scratch (%)", zeroline=True))
    title = verdict_title("Transfer helps more on the most ImageNet-like dataset", verdict)
    return _layout(fig, height=470, title=title)
