"""Pure chart functions: events in, Plotly figures and sentences out.

No Streamlit here, so the tests need no server.

Every figure has one trace per strategy in fixed order and colour (see :mod:`tl_ui.style`), even before the
strategy's first epoch, so the legend never jumps while the race grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_engine.config import STRATEGY_NAMES, EpochResult, StrategySummary
from tl_ui.style import DASH, FONT, color, fmt_params, label

XAxis = str  # "epoch" | "seconds"


def _base_layout(fig: go.Figure, height: int) -> go.Figure:
    # uirevision keeps the user's zoom and legend clicks across the redraw of every tick.
    fig.update_layout(
        uirevision="race",
        height=height,
        font=FONT,
        template="plotly_white",
        margin=dict(l=70, r=20, t=40, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(size=20)),
        hoverlabel=dict(font_size=16),
    )
    return fig


def _by_strategy(events: Iterable[EpochResult], strategies: Sequence[str]) -> dict[str, list[EpochResult]]:
    out: dict[str, list[EpochResult]] = {s: [] for s in strategies}
    for e in events:
        out.setdefault(e.strategy, []).append(e)
    return out


def race_figure(
    events: Sequence[EpochResult],
    x: XAxis = "epoch",
    strategies: Sequence[str] = STRATEGY_NAMES,
    epochs: int | None = None,
    chance: float | None = None,
) -> go.Figure:
    """Test accuracy (%) per strategy against epoch or cumulative compute seconds.

    Args:
        events: the race so far, in any order.
        x: "epoch" or "seconds" (the strategy's cumulative compute seconds).
        strategies: which traces to draw (always all of them, empty until their first epoch).
        epochs: planned epochs; fixes the epoch axis so it does not rescale every tick.
        chance: accuracy of guessing (1 / classes), drawn as a dotted reference line.
    """
    fig, xaxis = go.Figure(), _x_axis(x, epochs)
    for s, evs in _by_strategy(events, strategies).items():
        xs = _x_values(evs, x)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[round(100 * e.test_acc, 2) for e in evs],
                name=label(s),
                mode="lines+markers",
                line=dict(color=color(s), width=5, dash=DASH.get(s, "solid")),
                marker=dict(size=11),
                hovertemplate=f"{label(s)}: %{{y:.1f}} %<extra></extra>",
            )
        )
    if chance is not None:
        fig.add_hline(y=100 * chance, line_dash="dot", line_color="#888", annotation_text="chance",
                      annotation_position="bottom right", annotation_font_size=16)
    fig.update_layout(xaxis=xaxis, yaxis=dict(title="test accuracy (%)", range=[0, 101]))
    return _base_layout(fig, height=440)


def _x_values(evs: list[EpochResult], x: XAxis) -> list[float]:
    return [e.epoch if x == "epoch" else round(e.cum_seconds, 2) for e in evs]


def _x_axis(x: XAxis, epochs: int | None) -> dict:
    """Epochs: integer ticks on a fixed range (no rescaling every tick); seconds: from zero."""
    if x not in ("epoch", "seconds"):
        raise ValueError(f"x must be 'epoch' or 'seconds', not {x!r}")
    if x == "seconds":
        return dict(title="compute seconds (training + evaluation)", rangemode="tozero")
    return dict(title="epoch", dtick=1, range=[0.8, epochs + 0.2]) if epochs else dict(title="epoch", dtick=1)


def loss_figure(events: Sequence[EpochResult], strategies: Sequence[str] = STRATEGY_NAMES, x: XAxis = "epoch",
                epochs: int | None = None) -> go.Figure:
    """Train loss (solid) and test loss (dashed) per strategy, against epoch or compute seconds."""
    fig, xaxis = go.Figure(), _x_axis(x, epochs)
    for s, evs in _by_strategy(events, strategies).items():
        xs = _x_values(evs, x)
        common = dict(mode="lines+markers", legendgroup=s, marker=dict(size=9))
        fig.add_trace(go.Scatter(x=xs, y=[e.train_loss for e in evs], name=f"{label(s)} train",
                                 line=dict(color=color(s), width=4), **common))
        fig.add_trace(go.Scatter(x=xs, y=[e.test_loss for e in evs], name=f"{label(s)} test",
                                 line=dict(color=color(s), width=4, dash="dash"), **common))
    fig.update_layout(xaxis=xaxis, yaxis=dict(title="cross-entropy loss", rangemode="tozero"))
    return _base_layout(fig, height=420)


def summary_figure(summary: dict[str, StrategySummary]) -> go.Figure:
    """Side-by-side bars: test accuracy, trainable parameters and compute seconds per strategy.

    The accuracy panel says after which epoch(s) it was measured: a stopped race's strategies may differ.
    """
    names = list(summary)
    reached = sorted({summary[s].epochs for s in names})
    after = f"epoch {reached[0]}" if len(reached) == 1 else "epochs " + "/".join(str(summary[s].epochs) for s in names)
    # Titles on two short lines: on one line each, a 1280 px screen ran them into each other.
    panels = [
        (f"test accuracy (%)<br>after {after}", [100 * summary[s].final_test_acc for s in names],
         lambda v: f"{v:.1f} %"),
        ("trainable<br>parameters", [summary[s].trainable_params for s in names], lambda v: fmt_params(int(v))),
        ("compute seconds<br>(training + evaluation)", [summary[s].compute_seconds for s in names],
         lambda v: f"{v:.1f} s"),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.08)
    for i, (_title, values, fmt) in enumerate(panels, start=1):
        fig.add_trace(
            go.Bar(
                x=[label(s) for s in names],
                y=values,
                marker_color=[color(s) for s in names],
                text=[fmt(v) for v in values],
                textposition="outside",
                textfont=dict(size=18),
                cliponaxis=False,
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=i,
        )
        fig.update_yaxes(showticklabels=False, range=[0, 1.2 * max(values, default=1) or 1], row=1, col=i)
    fig.update_annotations(font_size=20)
    fig = _base_layout(fig, height=400)
    fig.update_layout(margin=dict(t=90))
    return fig
