"""The "look inside" views: pure functions, numbers in, ``go.Figure`` (or one sentence) out. No Streamlit.

Each view has a caption function that reads "what to notice" from the same numbers the figure draws, so the
sentence can never contradict the picture (it says "exactly 0" only for values that are exactly 0). Inputs:
:mod:`tl_engine.inspect.views` and a race's StrategySummary. Class names are escaped here (:mod:`tl_ui.safe_text`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tl_engine.models import label
from tl_ui.safe_text import md, plotly_names, plotly_text
from tl_ui.style import FONT, color, plural

__all__ = ["confusion_figure", "cell_from_selection", "per_class_figure", "delta_theta_figure", "filters_figure",
           "filters_mosaic", "feature_map_figure", "prediction_table", "confusion_caption", "per_class_caption",
           "delta_theta_caption", "filters_caption", "feature_map_caption", "prediction_caption", "class_color"]

Pred = Sequence[tuple[str, float]]


def _layout(fig: go.Figure, height: int, **extra) -> go.Figure:
    extra = {"margin": dict(l=70, r=20, t=60, b=60), **extra}  # a view may need more room (titles, tick labels)
    fig.update_layout(height=height, font=FONT, template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, font=dict(size=18)),
                      hoverlabel=dict(font_size=16), **extra)
    return fig


def class_color(c: int) -> str:
    """A fixed colour per class index (D3's ten, then the 26 of Alphabet for bigger datasets)."""
    pal = plotly.colors.qualitative.D3 if c < 10 else plotly.colors.qualitative.Alphabet
    return pal[c if c < 10 else (c - 10) % len(pal)]


def _pct(v: float) -> str:
    return "n/a" if v is None or np.isnan(v) else f"{100 * v:.0f} %"


# ---- confusion matrix -----------------------------------------------------------------------------------------

def confusion_figure(cm: Sequence[Sequence[int]], classes: Sequence[str], strategy: str) -> go.Figure:
    """Counts of test images per (true class = row, predicted class = column), shaded in the strategy's colour.

    Clicking a cell: Plotly heatmaps emit no point selections (in the plotly.js that Streamlit 1.67 bundles,
    the heatmap trace module has no ``selectPoints``, and click-to-select only searches traces that have one),
    so an invisible square marker (``go.Scatter``, opacity 0) sits on every cell with ``customdata = [true,
    pred, count]``. With ``st.plotly_chart(fig, on_select="rerun", selection_mode="points")`` a click selects
    that marker; :func:`cell_from_selection` turns the event into ``(true, pred)``. The heatmap itself has
    ``hoverinfo="skip"`` so the hover (and therefore the click) always lands on the marker.
    """
    m, n = np.asarray(cm, dtype=int), len(classes)
    names = plotly_names(classes)  # a class folder may be named <a href=...>: Plotly would render it
    cell = 52  # pixels per row: big enough to read a count on a projector and to hit with a click
    height = 200 + cell * n  # the margins below take 200
    fig = go.Figure(go.Heatmap(z=m, x=names, y=names, text=m, texttemplate="%{text}", textfont=dict(size=18),
                               colorscale=[[0, "#ffffff"], [1, color(strategy)]], showscale=False, hoverinfo="skip",
                               xgap=1, ygap=1))
    t, p = np.divmod(np.arange(n * n), n)
    fig.add_trace(go.Scatter(
        x=[names[j] for j in p], y=[names[i] for i in t], mode="markers", showlegend=False,
        # Plain lists, not a numpy array: plotly.py 6 would send a typed array, whose rows reach Python as
        # {"0": t, "1": p, ...} objects instead of lists (seen in Streamlit 1.67's selection event).
        customdata=[[int(a), int(b), int(c)] for a, b, c in zip(t, p, m.reshape(-1))],
        marker=dict(symbol="square", size=cell - 4, opacity=0, color="#111111"),
        selected=dict(marker=dict(opacity=0.3)), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="true: %{y}<br>predicted: %{x}<br>%{customdata[2]} images<extra></extra>"))
    # Fixed ranges: autorange would pad the axes for the markers' size and shrink the cells.
    fig.update_xaxes(title="predicted class", side="top", tickangle=-35, type="category", range=[-0.5, n - 0.5])
    fig.update_yaxes(title="true class", type="category", range=[n - 0.5, -0.5])  # first class on top
    return _layout(fig, height, title=dict(text=label(strategy), x=0.5, y=0.02, yanchor="bottom"),
                   margin=dict(l=150, r=20, t=150, b=50))


def cell_from_selection(event: Mapping | None) -> tuple[int, int] | None:
    """``(true, pred)`` of the clicked cell from what ``st.plotly_chart(..., on_select="rerun")`` returned
    (the event itself or its ``selection``), or None when nothing is selected."""
    if not event:
        return None
    sel = event.get("selection", event)
    for point in (sel or {}).get("points", []):
        data = point.get("customdata")
        if isinstance(data, Mapping):  # a typed-array row arrives as {"0": t, "1": p, ...}
            data = [data.get("0", data.get(0)), data.get("1", data.get(1))]
        if data is not None and len(data) >= 2 and None not in data[:2]:
            return int(data[0]), int(data[1])
    return None


def confusion_caption(cm: Sequence[Sequence[int]], classes: Sequence[str], strategy: str) -> str:
    """E.g. "Fine-tune: 25 of 30 right (83 %); most common mistake: Shirt taken for T-shirt/top (3 times)."."""
    m = np.asarray(cm, dtype=int)
    total, right = int(m.sum()), int(np.trace(m))
    head = f"{label(strategy)}: {right} of {total} right ({_pct(right / total) if total else 'n/a'})"
    off = m - np.diag(np.diag(m))
    if not off.any():
        return head + "; no mistakes."
    t, p = np.unravel_index(off.argmax(), off.shape)
    times, true, pred = int(off[t, p]), md(classes[t]), md(classes[p])
    return f"{head}; most common mistake: {true} taken for {pred} ({times} time{'s' * (times > 1)})."


# ---- accuracy per class -------------------------------------------------------------------------------------

def per_class_figure(per_class: Mapping[str, Sequence[float]], classes: Sequence[str]) -> go.Figure:
    """Grouped bars: test accuracy (%) of each class, one bar per strategy."""
    fig = go.Figure()
    for s, accs in per_class.items():
        ys = [None if a is None or np.isnan(a) else round(100 * a, 1) for a in accs]
        fig.add_trace(go.Bar(x=plotly_names(classes), y=ys, name=label(s), marker_color=color(s),
                             hovertemplate=f"{label(s)}, %{{x}}: %{{y:.0f}} %<extra></extra>"))
    fig.update_layout(barmode="group", yaxis=dict(title="test accuracy (%)", range=[0, 105]),
                      xaxis=dict(tickangle=-30))
    return _layout(fig, 440)


def per_class_caption(per_class: Mapping[str, Sequence[float]], classes: Sequence[str]) -> str:
    """The hardest and easiest class on average over the strategies, with each strategy's number."""
    acc = np.array([list(v) for v in per_class.values()], dtype=float)
    if acc.size == 0 or np.all(np.isnan(acc)):
        return "No per-class accuracy yet."
    mean = np.nanmean(np.where(np.isnan(acc), np.nan, acc), axis=0)
    lo, hi = int(np.nanargmin(mean)), int(np.nanargmax(mean))

    def each(c: int) -> str:
        return ", ".join(f"{label(s)} {_pct(acc[i, c])}" for i, s in enumerate(per_class))

    return f"Hardest class: {md(classes[lo])} ({each(lo)}); easiest: {md(classes[hi])} ({each(hi)})."


# ---- how far each stage moved -------------------------------------------------------------------------------

def _dt_text(v: float | None) -> str:
    return "" if v is None else "0 (frozen)" if v == 0 else f"{v:.2g}"


def delta_theta_figure(delta: Mapping[str, Mapping[str, float]], frozen_k: int) -> go.Figure:
    """Bars of ||θ − θ0|| / ||θ0|| per stage (and head), one per strategy; exactly-zero bars say "0 (frozen)";
    the stages fine-tune froze (the first ``frozen_k``) are shaded grey."""
    fig = go.Figure()
    stages = list(dict.fromkeys(st for d in sorted(delta.values(), key=len, reverse=True) for st in d))  # all racers'
    for s, d in delta.items():
        vals = [float(d[st]) if st in d else None for st in stages]
        fig.add_trace(go.Bar(x=stages, y=vals, name=label(s), marker_color=color(s), text=[_dt_text(v) for v in vals],
                             textposition="outside", textangle=-90, textfont=dict(size=15), cliponaxis=False,
                             constraintext="none",  # by default plotly shrinks the labels to the thin bars' width
                             hovertemplate=f"{label(s)}, %{{x}}: %{{y:.3g}}<extra></extra>"))
    if "finetune" in delta and frozen_k > 0:
        fig.add_vrect(x0=-0.5, x1=frozen_k - 0.5, fillcolor="#c9ced6", opacity=0.35, line_width=0, layer="below",
                      annotation_text=f"{label('finetune')} freezes these {frozen_k}", annotation_position="top left",
                      annotation_font_size=16)
    top = max((v for d in delta.values() for v in d.values()), default=1.0)
    fig.update_layout(barmode="group", yaxis=dict(title="Δθ: ||θ − θ0|| / ||θ0||", range=[0, 1.45 * top or 1]),
                      xaxis=dict(title="stage", type="category"))
    return _layout(fig, 460)


def delta_theta_caption(delta: Mapping[str, Mapping[str, float]]) -> str:
    """E.g. "Frozen: Δθ is exactly 0 in all 7 stages; only the head moved (0.33). Fine-tune: ..."."""
    parts = []
    for s, d in delta.items():
        body = {k: float(v) for k, v in d.items() if k != "head"}
        zero, moved = [k for k, v in body.items() if v == 0], [v for v in body.values() if v != 0]
        head = float(d.get("head", float("nan")))
        if not body:  # pixels
            text = f"no pretrained body; its classifier moved by Δθ = {head:.2f}"
        elif len(zero) == len(body):
            tail = f"only the head moved (Δθ = {head:.2f})" if head > 0 else "nothing else moved either"
            text = f"Δθ is exactly 0 in all {plural(len(body), 'stage')}; {tail}"
        else:
            first = "the first stage" if len(zero) == 1 else f"the first {len(zero)} stages"
            which = first if zero == list(body)[:len(zero)] else ", ".join(zero)
            text = (f"Δθ is exactly 0 in {which}; the others moved up to Δθ = {max(moved):.2f}" if zero
                    else f"every stage moved (up to Δθ = {max(moved):.2f})")
            text += f"; the head moved by Δθ = {head:.2f}" if head == head else ""  # head == head: not NaN
        parts.append(f"{label(s)}: {text}.")
    return " ".join(parts)


# ---- first-layer filters ------------------------------------------------------------------------------------

def filters_mosaic(filters: np.ndarray, per_row: int = 8, zoom: int = 6) -> np.ndarray:
    """K×3×h×w filters (0..1) -> one uint8 RGB image: a grid of filters, each enlarged ``zoom`` times."""
    f = np.asarray(filters, dtype=np.float32)
    k, _, h, w = f.shape
    rows = -(-k // per_row)
    cell_h, cell_w, gap = h * zoom, w * zoom, 2
    out = np.full((rows * (cell_h + gap) + gap, per_row * (cell_w + gap) + gap, 3), 255, np.uint8)
    for i in range(k):
        tile = np.repeat(np.repeat(f[i].transpose(1, 2, 0), zoom, axis=0), zoom, axis=1)
        r, c = divmod(i, per_row)
        y0, x0 = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
        out[y0:y0 + cell_h, x0:x0 + cell_w] = np.round(tile * 255).astype(np.uint8)
    return out


def filters_figure(filters: Mapping[str, np.ndarray]) -> go.Figure:
    """Each network's stem filters (RGB, own range) as a ``go.Image`` grid; two panels a row, so they are big."""
    names, cols = list(filters), min(2, max(len(filters), 1))
    rows = -(-max(len(names), 1) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[label(n) for n in names], horizontal_spacing=0.04,
                        vertical_spacing=0.12 if rows > 1 else 0.0)
    for i, n in enumerate(names):
        fig.add_trace(go.Image(z=filters_mosaic(filters[n]), hoverinfo="skip"), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=20)
    return _layout(fig, 60 + 300 * rows, margin=dict(l=10, r=10, t=50, b=10))


def filters_caption(filters: Mapping[str, np.ndarray], reference: str) -> str:
    """How each network's stem filters compare with ``reference``'s: identical, or by how much they differ."""
    ref = np.asarray(filters[reference])
    parts = []
    for n, f in filters.items():
        if n == reference:
            continue
        f = np.asarray(f)
        if f.shape == ref.shape and np.array_equal(f, ref):
            parts.append(f"{label(n)}'s are identical (every value equal)")
        elif f.shape == ref.shape:
            parts.append(f"{label(n)}'s differ (mean difference {np.abs(f - ref).mean():.2f} on a 0..1 scale)")
        else:
            parts.append(f"{label(n)}'s have another shape {f.shape}")
    return f"Compared with {label(reference)}'s first-layer filters: " + "; ".join(parts) + "."


# ---- feature map --------------------------------------------------------------------------------------------

def feature_map_figure(points: Mapping[str, np.ndarray], labels: Sequence[int] | np.ndarray, classes: Sequence[str],
                       scores: Mapping[str, float] | None = None) -> go.Figure:
    """One scatter per network (its own 2-D PCA of pooled features), each test image a dot in its class colour.

    ``scores`` (e.g. :func:`tl_engine.inspect.views.feature_separation`) go into the panel titles.
    """
    names = list(points)
    y = np.asarray(labels)
    titles = [f"{label(n)}" + (f": {_pct(scores[n])} nearest-centre" if scores and n in scores else "")
              for n in names]
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=titles, horizontal_spacing=0.04)
    for i, n in enumerate(names, start=1):
        p = np.asarray(points[n])
        for c, cname in enumerate(plotly_names(classes)):
            sel = y == c
            fig.add_trace(go.Scatter(x=p[sel, 0], y=p[sel, 1], mode="markers", name=cname, legendgroup=cname,
                                     showlegend=i == 1, marker=dict(size=9, color=class_color(c), opacity=0.8),
                                     hovertemplate=f"{cname}<extra></extra>"), row=1, col=i)
    fig.update_xaxes(showticklabels=False, zeroline=False, title_text="PCA 1")
    fig.update_yaxes(showticklabels=False, zeroline=False, title_text="PCA 2")
    fig.update_annotations(font_size=20)
    fig = _layout(fig, 540, margin=dict(l=40, r=20, t=50, b=110))
    # The class legend goes under the panels: above them it would cover the panel titles.
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.1, x=0, font=dict(size=18)))
    return fig


def feature_map_caption(scores: Mapping[str, float], n_classes: int) -> str:
    """The nearest-class-centre accuracy of each map, best first, against chance."""
    ranked = sorted(scores, key=lambda n: -scores[n])
    each = ", ".join(f"{_pct(scores[n])} with {label(n)}'s features" for n in ranked)
    return (f"Guessing each test image's class from the nearest class centre in these maps is right for {each} "
            f"(chance: {_pct(1 / n_classes) if n_classes else 'n/a'}).")


# ---- try it --------------------------------------------------------------------------------------------------

def prediction_table(preds: Mapping[str, Pred]) -> go.Figure:
    """A table: one column per strategy (header in its colour), its top guesses with probabilities, best first."""
    names, depth = list(preds), max((len(p) for p in preds.values()), default=0)
    cols = [[f"#{r + 1}" for r in range(depth)]]
    cols += [[f"{plotly_text(p[r][0])}  {_pct(p[r][1])}" if r < len(p) else "" for r in range(depth)]
             for p in preds.values()]
    fig = go.Figure(go.Table(
        header=dict(values=["", *[label(n) for n in names]], fill_color=["#ffffff", *[color(n) for n in names]],
                    font=dict(size=20, color=["#111111", *["#ffffff"] * len(names)]), height=42, align="left"),
        cells=dict(values=cols, font=dict(size=20, color="#111111"), height=40, align="left",
                   fill_color="#ffffff", line_color="#dddddd"),
        columnwidth=[0.4, *[1.0] * len(names)],
        # The unrounded numbers travel with the figure (not shown): what a check against the exported file reads.
        meta=dict(predictions={n: [[c, float(v)] for c, v in p] for n, p in preds.items()})))
    return _layout(fig, 80 + 42 * (depth + 1), margin=dict(l=10, r=10, t=10, b=10))


def prediction_caption(preds: Mapping[str, Pred]) -> str:
    """Whether the networks agree on the top class, and who is most sure."""
    tops = {n: p[0] for n, p in preds.items() if p}
    if not tops:
        return "No predictions."
    if len({c for c, _ in tops.values()}) == 1:
        sure = max(tops, key=lambda n: tops[n][1])
        who = "Both" if len(tops) == 2 else ("It" if len(tops) == 1 else f"All {len(tops)}")
        cls = next(iter(tops.values()))[0]
        return f"{who} say “{md(cls)}”; {label(sure)} is the most sure ({_pct(tops[sure][1])})."
    return "They disagree: " + ", ".join(f"{label(n)} says “{md(c)}” ({_pct(p)})" for n, (c, p) in tops.items()) + "."
