"""The racers on the page: URL settings, the strip's rows for adapters / cut / pixels, counters, charts,
the accuracy-vs-agreement table and the start button's words (pure functions, no server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from tl_engine.config import NUM_STAGES, EpochResult, RunConfig, StrategySummary
from tl_engine.models.backbones import stage_table
from tl_engine.models.strategies import total_params, trainable_params
from tl_ui.charts import race_figure
from tl_ui.counters import counters_html
from tl_ui.forgetting import forgetting_html, forgetting_sentence
from tl_ui.settings import default_settings, settings_from_query, to_config, to_query
from tl_ui.strip import strip_html, strip_rows
from tl_ui.style import COLORS, LOCKED
from tl_ui.teaching import train_label

INFOS = [SimpleNamespace(name="fashion-mnist", domain="clothing", n_train=60000, n_test=10000,
                         classes=list("abcdefghij"))]
FIVE = ("frozen", "finetune", "gradual", "lora", "pixels")


def test_racers_and_knobs_travel_in_the_url():
    s = settings_from_query({"racers": ",".join(FIVE), "body_x": "10", "rank": "8"}, INFOS)
    assert s["strategies"] == FIVE and s["body_x"] == 10.0 and s["lora_rank"] == 8
    assert settings_from_query(to_query(s), INFOS) == s
    cfg = to_config(s)
    assert cfg.strategies == FIVE and cfg.lora_rank == 8 and cfg.lr_body == pytest.approx(10 * cfg.lr_head)
    defaults = default_settings(INFOS)
    for bad in ("frozen,banana", "frozen,finetune,gradual,lora,early,pixels", "", " , "):
        assert settings_from_query({"racers": bad}, INFOS)["strategies"] == defaults["strategies"], bad
    assert settings_from_query({"racers": "lora,lora"}, INFOS)["strategies"] == ("lora",)  # repeats dropped
    assert settings_from_query({"rank": "5"}, INFOS)["lora_rank"] == RunConfig().lora_rank  # not offered
    assert to_config(defaults) == RunConfig()  # the page's default race is the engine's (stored races match)


def test_old_links_keep_their_body_rate():
    s = settings_from_query({"lr_head": "0.003", "lr_body": "0.0003"}, INFOS)
    assert s["body_x"] == 0.1 and to_config(s).lr_body == pytest.approx(3e-4)
    assert settings_from_query({"body_x": "0.03", "lr_body": "0.0003"}, INFOS)["body_x"] == 0.03  # body_x wins


@pytest.fixture(scope="module")
def stages():
    return stage_table("mobilenet_v2", 10)


@pytest.mark.parametrize("k", [0, 4, 7])
def test_strip_rows_for_the_added_racers(stages, k):
    cfg = dataclasses.replace(RunConfig(), frozen_stages=k, early_stage=3, lora_rank=8, resolution=64)
    gradual, lora, early, pixels = strip_rows(stages, k, ("gradual", "lora", "early", "pixels"), cfg)
    assert [b.kind for b in lora.blocks[:NUM_STAGES]] == [""] * k + ["adapter"] * (NUM_STAGES - k)
    assert all(not b.trainable and b.color == LOCKED for b in lora.blocks[:NUM_STAGES])  # base weights locked
    assert lora.trainable == stages[-1].params + 8 * sum(s.lora_unit for s in stages[k:NUM_STAGES])
    assert lora.total == total_params(stages, "lora", cfg)
    assert [b.kind for b in early.blocks[:NUM_STAGES]] == [""] * 3 + ["cut"] * 4
    assert early.blocks[-1].params == early.trainable == (stages[2].out_channels + 1) * 10
    assert len(pixels.blocks) == 1 and pixels.trainable == pixels.total == (3 * 64 * 64 + 1) * 10
    assert [b.color for b in gradual.blocks] == [LOCKED] * k + [COLORS["gradual"]] * (NUM_STAGES + 1 - k)
    html = strip_html([gradual, lora, early, pixels])
    assert html.count("+ adapters") == NUM_STAGES - k and html.count("✂") == 4 and "no network" in html
    for row in (gradual, lora, early, pixels):
        assert row.trainable == trainable_params(stages, row.strategy, k, cfg)


def ev(s: str, epoch: int, acc: float) -> EpochResult:
    return EpochResult(s, epoch, 1.0, acc, 1.0, acc, 100, 1.0, float(epoch), 500.0, 1000, 0.8, 0.2, 1.0, acc)


def test_five_curves_in_fixed_colours_and_counters_say_what_trains():
    events = [ev(s, e, 0.1 * i + 0.05 * e) for e in (1, 2) for i, s in enumerate(FIVE)]
    fig = race_figure(events, "epoch", FIVE, 2, 0.1)
    assert [t.name for t in fig.data] == ["Frozen", "Fine-tune", "Head first", "LoRA", "Pixels"]
    assert len({t.line.color for t in fig.data}) == 5 and fig.data[-1].line.dash == "dash"
    html = counters_html(events, FIVE, epochs=2, k=4)
    assert html.count("head only") == 1  # frozen; LoRA trains adapters, not only the head
    assert "linear classifier on pixels" in html


def summ(acc: float, agree: float | None, noise: float | None = None) -> StrategySummary:
    return StrategySummary(acc, acc, acc, 1, 1, 1.0, 1.0, 0.0, 3, imagenet_agreement=agree,
                           imagenet_agreement_noise=noise)


def test_accuracy_and_agreement_side_by_side():
    s = {"frozen": summ(0.7, 1.0, 0.0), "finetune": summ(0.8, 0.3125, 0.0946), "pixels": summ(0.6, None)}
    html = forgetting_html(s, 10.0)
    assert html.count("<tr>") == 4 and "100 %" in html and "31 %" in html and "–" in html
    sentence = forgetting_sentence(s, 10.0)
    assert sentence.startswith("Fine-tune with its body at 10× the head's learning rate reached 80.0 %")
    assert "31 % of the probe photos (± 9)" in sentence and "(forgetting)" in sentence
    assert "unchanged" in forgetting_sentence({"frozen": summ(0.7, 1.0, 0.0)})
    assert forgetting_sentence({"pixels": summ(0.6, None)}) == ""


def test_train_button_counts_the_racers():
    assert train_label(3) == "▷ Train all three" and train_label(5) == "▷ Train all five"
    assert train_label(1) == "▷ Train it"


def test_the_page_says_which_k_the_stored_freeze_sweep_chose():
    from tl_engine.config import RaceResult
    from tl_ui.chosen_k import chosen_k_note

    base = RunConfig(train_size=500, test_size=1000, epochs=3)

    def run(k: int, seed: int, val: float, kind: str = "freeze") -> RaceResult:
        e = EpochResult("finetune", 1, 0.9, 0.5, 1.0, val, 100, 1.0, 1.0, 80.0, 5000, 1.0, 0.0, 1.0, val)
        r = RaceResult.build(dataclasses.replace(base, frozen_stages=k, seed=seed, strategies=("finetune",),
                                                 epochs=1), "cpu", 1.0, [e])
        return dataclasses.replace(r, extras={"kind": kind})

    stored = [run(k, s, acc + s / 100) for s in (0, 1, 2) for k, acc in ((7, 0.6), (4, 0.9), (0, 0.7))]
    note = chosen_k_note(stored, base)
    assert note is not None and "chose k = 4 on validation" in note and "3 seeds" in note and "supported" in note
    assert "this race uses" not in note  # the page races k = 4 too
    assert "this race uses k = 2" in chosen_k_note(stored, dataclasses.replace(base, frozen_stages=2))
    assert chosen_k_note(stored, dataclasses.replace(base, dataset="mnist")) is None  # another dataset
    assert chosen_k_note([run(4, 0, 0.9, kind="race"), run(0, 0, 0.5, kind="race")], base) is None  # no sweep


def test_every_racer_has_a_cost_for_the_queue_estimate():
    from tl_engine.config import KNOWN_STRATEGIES
    from tl_engine.experiments import run_cost

    costs = {s: run_cost(dataclasses.replace(RunConfig(), strategies=(s,))) for s in KNOWN_STRATEGIES}
    assert costs["frozen"] == costs["pixels"] < costs["lora"] == costs["finetune"] < costs["scratch"]


def test_delta_theta_views_take_racers_with_fewer_stages():
    from tl_ui.inside_charts import delta_theta_caption, delta_theta_figure

    full = {n: 0.0 for n in ("stem", "s2", "s3", "s4")} | {"s5": 0.1, "s6": 0.2, "s7": 0.3, "head": 0.5}
    delta = {"pixels": {"head": 0.7}, "early": {"stem": 0.0, "s2": 0.0, "s3": 0.0, "head": 0.4}, "finetune": full}
    fig = delta_theta_figure(delta, 4)
    assert list(fig.data[0].x) == list(full) and fig.data[0].y[-1] == 0.7 and fig.data[0].y[0] is None
    assert list(fig.data[1].y[:3]) == [0.0, 0.0, 0.0] and fig.data[1].y[4] is None
    text = delta_theta_caption(delta)
    assert "Pixels: no pretrained body; its classifier moved by Δθ = 0.70." in text
    assert "Early layers: Δθ is exactly 0 in all 3 stages" in text


def test_the_page_names_fine_tunes_dip_and_what_head_first_did():
    from tl_ui.forgetting import dip_sentence

    # the race (benchmarks/results/issue18_race_seed0.json): fine-tune 63.4, 64.3, 80.7, 82.9;
    # head first 69.2, 76.1, 73.0, 80.3; on 1,000 test images
    fine = [0.75, 0.60, 0.68, 0.70]  # race.json's seed 0: a 15-point drop at epoch 2
    events = [ev("finetune", i + 1, a) for i, a in enumerate(fine)]
    events += [ev("gradual", i + 1, a) for i, a in enumerate([0.692, 0.761, 0.730, 0.803])]
    text = dip_sentence(events, 1000)
    assert text.startswith("Fine-tune's test accuracy fell from 75.0 % to 60.0 % at epoch 2, more than the noise")
    assert text.endswith("Head first, which trains the head alone first, did not fall by more than the noise.")
    events += [ev("gradual", 5, 0.60)]  # a drop of 20 points at epoch 5
    assert dip_sentence(events, 1000).endswith("fell by 20.3 points at epoch 5 (from 80.3 %).")
    calm = [ev("finetune", i + 1, a) for i, a in enumerate([0.634, 0.643, 0.807, 0.829])]
    assert dip_sentence(calm, 1000) == ""  # no drop at all
    assert dip_sentence([ev("finetune", 1, 0.70), ev("finetune", 2, 0.68)], 1000) == ""  # within noise (±4.1)


def test_the_dip_depth_note_quotes_the_float_order_benchmark():
    """The page's numbers on how a dip's depth moves between 1 and 2 threads are results/float_order.json's."""
    import json

    from tl_ui.forgetting import DIP_BY_THREADS, FINAL_BY_THREADS, dip_depth_note

    d = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "float_order.json").read_text())

    def worst(c: list[float]) -> float:
        return round(100 * max(a - b for a, b in zip(c, c[1:])), 1)

    runs = {(r["seed"], r["threads"]): r["curves"]["finetune"] for r in d["runs"]}
    pairs = [(worst(runs[s, 1]), worst(runs[s, 2])) for s in sorted({s for s, _ in runs})]
    assert max(pairs, key=lambda p: abs(p[0] - p[1])) == DIP_BY_THREADS
    assert max(d["gaps"]["finetune"]["final_gap_points"]) == FINAL_BY_THREADS
    assert d["repeat_identical"]  # the same seed and thread count again: the same curves, bit for bit
    assert "fell 7.2 points on 1 CPU thread and 15.2 on 2" in dip_depth_note()
    assert "within 0.6 points" in dip_depth_note()
