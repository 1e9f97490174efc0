"""Pure chart functions, the strip and the counters, from hand-made events (no Streamlit, no training)."""

from __future__ import annotations

import re

import pytest

from tl_engine.config import NUM_STAGES, STRATEGY_NAMES, EpochResult, summarize
from tl_engine.models.backbones import stage_table
from tl_engine.models.strategies import trainable_params
from tl_ui.charts import loss_figure, race_figure, summary_figure
from tl_ui.counters import counters_html
from tl_ui.strip import strip_html, strip_rows
from tl_ui.style import COLORS, LOCKED, fmt_params


def ev(strategy: str, epoch: int, acc: float, secs: float = 2.0) -> EpochResult:
    return EpochResult(strategy=strategy, epoch=epoch, train_loss=2.0 / epoch, train_acc=acc, test_loss=2.5 / epoch,
                       test_acc=acc, trainable_params=1000, seconds=secs, cum_seconds=secs * epoch,
                       images_per_s=500.0 / secs, train_seconds=0.75 * secs, eval_seconds=0.25 * secs)


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
    assert by_secs.layout.xaxis.title.text == "compute seconds (training + evaluation)"
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
    assert "after epoch 3" in fig.layout.annotations[0].text
    stopped = summarize([e for e in EVENTS if not (e.strategy == "finetune" and e.epoch == 3)])
    assert "epochs 3/3/2" in summary_figure(stopped).layout.annotations[0].text  # says they differ


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
    html = counters_html(EVENTS[:4], STRATEGY_NAMES, epochs=3, k=4)
    assert "50.0 %" in html and "epoch 2/3" in html  # scratch's second epoch
    assert "9.0 s training + 3.0 s evaluation" in html  # scratch: 2 epochs of 6 s, split 3:1
    assert "waiting for epoch 1" not in html
    assert html.count("head only") == 1  # frozen's images/s is the head's alone, and says so
    assert counters_html(EVENTS[:4], STRATEGY_NAMES, 3, k=7).count("head only") == 2  # k = 7: fine-tune too
    assert counters_html([], STRATEGY_NAMES, 3, 4).count("waiting for epoch 1") == 3
