"""The architecture strip: one row of blocks per strategy, trainable blocks coloured and locked ones grey.

Driven only by the engine's stage table and the strategy table (how many stages each strategy freezes for the
slider value k, whether it carries adapters, where its body is cut): nothing here names a layer, so a new
backbone needs no UI change. LoRA's locked blocks carry an adapter badge in its colour; early's cut-off stages
are drawn as empty outlines; pixels has one block, its linear classifier.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from tl_engine.config import NUM_STAGES, STRATEGY_NAMES, RunConfig
from tl_engine.models import STRATEGIES, Stage, total_params, trainable_params
from tl_ui.style import LOCKED, color, fmt_params, label


@dataclass(frozen=True)
class Block:
    name: str
    params: int
    trainable: bool
    color: str  # the strategy's colour when trainable, grey when locked
    kind: str = ""  # "" plain, "adapter" (locked, with trainable adapters beside it), "cut" (not in this network)


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


DEFAULT = RunConfig()


def _blocks(stages: Sequence[Stage], s: str, k: int, cfg: RunConfig) -> tuple[Block, ...]:
    info = STRATEGIES[s]
    if info.body == "none":
        return (Block("pixels → classes", trainable_params(stages, s, k, cfg), True, color(s)),)
    n_frozen = info.frozen_stages(k)
    out = []
    for i, st in enumerate(stages):
        if i == NUM_STAGES:  # the head: its size depends on what it reads (early: a cut body's channels)
            out.append(Block(st.name, trainable_params(stages, s, k, cfg) if info.body == "cut" else st.params,
                             True, color(s)))
        elif info.body == "cut" and i >= cfg.early_stage:
            out.append(Block(st.name, 0, False, "transparent", "cut"))
        elif info.adapters and i >= k:
            out.append(Block(st.name, st.params, False, LOCKED, "adapter"))
        else:
            out.append(Block(st.name, st.params, i >= n_frozen, color(s) if i >= n_frozen else LOCKED))
    return tuple(out)


def strip_rows(stages: Sequence[Stage], k: int, strategies: Sequence[str] = STRATEGY_NAMES,
               cfg: RunConfig = DEFAULT) -> list[StripRow]:
    """What the strip shows for the fine-tune slider at ``k`` (stages = body stages then the head); ``cfg``
    supplies the added racers' knobs (LoRA's rank, early's cut, the resolution for pixels)."""
    stages = list(stages)
    return [StripRow(strategy=s, pretrained=STRATEGIES[s].pretrained, blocks=_blocks(stages, s, k, cfg),
                     trainable=trainable_params(stages, s, k, cfg), total=total_params(stages, s, cfg))
            for s in strategies]


def strip_html(rows: Sequence[StripRow]) -> str:
    """The strip as HTML blocks (styled by assets/style.css): big type that reads on a projector."""
    out = ['<div class="tl-strip">']
    for r in rows:
        init = ("θpre: ImageNet" if r.pretrained else "θ: random init" if len(r.blocks) > 1
                else "no network")
        out.append(
            f'<div class="tl-row" data-strategy="{r.strategy}">'
            f'<div class="tl-name" style="color:{color(r.strategy)}">{html.escape(label(r.strategy))}'
            f"<small>{init}</small></div>"
            '<div class="tl-blocks">'
        )
        for b in r.blocks:
            if b.kind == "cut":  # not part of this racer's network: an empty outline
                out.append(f'<div class="tl-blk cut" title="{html.escape(b.name)}: cut off, not used">'
                           f'<span class="tl-bname">✂ {html.escape(b.name)}</span></div>')
                continue
            state = "on" if b.trainable else "off"
            lock = "" if b.trainable else "🔒 "
            badge = (f'<span class="tl-adapter" style="background-color:{color(r.strategy)}">+ adapters</span>'
                     if b.kind == "adapter" else "")
            # Random-init blocks are hatched: trainable, but they start from nothing.
            hatch = " random" if b.trainable and not r.pretrained else ""
            out.append(
                f'<div class="tl-blk {state}{hatch}" style="background-color:{b.color}" '
                f'title="{html.escape(b.name)}: {b.params:,} parameters">'
                f'<span class="tl-bname">{lock}{html.escape(b.name)}</span>'
                f'<span class="tl-bparams">{fmt_params(b.params)}</span>{badge}</div>'
            )
        out.append(
            f'</div><div class="tl-pill" style="border-color:{color(r.strategy)}">{r.pill}</div></div>'
        )
    out.append("</div>")
    return "".join(out)
