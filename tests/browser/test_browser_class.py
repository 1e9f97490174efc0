"""`make class` for real: Caddy in front of Streamlit, a browser at a made-up host name (not localhost).

Chromium maps ``classroom.test`` to 127.0.0.1 (``--host-resolver-rules``), so the page's origin is not
localhost, exactly as on a student's laptop. Over ``https://`` (Caddy; the certificate error of Caddy's own
authority ignored, as a student does by clicking "Proceed") the camera builder takes its shots; over plain
``http://`` at the same name (Streamlit's own port) the browser gives no camera and the page says why and how
to get one. At the end, SIGINT (Ctrl-C) stops both processes. ``UPDATE_SCREENSHOT=1`` re-takes the README's
picture of the browser's certificate warning.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_support import OUT, ROOT, TINY, chromium, free_port, unavailable, wait_idle
from test_browser_builder import _shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST = "classroom.test"
# Fine-tune's one-marker-per-race trace on the class page's k picture: its point count, or null before it exists.
K_MARKERS_JS = """() => {
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const t = p.layout && p.layout.xaxis && p.layout.xaxis.title && p.layout.xaxis.title.text;
    if (p.data && t === 'frozen stages k') {
      const m = p.data.find(d => d.name === 'Fine-tune: one race each');
      return m ? m.x.length : 0;
    }
  }
  return null;
}"""
RESOLVE = f"--host-resolver-rules=MAP {HOST} 127.0.0.1"
SCREENSHOT = ROOT / "assets" / "screenshot-certificate.png"


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """`scripts/class_server.py` (what `make class` runs) on free ports; Ctrl-C'd afterwards, and checked."""
    import shutil

    if shutil.which("caddy") is None:
        unavailable("caddy is missing (Debian package `caddy`; `make class` installs it)")
    if not Path("/usr/bin/chromium").exists():
        unavailable("/usr/bin/chromium is missing (Debian package `chromium`)")
    port, sport, data = free_port(), free_port(), tmp_path_factory.mktemp("data")
    env = {**os.environ, "TL_RACE_DATA": str(data), "TL_RACE_BACKEND": os.environ.get("TL_RACE_BACKEND", "process")}
    OUT.mkdir(exist_ok=True)
    with open(OUT / "class-server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "scripts/class_server.py", "--port", str(port), "--host", HOST,
                                 "--streamlit-port", str(sport)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            ca = data / "class" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            deadline = time.monotonic() + 180
            while not (data / "class" / "address.json").exists():  # written once both answer
                assert proc.poll() is None, f"class_server exited with {proc.returncode}; see {log.name}"
                assert time.monotonic() < deadline, f"class_server not ready after 180 s; see {log.name}"
                time.sleep(0.5)
            # The certificate is real: it verifies against Caddy's root for the name students use.
            ctx = ssl.create_default_context(cafile=str(ca))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname=HOST) as tls:
                assert ("DNS", HOST) in tls.getpeercert()["subjectAltName"]
            yield {"https": f"https://{HOST}:{port}", "http": f"http://{HOST}:{sport}", "data": data}
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # what Ctrl-C in `make class` does
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = None
    assert code == 0, f"class_server did not stop cleanly on Ctrl-C (exit {code}); see {log.name}"
    assert all(_closed(p) for p in (port, sport)), "Caddy or Streamlit still listening after Ctrl-C"
    assert not (data / "class" / "address.json").exists(), "the About page would still show a stopped class"


def _open_builder(page, url: str) -> None:
    page.goto(url + "/" + TINY)
    page.get_by_text("Build a dataset with your camera").click()
    page.get_by_label("New class").fill("mug")
    page.get_by_role("button", name="Add class").click()
    page.get_by_text("mug · 0 images", exact=True).wait_for()
    wait_idle(page)


def test_https_on_a_network_name_gets_the_camera(front):
    with chromium(camera=True, args=(RESOLVE, "--ignore-certificate-errors")) as ctx:
        page = ctx.new_page()
        _open_builder(page, front["https"])
        assert page.evaluate("window.isSecureContext"), "https://classroom.test should be a secure context"
        assert page.evaluate("location.origin") == front["https"]
        _shoot(page, "mug", 2)  # two shots: the camera streamed and the widget uploaded them through Caddy
        page.get_by_text("mug · 2 images", exact=True).wait_for()
        assert page.get_by_text("No camera here").count() == 0


def test_plain_http_on_a_network_name_says_the_camera_needs_https(front):
    with chromium(camera=True, args=(RESOLVE,)) as ctx:
        page = ctx.new_page()
        _open_builder(page, front["http"])
        assert not page.evaluate("window.isSecureContext")  # the student's situation: no camera for this page
        page.get_by_text("No camera here: this page was opened over plain http").wait_for()
        alert = page.locator('[data-testid="stAlert"]').filter(has_text="No camera here")
        alert.screenshot(path=str(OUT / "class-http-no-camera.png"))
        text = alert.inner_text()
        assert "https" in text and "make class" in text, text
        assert page.locator('[data-testid="stCameraInput"]').count() == 0, "a camera box that can never work"


def test_a_student_sees_the_certificate_warning_once(front):
    """Without the flag, Chromium stops at its warning (Caddy's authority is this machine's, not a public one);
    "Advanced", then "Proceed" opens the app."""
    with chromium(args=(RESOLVE,)) as ctx:
        page = ctx.new_page()
        with pytest.raises(Exception, match="ERR_CERT"):
            page.goto(front["https"] + "/")
        page.get_by_role("button", name="Advanced").click()
        proceed = page.get_by_text(f"Proceed to {HOST} (unsafe)")
        proceed.wait_for()
        if os.environ.get("UPDATE_SCREENSHOT"):
            page.screenshot(path=str(SCREENSHOT), clip={"x": 470, "y": 150, "width": 660, "height": 530})
        proceed.click()
        page.get_by_role("button", name="▷ Train all three").wait_for(timeout=60_000)


def test_class_page_shows_a_race_seconds_after_it_is_stored(front):
    """Through Caddy: the class page draws the stored races, and a race stored meanwhile (as a student's finishing
    race is, by its worker) appears without anyone touching the page."""
    from tests.ui.test_class_page import race, twelve
    from tl_engine.store import ResultStore

    store = ResultStore(front["data"] / "results.sqlite")
    for r in twelve():
        store.put(r)
    with chromium(args=(RESOLVE, "--ignore-certificate-errors")) as ctx:
        page = ctx.new_page()
        page.goto(front["https"] + "/class")
        page.wait_for_function(f"({K_MARKERS_JS})() === 7", timeout=60_000)
        wait_idle(page)
        t0 = time.monotonic()
        store.put(race(k=1))
        page.wait_for_function(f"({K_MARKERS_JS})() === 8", timeout=15_000)
        seconds = time.monotonic() - t0
        print(f"a stored race appeared on the class page after {seconds:.1f} s")
        assert seconds < 10
