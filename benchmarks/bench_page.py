"""`make bench` (third part): first paint of the race page in a real browser.

Target (race page issue): first paint under 2 s after the server is up, with warm caches. Starts
`streamlit run app.py` on a free port, then loads the page in Debian's Chromium a few times and measures,
from navigation start, when the title, the "Train all three" button and the architecture strip are
visible. The first load is cold (torch imported, stage table built); the later ones are what a class sees.

    python -m benchmarks.bench_page
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)")
        return 0
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TL_RACE_DATA": tempfile.mkdtemp()}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    loads = []
    try:
        t0 = time.perf_counter()
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.1)
        print(f"server up after {time.perf_counter() - t0:.1f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for i in range(4):
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                t = time.perf_counter()
                page.goto(url)
                page.get_by_text("Transfer learning race").first.wait_for(timeout=60_000)
                title = time.perf_counter() - t
                page.get_by_role("button", name="▷ Train all three").wait_for(timeout=60_000)
                button = time.perf_counter() - t
                page.locator(".tl-strip").first.wait_for(timeout=60_000)
                strip = time.perf_counter() - t
                loads.append({"title": title, "button": button, "strip": strip})
                print(f"load {i + 1} ({'cold' if i == 0 else 'warm'}): title {title:.2f} s, button {button:.2f} s, "
                      f"architecture strip {strip:.2f} s")
                page.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    warm = statistics.median(x["button"] for x in loads[1:])
    ok = warm < 2.0
    print(f"  [{'PASS' if ok else 'FAIL'}] first paint (title + button, warm) under 2 s: median {warm:.2f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "page.json").write_text(json.dumps({"loads": loads, "warm_first_paint": warm, "pass": ok}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
