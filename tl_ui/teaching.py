"""The teaching panel: what each strategy trains, and a decision guide that checks itself against measurements.

The guide is the textbook rule of thumb (CS231n "Transfer Learning" notes: target data small vs large,
similar to ImageNet vs different). Next to the lit cell it shows what the results store measured on this
dataset at this size (any sweep or race, any seeds), and says so when the measurement disagrees with the
textbook. Pure HTML builders (styled by assets/style.css), so cells and notes are unit-testable;
only :func:`guide_panel` touches Streamlit.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from tl_engine.config import NUM_STAGES, RaceResult, RunConfig, StrategySummary
from tl_engine.experiments import Point, best_of, pts
from tl_engine.inspect.simscore import SIMILAR_FROM, guide_word
from tl_ui.strip import StripRow
from tl_ui.style import color, fmt_params, label, plural

# Reference sizes, by total training images: CS231n's "small" and "large" target sets (a rule of thumb).
SMALL_BELOW = 1_000
LARGE_FROM = 10_000
# "Similar" means a measured similarity score (0..1) of SIMILAR_FROM or more: one definition, guide_word in
# tl_engine.inspect.simscore (the CLI's --json uses it too), with the boundary's basis (docs/datasets.md).
SIMILARITIES = ("similar", "different")
SIZES = ("small", "between", "large")
SIZE_HEAD = {"small": f"small target set<br><small>under ~{SMALL_BELOW:,} images</small>",
             "between": f"in between<br><small>~{SMALL_BELOW:,} to ~{LARGE_FROM:,}</small>",
             "large": f"large target set<br><small>over ~{LARGE_FROM:,} images</small>"}
BETWEEN = "The notes give no rule here: both neighbouring cells apply. Measure it (Experiments page)."

# (similarity, size) -> advice, phrased with this page's strategies and its slider k.
GUIDE: dict[tuple[str, str], str] = {
    ("similar", "small"): "<b>Frozen</b>: a linear classifier on ImageNet features; fine-tuning would overfit. "
                          "<small>To adapt a little more: <b>LoRA</b> or <b>head first</b> (rule of thumb).</small>",
    ("similar", "between"): BETWEEN,
    ("similar", "large"): "<b>Fine-tune</b> through most of the network (k ≤ 3): enough data not to overfit.",
    ("different", "small"): "Keep only the early stages frozen and <b>fine-tune</b> a few later ones (k ≈ 2–6) "
                            "at a low learning rate. <small>Or a head on <b>early layers</b>' features, which are "
                            "less ImageNet-specific (rule of thumb); <b>pixels</b> shows what transfer adds.</small>",
    ("different", "between"): BETWEEN,
    ("different", "large"): "<b>Fine-tune</b> everything (k ≤ 1); <b>scratch</b> becomes affordable.",
}

# What the textbook picks in each cell, as a test of a measured winner (strategy, k): description, predicate.
TEXTBOOK: dict[tuple[str, str], tuple[str, Callable[[str, int], bool]]] = {
    ("similar", "small"): ("frozen", lambda s, k: s == "frozen"),
    ("similar", "large"): ("fine-tune with k ≤ 3", lambda s, k: s == "finetune" and k <= 3),
    ("different", "small"): ("fine-tune with k = 2 to 6", lambda s, k: s == "finetune" and 2 <= k <= 6),
    ("different", "large"): ("fine-tune with k ≤ 1, or scratch",
                             lambda s, k: s == "scratch" or (s == "finetune" and k <= 1)),
}


def guide_cell(train_size: int, similarity_score: float | None) -> tuple[str | None, str]:
    """The (similarity, size) cell for these settings; similarity None when the score was not measured."""
    size = "small" if train_size < SMALL_BELOW else "large" if train_size >= LARGE_FROM else "between"
    sim = None if similarity_score is None else guide_word(similarity_score)
    return sim, size


def guide_html(cell: tuple[str | None, str], measured: str | None = None) -> str:
    """The guide as a table with ``cell`` highlighted and ``measured`` (a note) in it; nothing lit if unknown."""
    head = "".join(f"<th>{SIZE_HEAD[s]}</th>" for s in SIZES)
    rows = []
    for sim in SIMILARITIES:
        tds = []
        for size in SIZES:
            here = (sim, size) == cell
            note = f'<span class="tl-measured">{html.escape(measured)}</span>' if here and measured else ""
            you = "<span class=tl-you>◀ your settings</span>" if here else ""
            tds.append(f'<td class="{"tl-here" if here else ""}">{GUIDE[sim, size]}{you}{note}</td>')
        rows.append(f"<tr><th>{sim}</th>{''.join(tds)}</tr>")
    source = (f'<p class="tl-source"><small>Rule of thumb: CS231n "Transfer Learning" notes (small: under '
              f"~{SMALL_BELOW:,} images, large: over ~{LARGE_FROM:,}). \"Similar\" means a measured similarity "
              f"score of {SIMILAR_FROM} or more: the middle of the gap between real photos of everyday things and "
              f"digits, textures and scans, measured here (docs/datasets.md); each cell's advice stays a rule of "
              "thumb.</small></p>")
    return ('<table class="tl-guide"><tr><th>similar to ImageNet?</th>' + head + "</tr>" + "".join(rows)
            + "</table>" + source)


def _candidate(strategy: str, cfg: RunConfig) -> tuple[str, int]:
    """(strategy, k) of a result; fine-tune at k = 7 *is* frozen (same images, order and head init)."""
    if strategy == "finetune" and cfg.frozen_stages == NUM_STAGES:
        return "frozen", NUM_STAGES
    if strategy in ("finetune", "gradual", "lora"):
        return strategy, cfg.frozen_stages
    return strategy, NUM_STAGES if strategy == "frozen" else 0


def _name(strategy: str, k: int) -> str:
    if strategy in ("gradual", "lora"):
        return f"{label(strategy)} at k = {k}"
    return f"fine-tune at k = {k}" if strategy == "finetune" else strategy


def measured_note(results: Sequence[RaceResult], dataset: str, backbone: str, train_size: int,
                  cell: tuple[str | None, str]) -> str | None:
    """What the store measured on this dataset, backbone and training size, against the textbook's cell.

    Every stored race counts (freeze or size sweeps, plain races, any seeds), but only runs with identical
    other settings (epochs, resolution, learning rates, ...) are compared: the largest such group. The winner
    is chosen on validation accuracy and checked on test (:func:`tl_engine.experiments.verdicts.best_of`).
    Returns None when nothing comparable was stored.
    """
    mine = [r for r in results if r.completed and r.config.dataset == dataset and r.config.backbone == backbone
            and r.config.train_size == train_size]
    groups: dict[RunConfig, dict[tuple[str, int], dict[int, StrategySummary]]] = {}
    for r in mine:
        setting = replace(r.config, seed=0, strategies=(), frozen_stages=0)
        for s, v in r.summary.items():
            groups.setdefault(setting, {}).setdefault(_candidate(s, r.config), {})[r.config.seed] = v
    if not groups:
        return None
    setting, cands = max(groups.items(), key=lambda kv: sum(len(seeds) for seeds in kv[1].values()))
    points = {c: Point(_name(*c), c[0], tuple((sd, v.final_test_acc) for sd, v in sorted(seeds.items())),
                       tuple((sd, v.final_val_acc) for sd, v in sorted(seeds.items())), setting.test_size)
              for c, seeds in sorted(cands.items(), key=lambda kv: -kv[0][1])}  # cheap (large k) first on ties
    if len(points) < 2:
        return None
    v = best_of({p.x: p for p in points.values()}, "strategy")
    n = int(v.numbers.get("n_seeds", 0))
    where = f"Measured here ({plural(n, 'seed')}, {plural(setting.epochs, 'epoch')}, {plural(train_size, 'image')})"
    book = TEXTBOOK.get(cell) if None not in cell else None
    if v.status != "supported":
        tail = f"; too close to confirm or contradict the textbook ({book[0]})" if book else ""
        said = v.sentence.rstrip(".")  # the tail goes before the full stop ("images).; too close" read badly)
        return f"{where}: {said[:1].lower()}{said[1:]}{tail}."  # starts with the status word
    winner = next(c for c, p in points.items() if p.x == v.numbers["best"])
    won = f"{v.numbers['best']} won by {pts(v.margin or 0.0)} points over {v.numbers['other']}"
    if book is None:
        return f"{where}: {won}."
    if book[1](*winner):
        return f"{where}: {won}, as the textbook says ({book[0]})."
    return f"The textbook says {book[0]}; on your data {won} ({plural(n, 'seed')})."


WORDS = ("one", "two", "three", "four", "five", "six", "seven")


def train_label(n: int) -> str:
    """The start button: "▷ Train all three" for the default race, "▷ Train all five" for five racers."""
    return "▷ Train it" if n == 1 else f"▷ Train all {WORDS[n - 1] if n <= len(WORDS) else n}"


def strategies_html(rows: Sequence[StripRow], summary: Mapping[str, StrategySummary]) -> str:
    """One card per strategy: its formula, what it trains, its trainable parameters and its measured compute.

    Args:
        rows: the strip rows (same numbers as the pills).
        summary: the last race's per-strategy summary (missing strategy: not run yet).
    """
    from tl_engine.models import STRATEGIES  # torch-heavy: see tl_ui.strip.strip_rows

    cards = []
    for r in rows:
        info = STRATEGIES[r.strategy]
        got = summary.get(r.strategy)
        clock = ("run a race to measure" if got is None else
                 f"{got.compute_seconds:.1f} s (training {got.train_seconds:.1f} s + evaluation "
                 f"{got.eval_seconds:.1f} s)")
        if got is not None and got.imagenet_agreement is not None:
            clock += (f"<br><b>ImageNet agreement:</b> {100 * got.imagenet_agreement:.0f} % "
                      f"(± {100 * (got.imagenet_agreement_noise or 0):.0f}) of the probe photos")
        cards.append(
            f'<div class="tl-card" style="border-top-color:{color(r.strategy)}">'
            f'<div class="tl-card-title" style="color:{color(r.strategy)}">{html.escape(label(r.strategy))}</div>'
            f'<div class="tl-formula">{html.escape(getattr(info, "formula", ""))}</div>'
            f"<p>{html.escape(getattr(info, 'blurb', ''))}</p>"
            f"<p><b>trainable:</b> {fmt_params(r.trainable)} of {fmt_params(r.total)} parameters<br>"
            f"<b>compute (training + evaluation):</b> {clock}</p></div>"
        )
    return '<div class="tl-cards">' + "".join(cards) + "</div>"


def guide_panel(cfg: RunConfig, info, stored: Sequence[RaceResult]) -> None:
    """Streamlit: the guide for ``cfg`` with this dataset's measured similarity (if measured) and the store's note.

    Never measures by itself (that takes a core for half a minute): the "What ImageNet sees" panel does, on
    request, and the guide then lights its row.
    """
    import streamlit as st

    from tl_engine.errors import UserError
    from tl_ui.similarity_panel import measured

    try:
        sim = measured(cfg.dataset, cfg.backbone)
    except UserError:
        sim = None
    score = None if sim is None else sim.score
    cell = guide_cell(cfg.train_size, score)
    st.subheader("Which strategy? The textbook, and what was measured here")
    if score is None:
        st.caption("How similar these images are to ImageNet is not measured yet: open **What ImageNet sees in "
                   "these images** above and press Measure; the guide then lights its row.")
    else:
        lo, hi = sim.details.get("score_low"), sim.details.get("score_high")
        band = f" (95 % interval {lo:.2f}–{hi:.2f})" if lo is not None and hi is not None else ""
        near = (f" The interval reaches across {SIMILAR_FROM}: a borderline case."
                if lo is not None and hi is not None and lo < SIMILAR_FROM <= hi else "")
        st.caption(f"Measured similarity to ImageNet: {score:.2f}{band}: {cell[0]} ({SIMILAR_FROM} or more is "
                   f"similar: the boundary between real photos and digits, textures and scans measured here).{near}")
    note = measured_note(stored, cfg.dataset, cfg.backbone, cfg.train_size, cell)
    st.markdown(guide_html(cell, note), unsafe_allow_html=True)
