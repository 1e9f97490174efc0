"""A teacher's first hour, in a real Chromium at 1280 x 720 against a real `streamlit run app.py`.

Nothing stuck ("▷ Race it live" runs to its sentence), nothing mixed (a stopped race shows one epoch everywhere),
nothing fetched from the internet (every request goes to 127.0.0.1), and the result bars' titles do not run into
each other. Marked ``browser`` and ``slow``; skipped without Chromium or playwright unless CI is set.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from browser_support import OUT, RACE_POINTS_JS, TRAIN, chromium, start_race, streamlit_server, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 720}
LOCAL = {"127.0.0.1", "localhost"}
RACE = "?train=20&test=200&epochs=2&res=32&seed=11"

# The result bars' subplot titles (Plotly annotations) and the chart's own box.
BAR_TITLES_JS = """() => {
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const ann = (p.layout && p.layout.annotations) || [];
    if (!ann.some(a => (a.text || '').includes('trainable'))) continue;
    const box = e => { const b = e.getBoundingClientRect();
                       return {left: b.left, right: b.right, top: b.top, bottom: b.bottom, text: e.textContent}; };
    return {plot: box(p), titles: [...p.querySelectorAll('g.annotation')].map(box)};
  }
  return null;
}"""

# The x-axis toggle's label: laid-out text width against the room it has (an ellipsis hides the overflow).
TOGGLE_JS = """() => {
  const el = [...document.querySelectorAll('[data-testid="stWidgetLabel"], label')]
    .find(e => e.innerText && e.innerText.trim() === 'x-axis: compute seconds');
  if (!el) return null;
  const range = document.createRange();
  range.selectNodeContents(el);
  return {text: range.getBoundingClientRect().width, room: el.getBoundingClientRect().width,
          scroll: el.scrollWidth, client: el.clientWidth};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("store"), "streamlit-teacher.log") as url:
        yield url


def _outside(urls: list[str]) -> list[str]:
    return [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname not in LOCAL]


def _verdict(page) -> str:
    return page.locator(".tl-verdict").first.inner_text()


def _wait_points(page, want: list[int], timeout: float = 480) -> list[int] | None:
    deadline, counts = time.time() + timeout, None
    while time.time() < deadline:
        counts = page.evaluate(RACE_POINTS_JS)
        if counts == want:
            break
        page.wait_for_timeout(250)
    return counts


def _wait_enabled(page, name: str, timeout: float = 300) -> bool:
    button, deadline = page.get_by_role("button", name=name), time.time() + timeout
    while not button.is_enabled() and time.time() < deadline:
        page.wait_for_timeout(250)
    return button.is_enabled()


def test_no_request_leaves_the_machine_bars_fit_and_race_it_live_runs_to_its_sentence(server):
    urls: list[str] = []
    with chromium(viewport=VIEWPORT) as ctx:
        ctx.on("request", lambda r: urls.append(r.url))
        page = ctx.new_page()
        page.goto(server + "/" + RACE)
        start_race(page)
        _wait_enabled(page, TRAIN)  # the job has ended (its networks saved) and the race is in the store
        wait_idle(page)
        bars, toggle = page.evaluate(BAR_TITLES_JS), page.evaluate(TOGGLE_JS)
        page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].find(
            p => ((p.layout && p.layout.annotations) || []).some(a => (a.text || '').includes('trainable'))
        ).scrollIntoView()""")
        page.screenshot(path=str(OUT / "teacher-result-1280.png"))

        # The same race again, in a new tab: answered from the store; "Race it live" trains it again.
        live = ctx.new_page()
        live.goto(server + "/" + RACE)
        live.get_by_role("button", name=TRAIN).wait_for()
        wait_idle(live)
        live.get_by_role("button", name=TRAIN).click()
        try:
            live.get_by_text("This exact race already ran").wait_for(timeout=60_000)
        except Exception:
            live.screenshot(path=str(OUT / "teacher-not-stored.png"))
            raise
        wait_idle(live)
        live.get_by_role("button", name="▷ Race it live").click()
        # The whole page reran: the race is active, so Stop is enabled and polling has started.
        stop_enabled = _wait_enabled(live, "Stop", 60)
        seen = _wait_points(live, [2, 2, 2])
        live.locator(".tl-verdict").wait_for(timeout=120_000)
        wait_idle(live)
        live.screenshot(path=str(OUT / "teacher-race-live.png"))
        sentence = _verdict(live)
        train_enabled = _wait_enabled(live, TRAIN)  # the job ended: the page reran once and re-enabled it
        reused_note = live.get_by_text("This exact race already ran").count()

    assert not _outside(urls), f"requests left the machine: {sorted(set(_outside(urls)))}"
    assert stop_enabled, "after 'Race it live' the page did not rerun in full (Stop stayed disabled)"
    assert seen == [2, 2, 2], f"'Race it live' never drew its curves: {seen}"
    assert "one seed" in sentence, sentence
    assert train_enabled and reused_note == 0

    assert bars and len(bars["titles"]) == 3, bars
    titles = sorted(bars["titles"], key=lambda b: b["left"])
    for a, b in zip(titles, titles[1:]):
        assert a["right"] <= b["left"], f"result bar titles overlap: {a['text']!r} and {b['text']!r} ({titles})"
    for t in titles:
        assert bars["plot"]["left"] <= t["left"] and t["right"] <= bars["plot"]["right"], f"title cut: {t}"
    assert toggle and toggle["text"] <= toggle["room"] + 1, f"the x-axis toggle's label is cut: {toggle}"


def test_a_stopped_race_shows_one_epoch_everywhere(server):
    urls: list[str] = []
    with chromium(viewport=VIEWPORT) as ctx:
        ctx.on("request", lambda r: urls.append(r.url))
        page = ctx.new_page()
        page.goto(server + "/?train=100&test=200&epochs=12&res=32&seed=12")
        page.get_by_role("button", name=TRAIN).click()
        deadline, counts = time.time() + 480, None
        while time.time() < deadline:  # stop once some strategy has two epochs, long before the end
            counts = page.evaluate(RACE_POINTS_JS)
            if counts and max(counts) >= 2:
                break
            page.wait_for_timeout(200)
        page.get_by_role("button", name="Stop").click()
        page.locator(".tl-verdict").wait_for(timeout=120_000)
        wait_idle(page)
        page.screenshot(path=str(OUT / "teacher-stopped.png"))
        final = page.evaluate(RACE_POINTS_JS)
        cards = page.locator(".tl-counter").all_inner_texts()
        sentence = _verdict(page)
        bars = page.evaluate(BAR_TITLES_JS)
        main = page.locator('[data-testid="stMain"]').inner_text()

    assert final and sum(final) < 36, f"the race was not stopped early: {final}"
    at = min(final)
    assert at >= 1, f"stopped before every strategy had an epoch: {final}"
    assert [int(m) for c in cards for m in re.findall(r"epoch (\d+)/12", c)] == [at] * 3, (cards, final)
    assert f"at epoch {at}," in sentence, sentence
    assert bars and any(t["text"].endswith(f"after epoch {at}") for t in bars["titles"]), bars
    assert f"all at epoch {at}" in main
    assert not _outside(urls), f"requests left the machine: {sorted(set(_outside(urls)))}"


@pytest.mark.parametrize("path", ["", "experiments", "class", "about"])
def test_every_page_loads_without_a_request_leaving_the_machine(server, path):
    urls: list[str] = []
    with chromium(viewport=VIEWPORT) as ctx:
        ctx.on("request", lambda r: urls.append(r.url))
        page = ctx.new_page()
        page.goto(f"{server}/{path}")
        page.locator("h1").first.wait_for()
        wait_idle(page)
        page.wait_for_timeout(1000)  # the favicon and fonts are asked for after the first paint
        icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    assert urls and not _outside(urls), f"requests left the machine: {sorted(set(_outside(urls)))}"
    assert icons and all(urlsplit(h).hostname in LOCAL or h.startswith("data:") for h in icons), icons
