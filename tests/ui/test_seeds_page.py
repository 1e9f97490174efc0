"""One seed "leads"; "▷ Race 3 seeds" races the next two seeds and then names a winner or says within noise."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from test_pages_helpers import TINY, click, fresh_schedulers, jobs_of, run_until_finished
from test_race_page import APP

from tl_engine.config import RunConfig
from tl_ui import seeds

pytestmark = pytest.mark.slow


@pytest.fixture
def made(monkeypatch):
    yield from fresh_schedulers(monkeypatch)


def test_extra_seed_configs_are_the_same_race_with_the_next_seeds():
    cfg = RunConfig(seed=7)
    assert [c.seed for c in seeds.configs(cfg)] == [8, 9]
    assert all(c == RunConfig(seed=c.seed) for c in seeds.configs(cfg))


def test_race_3_seeds_runs_two_more_and_the_sentence_counts_three(made):
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in TINY.items():
        at.query_params[k] = v
    at.run()
    click(at, "▷ Train all three")
    first = run_until_finished(at, made)
    assert first.status == "done", first.error
    verdicts = [m.value for m in at.markdown if m.value.startswith("<div class=\"tl-verdict\"")]
    assert len(verdicts) == 1 and "(one seed)" in verdicts[0]
    click(at, "▷ Race 3 seeds")
    extra = [j for j in jobs_of(made, "race") if j.id != first.id]
    assert sorted(j.cfg.seed for j in extra) == [first.cfg.seed + 1, first.cfg.seed + 2]
    assert not any(b.label == "▷ Race 3 seeds" for b in at.button)
    assert next(b for b in at.button if b.label == "Stop").disabled is False  # the extra seeds can be stopped
    run_until_finished(at, made)
    assert not at.exception
    verdicts = [m.value for m in at.markdown if m.value.startswith("<div class=\"tl-verdict\"")]
    assert len(verdicts) == 2 and "(mean of 3 seeds)" in verdicts[1], verdicts
    assert "one seed" not in verdicts[1]
    assert next(b for b in at.button if b.label == "▷ Train all three").disabled is False
