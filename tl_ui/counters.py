"""Per-strategy live counters (accuracy, epoch, compute seconds, images/s) as one HTML block."""

from __future__ import annotations

import html
from collections.abc import Sequence

from tl_engine.config import EpochResult
from tl_ui.style import color, label


def latest(events: Sequence[EpochResult]) -> dict[str, EpochResult]:
    """The newest event of each strategy."""
    out: dict[str, EpochResult] = {}
    for e in events:
        out[e.strategy] = e
    return out


def counters_html(events: Sequence[EpochResult], strategies: Sequence[str], epochs: int) -> str:
    """One card per strategy; "waiting" until its first epoch arrives."""
    last = latest(events)
    cards = []
    for s in strategies:
        e = last.get(s)
        if e is None:
            body = '<div class="tl-big">–</div><div class="tl-meta">waiting for epoch 1</div>'
        else:
            body = (
                f'<div class="tl-big">{100 * e.test_acc:.1f} %</div>'
                f'<div class="tl-meta">epoch {e.epoch}/{epochs} · {e.cum_seconds:.1f} s compute<br>'
                f"{e.images_per_s:,.0f} images/s</div>"
            )
        cards.append(
            f'<div class="tl-counter" data-strategy="{s}" style="border-left-color:{color(s)}">'
            f'<div class="tl-cname" style="color:{color(s)}">{html.escape(label(s))}</div>{body}</div>'
        )
    return '<div class="tl-counters">' + "".join(cards) + "</div>"
