"""Class folders named as markup, in a real Chromium against a real `streamlit run app.py`: Streamlit's markdown
(remark-gfm autolinks, remark-emoji, directives) and Plotly's text renderer both get the names, and neither may
turn one into a link, an image, an emoji or 90 px text (tl_ui/safe_text.py)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from browser_support import OUT, TINY, chromium, start_race, streamlit_server, wait_idle
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAMES = ["line one\nline two", '<span style="font-size:90px">big', "[link](https:x.org)", "![img](x.png)",
         ":smile: face", "www.evil.com", "<a href=x>link"]
# Anything a name could have become: a link to it, an image from it, 90 px text, an emoji.
MARKUP_JS = """() => {
  const bad = [];
  for (const a of document.querySelectorAll('a')) {
    const h = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (/x\\.org|evil\\.com|^x$|\\/x$/.test(h)) bad.push('link ' + h);
  }
  for (const i of document.querySelectorAll('img'))
    if ((i.getAttribute('src') || '').includes('x.png')) bad.push('img');
  for (const e of document.querySelectorAll('body *'))
    if (getComputedStyle(e).fontSize === '90px') bad.push('90px ' + e.tagName);
  if (document.body.innerText.includes('\\u{1F604}')) bad.push('emoji');
  return bad;
}"""


def hostile_zip(path) -> str:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for c, name in enumerate(NAMES):
            for i in range(6):
                px = (rng.integers(0, 40, (32, 32)) + 30 * c).clip(0, 255).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(px).save(out, "PNG")
                zf.writestr(f"{name}/{i}.png", out.getvalue())
    return str(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("store"), "streamlit-names.log") as url:
        yield url


def test_markup_class_names_render_as_text_in_messages_and_charts(server, tmp_path):
    with chromium() as ctx:
        page = ctx.new_page()
        page.goto(server + "/" + TINY)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Use your own images").click()
        sidebar.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            hostile_zip(tmp_path / "<i>names [set](https:x.org).zip"))
        ok = sidebar.locator('[data-testid="stAlertContentSuccess"]').filter(has_text=f"{len(NAMES)} classes")
        ok.first.wait_for(timeout=90_000)
        wait_idle(page)
        text = ok.first.inner_text().replace("\u200b", "")
        for shown in ("line one line two", '<span style="font-size:90px">…', "[link](https:x.org)",
                      "![img](x.png)", ":smile: face", "www.evil.com", "<i>names [set](https:x.org).zip"):
            assert shown in text, (shown, text)  # the names, literally
        page.get_by_text("See the data:").first.click()
        page.locator('[data-testid="stExpander"]').filter(has_text="See the data:").locator("img").first.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.evaluate(MARKUP_JS) == []
        page.screenshot(path=str(OUT / "names-upload.png"), full_page=True)

        start_race(page)
        tab = page.get_by_role("tab", name="Per class", exact=True)
        tab.wait_for(timeout=300_000)  # after the result: the look-inside views are prepared
        tab.click()
        wait_idle(page)
        chart = page.locator('[data-testid="stTabPanel"]:visible .js-plotly-plot, [role="tabpanel"]:visible '
                             '.js-plotly-plot').first
        chart.wait_for()
        ticks = chart.locator(".xtick text").evaluate_all("els => els.map(e => e.textContent)")  # SVG: no innerText
        assert len(ticks) == len(NAMES) and any('<span style="font-size:90px">big' in t for t in ticks), ticks
        assert chart.locator("a").count() == 0
        assert page.evaluate(MARKUP_JS) == []
        chart.screenshot(path=str(OUT / "names-per-class.png"))
        assert page.locator('[data-testid="stException"]').count() == 0
