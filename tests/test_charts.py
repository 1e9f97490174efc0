"""Pure chart functions, the strip and the teaching panel, from hand-made events (no Streamlit, no training)."""

from __future__ import annotations

import re

import pytest

from tl_engine.backbones import stage_table
from tl_engine.config import NUM_STAGES, STRATEGY_NAMES, EpochResult, summarize
from tl_engine.strategies import trainable_params
from tl_ui.charts import loss_figure, race_figure, summary_figure, verdict
from tl_ui.counters import counters_html
from tl_ui.strip import strip_html, strip_rows
from tl_ui.style import COLORS, LOCKED, fmt_params
from tl_ui.teaching import guide_cell, guide_html


def ev(strategy: str, epoch: int, acc: float, secs: float = 2.0) -> EpochResult:
    return EpochResult(strategy=strategy, epoch=epoch, train_loss=2.0 / epoch, train_acc=acc, test_loss=2.5 / epoch,
                       test_acc=acc, trainable_params=1000, seconds=secs, cum_seconds=secs * epoch,
                       images_per_s=500.0 / secs)


def race_events(accs: dict[str, list[float]], secs: dict[str, float]) -> list[EpochResult]:
    """Round-robin like the engine: scratch e1, frozen e1, finetune e1, scratch e2, ..."""
    n = max(len(v) for v in accs.values())
    return [ev(s, i + 1, accs[s][i], secs[s]) for i in range(n) for s in accs if i < len(accs[s])]


SECS = {"scratch": 6.0, "frozen": 1.0, "finetune": 3.0}
EVENTS = race_events({"scratch": [0.3, 0.5, 0.6], "frozen": [0.7, 0.75, 0.8], "finetune": [0.6, 0.8, 0.9]}, SECS)


def test_race_figure_has_one_trace_per_strategy_with_its_points():
    fig = race_figure(EVENTS, epochs=3)
    assert [t.name for t in fig.data] == ["Scratch", "Frozen", "Fine-tune"]
    assert [t.line.color for t in fig.data] == [COLORS[s] for s in STRATEGY_NAMES]
    for trace, s in zip(fig.data, STRATEGY_NAMES):
        mine = [e for e in EVENTS if e.strategy == s]
        assert list(trace.x) == [e.epoch for e in mine]
        assert list(trace.y) == pytest.approx([100 * e.test_acc for e in mine])
    assert fig.layout.uirevision == "race"


def test_race_figure_x_switches_to_cumulative_compute_seconds():
    by_epoch, by_secs = race_figure(EVENTS, x="epoch"), race_figure(EVENTS, x="seconds")
    assert list(by_epoch.data[0].x) == [1, 2, 3]
    assert list(by_secs.data[0].x) == [6.0, 12.0, 18.0]  # scratch: 6 s per epoch
    assert list(by_secs.data[1].x) == [1.0, 2.0, 3.0]
    assert by_secs.layout.xaxis.title.text == "compute seconds"
    for fig in (race_figure, loss_figure):
        with pytest.raises(ValueError):
            fig([], x="minutes")


def test_race_figure_keeps_three_traces_while_the_race_is_young():
    fig = race_figure(EVENTS[:1])  # only scratch epoch 1 so far
    assert len(fig.data) == 3
    assert [len(t.x) for t in fig.data] == [1, 0, 0]


def test_loss_figure_has_train_and_test_loss_per_strategy():
    fig = loss_figure(EVENTS)
    assert len(fig.data) == 6
    train, test = fig.data[4], fig.data[5]  # fine-tune
    assert train.name == "Fine-tune train" and test.line.dash == "dash"
    assert list(test.y) == pytest.approx([2.5, 1.25, 2.5 / 3])
    assert list(loss_figure(EVENTS, x="seconds").data[5].x) == [3.0, 6.0, 9.0]  # fine-tune: 3 s per epoch


def test_summary_figure_bars_match_the_summary():
    summary = summarize(EVENTS)
    fig = summary_figure(summary)
    acc, params, secs = fig.data
    assert list(acc.y) == pytest.approx([60.0, 80.0, 90.0])
    assert list(secs.y) == pytest.approx([18.0, 3.0, 9.0])
    assert list(params.marker.color) == [COLORS[s] for s in STRATEGY_NAMES]
    assert list(acc.text) == ["60.0 %", "80.0 %", "90.0 %"]


def summary_of(accs: dict[str, float], secs: dict[str, float]) -> dict[str, dict]:
    return summarize([ev(s, 1, a, secs[s]) for s, a in accs.items()])


def test_verdict_reads_the_usual_ordering():
    text = verdict(summarize(EVENTS))
    assert text == ("Fine-tune finished highest at 90.0 %, 10.0 points above Frozen, at 3.0x its compute cost; "
                    "Scratch trailed at 60.0 %.")


def test_verdict_when_scratch_wins_cheaper_and_when_costs_match():
    text = verdict(summary_of({"scratch": 0.912, "frozen": 0.5, "finetune": 0.871}, {"scratch": 1.0, "frozen": 1.0,
                                                                                      "finetune": 4.0}))
    assert text.startswith("Scratch finished highest at 91.2 %, 4.1 points above Fine-tune, with 4.0x less compute")
    assert text.endswith("Frozen trailed at 50.0 %.")
    same = verdict(summary_of({"scratch": 0.4, "frozen": 0.7, "finetune": 0.65}, {s: 2.0 for s in SECS}))
    assert "Frozen finished highest at 70.0 %, 5.0 points above Fine-tune, at about the same compute cost" in same


@pytest.mark.parametrize("order", [("scratch", "frozen", "finetune"), ("finetune", "scratch", "frozen"),
                                   ("frozen", "finetune", "scratch")])
def test_verdict_numbers_follow_every_ordering(order):
    accs = dict(zip(order, (0.83, 0.71, 0.42)))
    text = verdict(summary_of(accs, SECS))
    names = {"scratch": "Scratch", "frozen": "Frozen", "finetune": "Fine-tune"}
    first, second, third = (names[s] for s in order)
    assert text.startswith(f"{first} finished highest at 83.0 %, 12.0 points above {second}")
    ratio = SECS[order[0]] / SECS[order[1]]
    expected = f"{ratio:.1f}x its compute cost" if ratio > 1 else f"{1 / ratio:.1f}x less compute"
    assert expected in text
    assert text.endswith(f"{third} trailed at 42.0 %.")


def test_verdict_ties_name_the_cheaper_strategy():
    two = verdict(summary_of({"scratch": 0.5, "frozen": 0.8, "finetune": 0.8004}, SECS))
    assert two == "Frozen and Fine-tune tied at 80.0 %, but Frozen needed 3.0x less compute than Fine-tune; " \
                  "Scratch trailed at 50.0 %."
    three = verdict(summary_of({s: 0.6 for s in SECS}, {s: 1.0 for s in SECS}))
    assert three == "All three tied at 60.0 % at about the same compute cost."
    assert verdict(summary_of({"frozen": 0.7}, SECS)) == "Frozen reached 70.0 %."
    assert verdict({}) == "No results yet."


@pytest.fixture(scope="module")
def stages():
    return stage_table("mobilenet_v2", 10)


@pytest.mark.parametrize("k", range(NUM_STAGES + 1))
def test_strip_colours_follow_k(stages, k):
    scratch, frozen, finetune = strip_rows(stages, k)
    assert [b.color for b in finetune.blocks] == [LOCKED] * k + [COLORS["finetune"]] * (len(stages) - k)
    assert [b.trainable for b in frozen.blocks] == [False] * NUM_STAGES + [True]  # only the head learns
    assert all(b.color == COLORS["scratch"] for b in scratch.blocks) and not scratch.pretrained
    assert [b.params for b in finetune.blocks] == [s.params for s in stages]


@pytest.mark.parametrize("k", [0, 4, 7])
def test_pills_equal_trainable_params(stages, k):
    for row in strip_rows(stages, k):
        expected = trainable_params(stages, row.strategy, k)
        assert row.trainable == expected
        assert row.pill == f"trainable: {fmt_params(expected)} of {fmt_params(sum(s.params for s in stages))}"
    html = strip_html(strip_rows(stages, k))
    assert html.count('class="tl-blk off') == k + NUM_STAGES  # fine-tune's k plus frozen's 7 locked blocks
    assert html.count("trainable: ") == 3


def test_strip_html_changes_with_k(stages):
    pills = [re.findall(r"trainable: [^<]+", strip_html(strip_rows(stages, k)))[2] for k in (2, 6)]
    assert pills[0] != pills[1]


def test_fmt_params():
    assert [fmt_params(n) for n in (2_236_682, 12_810, 999)] == ["2.24 M", "12.8 k", "999"]


def test_counters_show_latest_epoch_per_strategy():
    html = counters_html(EVENTS[:4], STRATEGY_NAMES, epochs=3)
    assert "50.0 %" in html and "epoch 2/3" in html  # scratch's second epoch
    assert "waiting for epoch 1" not in html
    assert counters_html([], STRATEGY_NAMES, 3).count("waiting for epoch 1") == 3


@pytest.mark.parametrize(("per_class", "sim", "cell"), [(5, "high", ("high", "small")), (500, "low", ("low", "large")),
                                                      (100, "medium", ("medium", "large"))])
def test_decision_guide_highlights_the_current_cell(per_class, sim, cell):
    assert guide_cell(per_class, sim) == cell
    html = guide_html(cell)
    assert html.count("tl-here") == 1
    row = html.split(f"<th>{cell[0]}</th>")[1].split("</tr>")[0]
    cells = row.split("<td")[1:]
    assert "tl-here" in cells[0 if cell[1] == "small" else 1]


def test_decision_guide_highlights_nothing_for_unknown_similarity():
    assert guide_cell(30, "unknown") == (None, "small")
    assert "tl-here" not in guide_html(guide_cell(30, "unknown"))
