"""Five racers on a 1280 x 720 projector: when the race is over, every curve is drawn above the fold, the legend
names all five and fits, and the start button ("▷ Train all five") is visible without scrolling. A real Chromium
against `streamlit run`.
"""

from __future__ import annotations

import time

import pytest
from browser_support import RACE_POINTS_JS, ROOT, chromium, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIVE = "frozen,finetune,gradual,lora,pixels"
QUERY = f"/?racers={FIVE}&train=20&test=200&epochs=2&res=32&k=3"
TRAIN5 = "▷ Train all five"

# Each drawn curve's box, the legend's entries and box, and the chart's box (the figure whose y axis is accuracy).
CHART_JS = """() => {
  const box = e => { const b = e.getBoundingClientRect(); return {left: b.left, right: b.right, top: b.top,
                                                                   bottom: b.bottom, height: b.height}; };
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const t = p.layout && p.layout.yaxis && p.layout.yaxis.title && p.layout.yaxis.title.text;
    if (t !== 'test accuracy (%)') continue;
    return {curves: [...p.querySelectorAll('.scatterlayer .trace')].map(box).filter(b => b.height > 0 || b.top > 0),
            legend: [...p.querySelectorAll('.legend .traces')].map(e => e.textContent),
            legend_box: p.querySelector('.legend') ? box(p.querySelector('.legend')) : null, chart: box(p)};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("store"), "streamlit-racers.log") as url:
        yield url


def test_five_racers_stay_legible_at_1280x720(server):
    width, height = 1280, 720
    with chromium(viewport={"width": width, "height": height}) as ctx:
        page = ctx.new_page()
        page.goto(server + QUERY)
        train = page.get_by_role("button", name=TRAIN5)
        train.wait_for(timeout=60_000)
        page.locator(".tl-pill").first.wait_for(timeout=120_000)  # the strip follows the first paint
        wait_idle(page)
        assert page.locator(".tl-row").count() == 5  # one strip row per racer
        train.click()
        deadline, counts = time.time() + 600, None  # generous: a shared CPU can be slow
        while time.time() < deadline:
            counts = page.evaluate(RACE_POINTS_JS)
            if counts == [2] * 5:
                break
            page.wait_for_timeout(500)
        # Measure the finished page, not a moment of the race: the job has ended when the button is enabled
        # again, and the rerun that follows is the layout the class looks at when the race is over.
        while not train.is_enabled() and time.time() < deadline:
            page.wait_for_timeout(250)
        wait_idle(page)
        m = page.evaluate(CHART_JS)
        page.screenshot(path=str(ROOT / "test-output" / "layout-1280-five.png"))
        button = page.get_by_role("button", name=TRAIN5).bounding_box()
        scroll = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTop")
    assert counts == [2] * 5, f"race chart point counts: {counts}"
    assert scroll == 0, "the page scrolled by itself"
    assert m and len(m["curves"]) == 5, f"curves drawn: {m}"
    assert all(c["top"] < height and c["bottom"] > 0 for c in m["curves"]), f"a curve is below the fold: {m}"
    assert [n.strip() for n in m["legend"]] == ["Frozen", "Fine-tune", "Head first", "LoRA", "Pixels"], m["legend"]
    lb = m["legend_box"]
    assert lb and lb["left"] >= m["chart"]["left"] - 1 and lb["right"] <= m["chart"]["right"] + 1, m
    assert button and button["x"] >= 0 and button["x"] + button["width"] <= width and button["y"] + 10 < height
