"""Per-strategy live counters (test accuracy, epoch, training and evaluation seconds, images/s) as one HTML block."""

from __future__ import annotations

import html
from collections.abc import Sequence

from tl_engine.config import NUM_STAGES, EpochResult
from tl_engine.models import STRATEGIES
from tl_ui.style import color, label


def latest(events: Sequence[EpochResult]) -> dict[str, EpochResult]:
    """The newest event of each strategy."""
    out: dict[str, EpochResult] = {}
    for e in events:
        out[e.strategy] = e
    return out


def common_epoch(events: Sequence[EpochResult], strategies: Sequence[str]) -> int:
    """The last epoch every strategy reached (0 while one has none): where a stopped race is compared."""
    reached = {s: 0 for s in strategies}
    for e in events:
        if e.strategy in reached:
            reached[e.strategy] = max(reached[e.strategy], e.epoch)
    return min(reached.values(), default=0)


def at_epoch(events: Sequence[EpochResult], epoch: int) -> list[EpochResult]:
    """The events up to and including ``epoch``: a stopped race's counters and bars, all at one epoch."""
    return [e for e in events if e.epoch <= epoch]


def stopped_note(events: Sequence[EpochResult], strategies: Sequence[str]) -> str:
    """What a stopped race's page says about the epoch its numbers are at, and what the curves show beyond it."""
    at = common_epoch(events, strategies)
    own = {s: max((e.epoch for e in events if e.strategy == s), default=0) for s in strategies}
    ahead = [f"{label(s)} reached epoch {n}" for s, n in own.items() if n > at]
    beyond = f" ({'; '.join(ahead)}: only the curves show the later epochs)" if ahead else ""
    return (f"Stopped: the sentence, the counters and the bars are all at epoch {at}, the last epoch every strategy "
            f"reached{beyond}.")


def inside_note(events: Sequence[EpochResult], strategies: Sequence[str]) -> str:
    """A stopped race's look-inside views come from each network as it was when stopped: say which epoch each."""
    own = {s: max((e.epoch for e in events if e.strategy == s), default=0) for s in strategies}
    each = ", ".join(f"{label(s)} after epoch {n}" for s, n in own.items())
    return f"Stopped race: these views show each network as it was when stopped ({each})."


def counters_html(events: Sequence[EpochResult], strategies: Sequence[str], epochs: int, k: int) -> str:
    """One card per strategy; "waiting" until its first epoch arrives.

    Seconds are this strategy's own compute, split into training and evaluation (validation + test passes).
    Images/s counts training images through the layers that train; for a fully frozen body that is the head
    alone, on cached features, and the card says so.
    """
    last = latest(events)
    secs: dict[str, list[float]] = {}
    for e in events:
        t = secs.setdefault(e.strategy, [0.0, 0.0])
        t[0] += e.train_seconds
        t[1] += e.eval_seconds
    cards = []
    for s in strategies:
        e = last.get(s)
        if e is None:
            body = '<div class="tl-big">–</div><div class="tl-meta">waiting for epoch 1</div>'
        else:
            info = STRATEGIES[s]
            head_only = (" (a linear classifier on pixels)" if info.body == "none" else
                         " (head only, cached features)" if info.frozen_stages(k) == NUM_STAGES and not info.adapters
                         else "")
            train_s, eval_s = secs[s]
            body = (
                f'<div class="tl-big">{100 * e.test_acc:.1f} %</div>'
                f'<div class="tl-meta">test accuracy · epoch {e.epoch}/{epochs}<br>'
                f"{train_s:.1f} s training + {eval_s:.1f} s evaluation<br>"
                f"{e.images_per_s:,.0f} images/s{head_only}</div>"
            )
        cards.append(
            f'<div class="tl-counter" data-strategy="{s}" style="border-left-color:{color(s)}">'
            f'<div class="tl-cname" style="color:{color(s)}">{html.escape(label(s))}</div>{body}</div>'
        )
    return '<div class="tl-counters">' + "".join(cards) + "</div>"
