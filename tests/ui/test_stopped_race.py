"""A stopped race shows one epoch everywhere: the sentence, the counters and the bars (pure functions)."""

from __future__ import annotations

import re

import pytest
from test_charts import SECS, race_events

from tl_engine.config import STRATEGY_NAMES, summarize
from tl_engine.experiments import compare_curves, curves_from_events
from tl_ui.charts import summary_figure
from tl_ui.counters import at_epoch, common_epoch, counters_html, inside_note, stopped_note

# Stopped mid-epoch 3: scratch and frozen finished it, fine-tune did not. Frozen's epoch 3 is its best.
STOPPED = race_events({"scratch": [0.3, 0.5, 0.6], "frozen": [0.7, 0.75, 0.9], "finetune": [0.6, 0.8]}, SECS)


def test_common_epoch_is_the_last_epoch_every_strategy_reached():
    assert common_epoch(STOPPED, STRATEGY_NAMES) == 2
    assert common_epoch(STOPPED[:2], STRATEGY_NAMES) == 0  # fine-tune has no epoch yet
    assert common_epoch([], STRATEGY_NAMES) == 0
    assert [e.epoch for e in at_epoch(STOPPED, 2)] == [1, 1, 1, 2, 2, 2]


def test_sentence_counters_and_bars_agree_on_one_epoch():
    shown = at_epoch(STOPPED, common_epoch(STOPPED, STRATEGY_NAMES))
    verdict = compare_curves({0: curves_from_events(STOPPED)}, test_size=10_000, planned_epochs=3)
    assert verdict.numbers["epoch"] == 2
    assert verdict.numbers["winner_acc"] == pytest.approx(0.8)  # fine-tune at epoch 2 (frozen 75 %)

    fig = summary_figure(summarize(shown))
    acc, _params, secs = fig.data
    assert list(acc.y) == pytest.approx([50.0, 75.0, 80.0])  # not frozen's 90 % of epoch 3
    assert list(secs.y) == pytest.approx([12.0, 2.0, 6.0])  # compute up to epoch 2 only
    assert fig.layout.annotations[0].text.endswith("after epoch 2")

    cards = counters_html(shown, STRATEGY_NAMES, epochs=3, k=4)
    assert re.findall(r"epoch (\d)/3", cards) == ["2", "2", "2"]
    assert "90.0 %" not in cards
    # Unfiltered, the cards would mix epochs: the check above can fail.
    assert re.findall(r"epoch (\d)/3", counters_html(STOPPED, STRATEGY_NAMES, 3, 4)) == ["3", "3", "2"]


def test_stopped_notes_name_the_epochs():
    note = stopped_note(STOPPED, STRATEGY_NAMES)
    assert "at epoch 2" in note and "Scratch reached epoch 3; Frozen reached epoch 3" in note
    even = at_epoch(STOPPED, 2)
    assert "only the curves" not in stopped_note(even, STRATEGY_NAMES)
    assert inside_note(STOPPED, STRATEGY_NAMES).endswith(
        "(Scratch after epoch 3, Frozen after epoch 3, Fine-tune after epoch 2).")
