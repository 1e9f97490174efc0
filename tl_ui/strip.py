"""The architecture strip: one row of blocks per strategy, trainable blocks coloured and locked ones grey.

Driven only by the engine's stage table and the strategy table (how many stages each strategy freezes for the
slider value k): nothing here names a layer, so a new backbone or strategy needs no UI change.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from tl_engine.config import STRATEGY_NAMES
from tl_engine.models import STRATEGIES, Stage, trainable_params
from tl_ui.style import LOCKED, color, fmt_params, label


@dataclass(frozen=True)
class Block:
    name: str
    params: int
    trainable: bool
    color: str  # the strategy's colour when trainable, grey when locked


@dataclass(frozen=True)
class StripRow:
    strategy: str
    pretrained: bool
    blocks: tuple[Block, ...]
    trainable: int  # parameters that receive gradients
    total: int

    @property
    def pill(self) -> str:
        """The row's trainable-parameter pill, e.g. "trainable: 1.99 M of 2.24 M"."""
        return f"trainable: {fmt_params(self.trainable)} of {fmt_params(self.total)}"


def strip_rows(stages: Sequence[Stage], k: int, strategies: Sequence[str] = STRATEGY_NAMES) -> list[StripRow]:
    """What the strip shows for the fine-tune slider at ``k`` (stages = body stages then the head)."""
    rows = []
    for s in strategies:
        n_frozen = STRATEGIES[s].frozen_stages(k)
        blocks = tuple(
            Block(st.name, st.params, trainable=i >= n_frozen, color=color(s) if i >= n_frozen else LOCKED)
            for i, st in enumerate(stages)
        )
        rows.append(
            StripRow(
                strategy=s,
                pretrained=STRATEGIES[s].pretrained,
                blocks=blocks,
                trainable=trainable_params(list(stages), s, k),
                total=sum(st.params for st in stages),
            )
        )
    return rows


def strip_html(rows: Sequence[StripRow]) -> str:
    """The strip as HTML blocks (styled by assets/style.css): big type that reads on a projector."""
    out = ['<div class="tl-strip">']
    for r in rows:
        init = "θpre: ImageNet" if r.pretrained else "θ: random init"
        out.append(
            f'<div class="tl-row" data-strategy="{r.strategy}">'
            f'<div class="tl-name" style="color:{color(r.strategy)}">{html.escape(label(r.strategy))}'
            f"<small>{init}</small></div>"
            '<div class="tl-blocks">'
        )
        for b in r.blocks:
            state = "on" if b.trainable else "off"
            lock = "" if b.trainable else "🔒 "
            # Random-init blocks are hatched: trainable, but they start from nothing.
            hatch = " random" if b.trainable and not r.pretrained else ""
            out.append(
                f'<div class="tl-blk {state}{hatch}" style="background-color:{b.color}" '
                f'title="{html.escape(b.name)}: {b.params:,} parameters">'
                f'<span class="tl-bname">{lock}{html.escape(b.name)}</span>'
                f'<span class="tl-bparams">{fmt_params(b.params)}</span></div>'
            )
        out.append(
            f'</div><div class="tl-pill" style="border-color:{color(r.strategy)}">{r.pill}</div></div>'
        )
    out.append("</div>")
    return "".join(out)
