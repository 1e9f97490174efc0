"""The teaching panel: what each strategy trains, and the decision guide (target size x similarity).

Pure HTML builders (styled by assets/style.css), so the highlighted cell is unit-testable.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from tl_ui.strip import StripRow
from tl_ui.style import color, fmt_params, label

SMALL_PER_CLASS = 100  # fewer training images per class than this counts as "small"
SIMILARITIES = ("high", "medium", "low")
SIZES = ("small", "large")

# (similarity, target size) -> advice. The classic rule of thumb (CS231n "Transfer Learning" notes),
# phrased with this page's three strategies and its slider k.
GUIDE: dict[tuple[str, str], str] = {
    ("high", "small"): "<b>Frozen</b>: ImageNet features already fit; training more would overfit.",
    ("high", "large"): "<b>Fine-tune</b> the last stages (k ≈ 4–5) for the last few points.",
    ("medium", "small"): "<b>Frozen</b>, or fine-tune only the last stage or two (k ≈ 5–6).",
    ("medium", "large"): "<b>Fine-tune</b> more stages (k ≈ 2–4).",
    ("low", "small"): "<b>Frozen</b> or a light <b>fine-tune</b> (k ≈ 5–6); scratch rarely wins on little data.",
    ("low", "large"): "<b>Fine-tune</b> everything (k = 0); <b>scratch</b> becomes competitive.",
}


def guide_cell(per_class: float, similarity: str) -> tuple[str | None, str]:
    """The (similarity, size) cell that matches the current settings (similarity None: not known)."""
    return (similarity if similarity in SIMILARITIES else None), "small" if per_class < SMALL_PER_CLASS else "large"


def guide_html(cell: tuple[str | None, str]) -> str:
    """The decision guide as a table with ``cell`` highlighted (nothing when the similarity is unknown)."""
    head = "".join(
        f"<th>{s} target set<br><small>{'&lt;' if s == 'small' else '≥'} {SMALL_PER_CLASS} images/class</small></th>"
        for s in SIZES
    )
    rows = []
    for sim in SIMILARITIES:
        tds = "".join(
            f'<td class="{"tl-here" if (sim, size) == cell else ""}">{GUIDE[sim, size]}'
            f'{"<span class=tl-you>◀ your settings</span>" if (sim, size) == cell else ""}</td>'
            for size in SIZES
        )
        rows.append(f"<tr><th>{sim}</th>{tds}</tr>")
    return (
        '<table class="tl-guide"><tr><th>similar to ImageNet?</th>' + head + "</tr>" + "".join(rows) + "</table>"
    )


def strategies_html(rows: Sequence[StripRow], seconds: dict[str, float]) -> str:
    """One card per strategy: its formula, what it trains, its trainable parameters and wall-clock so far.

    Args:
        rows: the strip rows (same numbers as the pills).
        seconds: compute seconds per strategy from the last race (missing: not run yet).
    """
    from tl_engine.strategies import STRATEGIES  # torch-heavy: see tl_ui.strip.strip_rows

    cards = []
    for r in rows:
        info = STRATEGIES[r.strategy]
        secs = seconds.get(r.strategy)
        clock = f"{secs:.1f} s compute" if secs is not None else "run a race to measure"
        cards.append(
            f'<div class="tl-card" style="border-top-color:{color(r.strategy)}">'
            f'<div class="tl-card-title" style="color:{color(r.strategy)}">{html.escape(label(r.strategy))}</div>'
            f'<div class="tl-formula">{html.escape(info.get("formula", ""))}</div>'
            f"<p>{html.escape(info.get('blurb', ''))}</p>"
            f"<p><b>trainable:</b> {fmt_params(r.trainable)} of {fmt_params(r.total)} parameters<br>"
            f"<b>wall-clock:</b> {clock}</p></div>"
        )
    return '<div class="tl-cards">' + "".join(cards) + "</div>"
