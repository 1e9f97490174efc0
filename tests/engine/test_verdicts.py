"""Verdicts at their edges, the figures' bands and status words, and the self-checking guide (no training)."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from tl_engine.config import STRATEGY_NAMES, EpochResult, RaceResult, RunConfig
from tl_engine.experiments.noise import Point, Sample, binomial_se, compare, t95
from tl_engine.experiments.sweep import SweepRun, points
from tl_engine.experiments.verdicts import (
    STATUSES,
    Verdict,
    best_k,
    claim_500_vs_5000,
    compare_curves,
    domain_gains,
    domain_verdict,
    race_verdict,
)
from tl_ui import experiment_charts as charts
from tl_ui.teaching import guide_cell, guide_html, measured_note

CFG = RunConfig(dataset="mnist", train_size=500, test_size=1000, epochs=3, device="cpu")


def pt(x, strategy: str, accs: list[float], n: int = 1000, vals: list[float] | None = None) -> Point:
    return Point(x, strategy, tuple(enumerate(accs)), tuple(enumerate(vals if vals is not None else accs)), n)


# ---- the noise rule --------------------------------------------------------------------------------------------

def test_noise_is_two_binomial_standard_errors_with_one_seed():
    gap = compare(Sample.accuracy({0: 0.9}, 1000), Sample.accuracy({0: 0.85}, 1000), 1000)
    assert gap.noise == pytest.approx(2 * math.sqrt(0.9 * 0.1 / 1000 + 0.85 * 0.15 / 1000))
    assert gap.source == "test" and gap.clear and gap.margin == pytest.approx(0.05)
    assert binomial_se(0.5, 100) == pytest.approx(0.05) and t95(2) == 4.30 and t95(100) == t95(30)


def test_seed_spread_dominates_when_seeds_disagree():
    a = Sample.accuracy({0: 0.95, 1: 0.80, 2: 0.90}, 10_000)
    b = Sample.accuracy({0: 0.85, 1: 0.86, 2: 0.84}, 10_000)
    gap = compare(a, b, 10_000)
    assert gap.source == "seeds" and gap.n_seeds == 3 and not gap.clear  # mean +3.3 points, but one seed lost
    d = [0.10, -0.06, 0.06]
    assert gap.noise == pytest.approx(4.30 * pd.Series(d).std() / math.sqrt(3))


# ---- the race ---------------------------------------------------------------------------------------------------

def test_race_gap_inside_noise_is_inconclusive_and_names_no_winner():
    v = compare_curves({0: {"scratch": [0.5, 0.6, 0.7], "frozen": [0.85, 0.88, 0.884],
                            "finetune": [0.8, 0.87, 0.885]}}, 1000, 3)
    assert v.status == "inconclusive" and "Within noise" in v.sentence and "wins" not in v.sentence
    assert "0.1 points" in v.sentence and "±2.9 points" in v.sentence and "1,000 test images" in v.sentence


def test_race_clear_gap_names_the_winner_with_the_margin():
    v = compare_curves({0: {"scratch": [0.5, 0.6, 0.7], "frozen": [0.8, 0.82, 0.84],
                            "finetune": [0.8, 0.87, 0.90]}}, 1000, 3)
    assert v.status == "supported" and v.numbers["winner"] == "finetune"
    assert v.sentence.startswith("Fine-tune leads after epoch 3 (one seed): 90.0 %")
    assert "6.0 points ahead of Frozen" in v.sentence and "wins" not in v.sentence
    assert v.sentence.endswith("race 3 seeds before calling it a win.")  # one seed: no winner named yet
    assert v.margin == pytest.approx(0.06) and v.noise < v.margin


def test_stopped_race_compares_at_the_last_epoch_all_reached():
    # Fine-tune reached epoch 3 and leads there, but frozen stopped after epoch 2, where frozen led.
    v = compare_curves({0: {"scratch": [0.5, 0.6], "frozen": [0.85, 0.9], "finetune": [0.6, 0.7, 0.99]}}, 1000, 3)
    assert v.numbers["epoch"] == 2 and v.numbers["winner"] == "frozen"
    assert "at epoch 2, the last epoch every strategy reached (the race was stopped)" in v.sentence
    early = compare_curves({0: {"scratch": [0.5], "frozen": []}}, 1000, 3)
    assert early.status == "inconclusive" and "Frozen has not finished an epoch" in early.sentence


def test_race_verdict_reads_race_results_and_uses_seeds():
    def race(seed: int, ft: float, fr: float) -> RaceResult:
        events = [EpochResult(s, e, 1.0, 0.5, 1.0, a, 10, 1.0, e, 100.0) for e in (1, 2, 3)
                  for s, a in (("scratch", 0.5), ("frozen", fr), ("finetune", ft))]
        return RaceResult.build(replace(CFG, seed=seed), "cpu", 1.0, events)

    one = race_verdict(race(0, 0.95, 0.80))
    assert one.status == "supported" and one.noise_source == "test"
    spread = race_verdict([race(0, 0.95, 0.80), race(1, 0.78, 0.81), race(2, 0.90, 0.79)])
    assert spread.status == "inconclusive" and "mean of 3 seeds" in spread.sentence
    assert spread.noise_source == "seeds" and "3 seeds' 95 % interval" in spread.sentence
    agree = race_verdict([race(0, 0.95, 0.80), race(1, 0.94, 0.81), race(2, 0.93, 0.79)])
    assert agree.status == "supported" and agree.sentence.startswith("Fine-tune wins after epoch 3 (mean of 3 seeds)")
    assert "one seed" not in agree.sentence


# ---- the size claim, best k, domain gains ------------------------------------------------------------------------

def test_claim_needs_runs_at_exactly_500_and_5000():
    v = claim_500_vs_5000({"finetune": [pt(500, "finetune", [0.9])], "scratch": [pt(4000, "scratch", [0.6])]})
    assert v.status == "inconclusive" and "needs a run at 5,000 (scratch)" in v.sentence and "4,000" in v.sentence
    assert "500 (fine-tune)" in claim_500_vs_5000({"scratch": [pt(5000, "scratch", [0.6])]}).sentence


@pytest.mark.parametrize("ft, sc, status", [(0.884, 0.883, "inconclusive"), (0.93, 0.86, "supported"),
                                            (0.80, 0.90, "not supported")])
def test_claim_decides_only_outside_noise(ft, sc, status):
    v = claim_500_vs_5000({"finetune": [pt(500, "finetune", [ft])], "scratch": [pt(5000, "scratch", [sc])]})
    assert v.status == status and v.margin == pytest.approx(ft - sc)
    if status != "inconclusive":
        assert f"{100 * abs(ft - sc):.1f} points" in v.sentence and "more than the noise" in v.sentence
    else:
        assert "within noise" in v.sentence


def test_best_k_is_chosen_on_validation_and_checked_on_test():
    clear = best_k([pt(7, "finetune", [0.80]), pt(4, "finetune", [0.90]), pt(0, "finetune", [0.84])])
    assert clear.status == "supported" and clear.numbers["best"] == "k = 4" and clear.numbers["other"] == "k = 0"
    # k = 0 looks best on test, but k = 7 is best on validation: the test set must not choose.
    lost = best_k([pt(7, "finetune", [0.80], vals=[0.95]), pt(0, "finetune", [0.90], vals=[0.85])])
    assert lost.status == "not supported" and lost.numbers["best"] == "k = 7 (= frozen)"
    close = best_k([pt(5, "finetune", [0.86]), pt(4, "finetune", [0.87])])
    assert close.status == "inconclusive" and "within" in close.sentence
    assert best_k([pt(4, "finetune", [0.9], vals=[math.nan]), pt(5, "finetune", [0.8])]).status == "inconclusive"


def test_domain_gain_is_error_reduction_relative_to_scratch_ordered_by_score():
    p = {"scratch": [pt("mnist", "scratch", [0.95, 0.96]), pt("tex", "scratch", [0.6, 0.5])],
         "frozen": [pt("mnist", "frozen", [0.7, 0.76]), pt("tex", "frozen", [0.8, 0.75])],
         "finetune": [pt("mnist", "finetune", [0.96, 0.97]), pt("tex", "finetune", [0.9, 0.9])]}
    gains = domain_gains(p, {"tex": 0.4, "mnist": 0.1})
    ft = [g for g in gains if g.strategy == "finetune"]
    assert [g.dataset for g in ft] == ["tex", "mnist"] and [g.score for g in ft] == [0.4, 0.1]
    assert (ft[0].min, ft[0].max) == (pytest.approx(0.75), pytest.approx(0.8))  # (0.9-0.6)/0.4, (0.9-0.5)/0.5
    assert ft[1].mean == pytest.approx((0.2 + 0.25) / 2)
    assert ft[0].verdict.status == "supported"
    fr_mnist = next(g for g in gains if g.strategy == "frozen" and g.dataset == "mnist")
    assert fr_mnist.mean < 0 and fr_mnist.verdict.status == "not supported"  # more errors than scratch
    unordered = [g.dataset for g in domain_gains(p, {}) if g.strategy == "finetune"]
    assert unordered == ["mnist", "tex"]  # unmeasured: the given order
    assert domain_verdict(gains).status in STATUSES and "not a trend" in domain_verdict(gains).sentence
    assert domain_verdict(domain_gains(p, {"tex": 0.4})).status == "inconclusive"


def test_verdict_status_is_one_of_three():
    with pytest.raises(ValueError):
        Verdict("supported ✓", "")


# ---- figures: mean lines with bands, the status word on the figure ----------------------------------------------

def run(cfg: RunConfig, accs: dict[str, float]) -> SweepRun:
    events = [EpochResult(s, 1, 0.9, 0.5, 1.0, accs[s], 1000, 2.0, 2.0, 80.0, 5000, 1.5, 0.5, 1.0, accs[s])
              for s in cfg.strategies]
    return SweepRun(RaceResult.build(cfg, "cpu", 1.0, events), False)


def test_size_figure_draws_mean_lines_with_min_max_bands_and_the_status():
    runs = [run(replace(CFG, train_size=n, seed=s), dict(zip(STRATEGY_NAMES, (a - s / 100, 0.8, a + 0.05))))
            for n, a in ((500, 0.6), (5000, 0.85)) for s in (0, 1, 2)]
    v = claim_500_vs_5000(points("size", runs))
    fig = charts.size_figure(runs, v).to_dict()
    bands = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert len(bands) == 3
    sc_band = bands[0]
    assert list(sc_band["x"]) == [500, 5000, 5000, 500] and list(sc_band["y"]) == pytest.approx([60, 85, 83, 58])
    line = next(t for t in fig["data"] if t["name"] == "Scratch")
    assert list(line["y"]) == pytest.approx([59.0, 84.0])
    assert f"<b>{v.status}</b>" in fig["layout"]["title"]["text"]
    assert v.status == "not supported"  # fine-tune 500 ≈ 65 % vs scratch 5,000 ≈ 84 %


def test_freeze_figure_has_a_band_and_the_scratch_reference():
    runs = [run(replace(CFG, strategies=("finetune",), frozen_stages=k, seed=s), {"finetune": a + s / 50})
            for k, a in ((7, 0.6), (4, 0.8)) for s in (0, 1)]
    runs += [run(replace(CFG, strategies=("scratch",), frozen_stages=0, seed=s), {"scratch": 0.4}) for s in (0, 1)]
    fig = charts.freeze_figure(runs, best_k(points("freeze", runs)["finetune"])).to_dict()
    bands = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert len(bands) == 2 and list(bands[0]["y"]) == pytest.approx([82, 62, 60, 80])  # k = 4, 7 then back
    assert any(t["name"] == "Scratch (reference)" and list(t["y"]) == [40.0, 40.0] for t in fig["data"])
    assert "<b>" in fig["layout"]["title"]["text"]


def test_domain_figure_bars_are_error_reduction_with_min_max_error_bars():
    p = {"scratch": [pt("mnist", "scratch", [0.9, 0.8])], "frozen": [pt("mnist", "frozen", [0.9, 0.8])],
         "finetune": [pt("mnist", "finetune", [0.95, 0.9])]}
    gains = domain_gains(p, {"mnist": 0.13})
    fig = charts.domain_figure(gains, domain_verdict(gains)).to_dict()
    ft = fig["data"][1]
    assert list(ft["y"]) == [50.0] and list(ft["error_y"]["array"]) == [0.0] and ft["x"][0].endswith("0.13)")
    assert "inconclusive" in fig["layout"]["title"]["text"] and "(" in ft["text"][0]


def test_verdict_box_shows_the_status_word_once():
    v = claim_500_vs_5000({"finetune": [pt(500, "finetune", [0.80])], "scratch": [pt(5000, "scratch", [0.90])]})
    assert charts.verdict_html(v).startswith('<div class="tl-verdict"><b>not supported</b>: fine-tuned on 500')
    race = compare_curves({0: {"scratch": [0.5], "frozen": [0.9]}}, 1000)
    assert charts.verdict_html(race).startswith('<div class="tl-verdict"><b>supported</b>: Frozen leads')


def test_results_table_is_a_dataframe_with_mean_min_max_and_seeds():
    runs = [run(replace(CFG, train_size=500, seed=s), dict(zip(STRATEGY_NAMES, (0.5 + s / 10, 0.7, 0.8))))
            for s in (0, 1)]
    df = charts.results_table("size", runs)
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    row = df[df["strategy"] == "Scratch"].iloc[0]
    assert (row["test accuracy (%)"], row["min (%)"], row["max (%)"], row["seeds"]) == (55.0, 50.0, 60.0, 2)


# ---- the decision guide ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, score, cell", [(500, 0.64, ("similar", "small")), (999, 0.1, ("different", "small")),
                                               (1000, 0.7, ("similar", "between")),
                                               (10_000, 0.63, ("different", "large")), (50, None, (None, "small"))])
def test_guide_cell_uses_total_images_and_the_score_threshold(size, score, cell):
    assert guide_cell(size, score) == cell
    page = guide_html(cell, "a note")
    assert page.count("tl-here") == (0 if cell[0] is None else 1) and "CS231n" in page and "rule of thumb" in page


def stored(strategy_accs: dict[tuple[str, int], list[tuple[float, float]]], train_size: int = 500) -> list:
    """(strategy, k) -> per seed (test, val) accuracies, as stored races of a freeze/size sweep."""
    out = []
    for (s, k), per_seed in strategy_accs.items():
        for seed, (test, val) in enumerate(per_seed):
            cfg = replace(CFG, train_size=train_size, strategies=(s,), frozen_stages=k, seed=seed, epochs=1)
            ev = [EpochResult(s, 1, 1.0, 0.5, 1.0, test, 10, 1.0, 1.0, 100.0, val_acc=val)]
            out.append(RaceResult.build(cfg, "cpu", 1.0, ev))
    return out


def test_measured_note_disagreeing_with_the_textbook():
    results = stored({("finetune", 7): [(0.80, 0.80)] * 3, ("finetune", 4): [(0.835, 0.84), (0.83, 0.83),
                                                                             (0.84, 0.84)],
                      ("scratch", 0): [(0.5, 0.5)] * 3})
    note = measured_note(results, "mnist", "mobilenet_v2", 500, ("similar", "small"))
    assert note == ("The textbook says frozen; on your data fine-tune at k = 4 won by 3.5 points over frozen "
                    "(3 seeds).")


def test_measured_note_agreeing_inconclusive_and_absent():
    results = stored({("frozen", 7): [(0.9, 0.9)], ("finetune", 4): [(0.8, 0.8)], ("scratch", 0): [(0.5, 0.5)]})
    agree = measured_note(results, "mnist", "mobilenet_v2", 500, ("similar", "small"))
    assert agree.endswith("frozen won by 10.0 points over fine-tune at k = 4, as the textbook says (frozen).")
    close = stored({("frozen", 7): [(0.9, 0.9)], ("finetune", 4): [(0.895, 0.89)]})
    note = measured_note(close, "mnist", "mobilenet_v2", 500, ("different", "small"))
    assert ": inconclusive (within noise)" in note and "too close to confirm or contradict the textbook" in note
    assert measured_note(results, "mnist", "mobilenet_v2", 1000, ("similar", "small")) is None  # other size
    assert measured_note(results, "fashion-mnist", "mobilenet_v2", 500, ("similar", "small")) is None
