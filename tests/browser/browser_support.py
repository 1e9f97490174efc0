"""Shared pieces of the browser tests: a real `streamlit run app.py` and Debian's Chromium driven by Playwright.

Not a conftest: the browser test modules import what they need (``from browser_support import ...``; tests/
is on pytest's pythonpath). The server fixture is module-scoped, so each test module starts its own server
with a private results store (TL_RACE_DATA) and the real default backend (worker processes).

Chromium or playwright missing: the test is skipped with the reason, unless the environment variable CI is
set: then it fails, so CI cannot silently lose the check. Never Playwright's own browser download.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Chromium's fake camera: a moving test pattern, so two shots taken a moment apart differ.
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
TINY = "?train=20&test=200&epochs=2&res=32"  # seconds of training; 200 is the fewest test images offered
TRAIN = "▷ Train all three"

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


@contextmanager
def streamlit_server(store: Path, log_name: str) -> Iterator[str]:
    """`streamlit run app.py` on a free port with an empty results store in ``store``; always killed afterwards."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (Debian package `chromium`)")
    port = free_port()
    OUT.mkdir(exist_ok=True)
    env = {**os.environ, "TL_RACE_DATA": str(store), "TL_RACE_BACKEND": os.environ.get("TL_RACE_BACKEND", "process")}
    with open(OUT / log_name, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"streamlit did not start (exit code {proc.poll()}); see {log.name}") \
                            from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextmanager
def chromium(camera: bool = False, args: tuple[str, ...] = (), **context_kw) -> Iterator:
    """A Playwright browser context on Debian's Chromium (with the fake camera when asked, plus ``args``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("python package playwright is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=CHROMIUM_ARGS + (CAMERA_ARGS if camera else []) + list(args))
        try:
            ctx = browser.new_context(**{"viewport": {"width": 1600, "height": 1150}, **context_kw})
            if camera:
                ctx.grant_permissions(["camera"])
            ctx.set_default_timeout(30_000)
            yield ctx
        finally:
            browser.close()


def wait_idle(page, timeout: float = 60) -> None:
    """Until Streamlit's script run has finished (its status widget gone) and the page has settled."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout * 1000)


def start_race(page, timeout: float = 480) -> None:
    train = page.get_by_role("button", name=TRAIN)
    train.wait_for()
    train.click()
    wait_result(page, timeout)


def wait_result(page, timeout: float = 480) -> None:
    """Until the race's result is shown; on a timeout, a screenshot and the page's text say what it showed."""
    try:
        page.get_by_text("finished highest").or_(page.get_by_text("tied at")).or_(
            page.get_by_text("Result", exact=True)).first.wait_for(timeout=timeout * 1000)
    except Exception as e:
        page.screenshot(path=str(OUT / "no-result.png"))
        main = page.locator('[data-testid="stMain"]').inner_text()[:1500]
        shot = OUT / "no-result.png"
        raise AssertionError(f"no race result after {timeout:.0f} s ({shot}); the page said:\n{main}") from e
    wait_idle(page)
