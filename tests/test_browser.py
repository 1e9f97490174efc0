"""A real Chromium against a real `streamlit run app.py`: the race chart grows in the browser while training runs.

Marked ``browser``. Skipped (with the reason) when /usr/bin/chromium or playwright is missing, unless the
environment variable CI is set: then it fails, so CI cannot silently lose the check. Uses Debian's chromium;
never Playwright's own browser download (no internet).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A race of a few seconds, so it can be seen growing. `make screenshot` (UPDATE_SCREENSHOT=1) races the
# classroom default instead (500 images, 10 epochs, 96 px: about a minute) for the README's picture.
README_SHOT = bool(os.environ.get("UPDATE_SCREENSHOT"))
EPOCHS = 10 if README_SHOT else 3
QUERY = "" if README_SHOT else f"?train=20&test=200&epochs={EPOCHS}&res=32"
SCREENSHOT = ROOT / "test-output" / "race.png"

# Point counts of the race chart's traces (the figure whose y axis is test accuracy); null before it exists.
RACE_POINTS_JS = """() => {
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const title = p.layout && p.layout.yaxis && p.layout.yaxis.title && p.layout.yaxis.title.text;
    if (p.data && title === 'test accuracy (%)') return p.data.map(t => (t.x || []).length);
  }
  return null;
}"""


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` on a free port; always killed afterwards."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (Debian package `chromium`)")
    port = free_port()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    log = open(SCREENSHOT.parent / "streamlit.log", "w")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "TL_RACE_DATA": str(tmp_path_factory.mktemp("store"))},  # nothing stored: a live race
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start (exit code {proc.poll()})") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def page(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("python package playwright is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1600, "height": 1150})
            yield pg
        finally:
            browser.close()


def test_race_chart_grows_to_the_number_of_epochs(server, page):
    page.goto(server + "/" + QUERY)
    train = page.get_by_role("button", name="▷ Train all three")
    train.wait_for(timeout=30_000)
    train.click()

    seen: list[list[int]] = []
    shot = 0  # 1: some mid-race screenshot; 2: one where every curve has two points already (nicer for README)
    deadline = time.time() + 240
    while time.time() < deadline:
        counts = page.evaluate(RACE_POINTS_JS)
        if counts is not None and (not seen or counts != seen[-1]):
            seen.append(counts)
        if counts and 0 < sum(counts) < 3 * EPOCHS:
            quality = 2 if min(counts) >= (6 if README_SHOT else 2) else 1
            if quality > shot:
                page.screenshot(path=str(SCREENSHOT))
                shot = quality
        if counts == [EPOCHS] * 3:
            break
        time.sleep(0.25)

    assert seen and seen[-1] == [EPOCHS] * 3, f"race chart point counts seen: {seen}"
    totals = [sum(c) for c in seen]
    assert totals == sorted(totals), f"the chart must only grow: {seen}"
    assert len([t for t in totals if 0 < t < 3 * EPOCHS]) >= 1, f"never saw the race mid-way: {seen}"
    assert shot and SCREENSHOT.stat().st_size > 10_000
    page.get_by_text("finished highest").or_(page.get_by_text("tied at")).first.wait_for(timeout=30_000)
    if README_SHOT:
        shutil.copy(SCREENSHOT, ROOT / "assets" / "screenshot-race.png")
