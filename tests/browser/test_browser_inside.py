"""Show the images and what each model learned, in a real Chromium against a real `streamlit run app.py`.

One browser tab (with Chromium's fake camera) goes through the race page in order: the sample grid before the
race, one tiny race, every look-inside tab, a click on a confusion cell, the exported model downloaded and
checked in a fresh Python against the app's own prediction, and a photo from the camera. The tests share that
tab (a race is what makes the rest possible), so they run in file order.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from browser_support import OUT, TINY, chromium, start_race, streamlit_server, wait_idle
from PIL import Image

from tl_ui.previews import GAP, LABEL_W, MIN_CELL

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_CLASSES, TEST_SIZE = 10, 200  # Fashion-MNIST, the default dataset; TINY races it with 200 test images

# The figure (its .data and layout) whose y axis has this title, or whose first trace has this type.
FIGURE_JS = """([title, type]) => {
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const t = p.layout && p.layout.yaxis && p.layout.yaxis.title && p.layout.yaxis.title.text;
    if ((title && t === title) || (type && p.data && p.data[0] && p.data[0].type === type)) {
      const b = p.getBoundingClientRect();
      const plain = (k, v) => ArrayBuffer.isView(v) ? Array.from(v) : v;  // typed arrays -> lists
      return {data: JSON.parse(JSON.stringify(p.data, plain)), width: b.width, height: b.height};
    }
  }
  return null;
}"""
CELL_CENTRE_JS = """([row, col]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout.yaxis?.title?.text === 'true class');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(col), r.top + ya._offset + ya.l2p(row)];
}"""
HOVERED_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout.yaxis?.title?.text === 'true class');
  return ((gd._hoverdata || [])[0] || {}).customdata?.slice(0, 2);
}"""
HAS_TABLE_JS = "() => [...document.querySelectorAll('.js-plotly-plot')].some(p => p.data[0].type === 'table')"

# Run in a fresh Python with only torch, numpy and PIL: the exported file's own promise (see tl_engine.inspect.export).
FRESH = """
import json, sys
import numpy as np, torch
from PIL import Image
m = torch.jit.load(sys.argv[1])
probs = m(torch.from_numpy(np.asarray(Image.open(sys.argv[2]).convert("RGB")).copy()))
i = int(probs.argmax())
print(json.dumps({"top": m.classes[i], "p": float(probs[i]), "project": any(k.startswith("tl_") for k in sys.modules)}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("store"), "streamlit-inside.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    with chromium(camera=True) as ctx:
        pg = ctx.new_page()
        pg.goto(server + "/" + TINY)
        pg.get_by_role("button", name="▷ Train all three").wait_for()
        wait_idle(pg)
        yield pg


def _array(v) -> np.ndarray:
    """A figure array as the browser holds it: a list, or Plotly's packed form {dtype, bdata, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v.get("shape", len(a))).split(",")])
    return np.asarray(v)


def _figure(page, title: str | None = None, type_: str | None = None) -> dict | None:
    return page.evaluate(FIGURE_JS, [title, type_])


def _open_tab(page, name: str):
    page.get_by_role("tab", name=name, exact=True).click()
    wait_idle(page)
    tabs = page.locator('[data-testid="stTabs"]').filter(has=page.get_by_role("tab", name="Take it home"))
    panel = tabs.locator('[data-testid="stTabPanel"]:visible, [role="tabpanel"]:visible').first
    panel.screenshot(path=str(OUT / f"inside-{name.split()[0].lower()}.png"))
    return panel


def _fetch_image(page, img) -> Image.Image:
    src = img.get_attribute("src")
    url = page.url.split("/?")[0] + src if src.startswith("/") else src
    return Image.open(io.BytesIO(page.request.get(url).body()))


def test_sample_grid_shows_images_of_every_class_before_the_race(page):
    page.get_by_text("See the data:").click()
    box = page.locator('[data-testid="stExpander"]').filter(has_text="See the data:")
    img = box.locator('[data-testid="stImage"] img, [data-testid="stImageContainer"] img').first
    img.wait_for()
    box.screenshot(path=str(OUT / "inside-grid.png"))
    assert f"each of the {N_CLASSES} classes" in box.inner_text()
    grid = np.asarray(_fetch_image(page, img).convert("L"), dtype=float)
    cell = MIN_CELL  # 28 px Fashion-MNIST images, enlarged 3x
    assert grid.shape[0] == N_CLASSES * (cell + GAP) + GAP, grid.shape
    for c in range(N_CLASSES):  # every row: six thumbnails, none blank
        top = GAP + c * (cell + GAP)
        for j in range(6):
            left = LABEL_W + GAP + j * (cell + GAP)
            assert grid[top:top + cell, left:left + cell].std() > 5, f"class row {c}, image {j} is blank"

    before = img.get_attribute("src")
    page.get_by_text("As the network sees them").click()  # 32 px: a different picture of the same images
    seen = box.locator(f'img:not([src="{before}"])').first
    seen.wait_for()
    box.screenshot(path=str(OUT / "inside-grid-net.png"))
    net = np.asarray(_fetch_image(page, seen).convert("L"), dtype=float)
    assert net.shape[0] == N_CLASSES * (96 + GAP) + GAP, "32 px images enlarged 3x: 96 px rows"


def test_after_a_tiny_race_every_look_inside_view_renders(page):
    start_race(page)
    page.get_by_text("Look inside").first.wait_for()

    _open_tab(page, "Confusion")
    cm = _figure(page, title="true class")
    assert cm and cm["height"] > 200
    z = _array(cm["data"][0]["z"])
    assert z.shape == (N_CLASSES, N_CLASSES) and z.sum() == TEST_SIZE, "one count per test image"

    _open_tab(page, "Per class")
    assert _per_class_bars(page), "no figure with three bar traces of one bar per class"

    panel = _open_tab(page, "Top mistakes")
    shown = panel.locator("img").count()
    assert shown >= 1 or panel.get_by_text("no mistakes").count() == 3, "no mistakes and no images"

    _open_tab(page, "Δθ per stage")
    dt = _figure(page, title="Δθ: ||θ − θ0|| / ||θ0||")
    assert dt and len(dt["data"]) == 3 and dt["width"] > 200

    panel = _open_tab(page, "First-layer filters")
    plots = panel.locator(".js-plotly-plot")
    assert plots.count() == 1 and plots.bounding_box()["height"] > 100
    assert "not on this server" not in panel.inner_text()

    _open_tab(page, "Feature map")
    fm = _figure(page, title="PCA 2")
    assert fm and sum(len(t.get("x") or []) for t in fm["data"]) > 0 and fm["height"] > 200


def _per_class_bars(page) -> bool:
    """The per-class figure: bar traces, one bar per class (its y axis title is shared with the race chart)."""
    return page.evaluate("""(n) => [...document.querySelectorAll('.js-plotly-plot')].some(p =>
        p.data.length === 3 && p.data.every(t => t.type === 'bar' && (t.x || []).length === n))""", N_CLASSES)


def test_clicking_a_confusion_cell_shows_that_cells_images(page):
    _open_tab(page, "Confusion")
    z = _array(_figure(page, title="true class")["data"][0]["z"]).astype(int)
    t, p = max(((i, j) for i in range(N_CLASSES) for j in range(N_CLASSES)), key=lambda ij: z[ij])
    for _ in range(10):  # aim until the hover is on that cell's invisible marker
        x, y = page.evaluate(CELL_CENTRE_JS, [t, p])
        page.mouse.move(x, y)
        page.wait_for_timeout(400)
        if page.evaluate(HOVERED_JS) == [t, p]:
            break
    page.mouse.click(x, y)
    head = page.get_by_text("image(s) shown, most confident first")
    head.wait_for()
    wait_idle(page)
    assert f"{min(int(z[t, p]), 24)} image(s) shown" in head.inner_text()
    row = _open_tab(page, "Confusion").locator("img").last
    assert row.bounding_box()["height"] > 50, "the cell's images are not shown"


def test_exported_model_reproduces_the_apps_prediction_in_a_fresh_python(page, tmp_path):
    panel = _open_tab(page, "Take it home")
    with page.expect_download() as dl:
        panel.get_by_role("button", name="Fine-tune model (.pt)").click()
    model = tmp_path / "finetune.pt"
    dl.value.save_as(model)

    photo = tmp_path / "photo.png"  # a fixed, non-square colour picture: crop, resize and grey all matter
    yy, xx = np.mgrid[0:90, 0:120]
    Image.fromarray(np.stack([xx * 2, yy * 2, (xx + yy) % 256], -1).astype(np.uint8)).save(photo)
    panel = _open_tab(page, "Try your photo")
    panel.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
    page.wait_for_function(HAS_TABLE_JS)
    wait_idle(page)
    _open_tab(page, "Try your photo")
    table = _figure(page, type_="table")["data"][0]
    app_class, app_p = table["meta"]["predictions"]["finetune"][0]
    shown = table["cells"]["values"][list(table["header"]["values"]).index("Fine-tune")][0]
    assert shown.startswith(app_class) and shown.endswith(f"{100 * app_p:.0f} %"), (shown, app_class, app_p)

    run = subprocess.run([sys.executable, "-c", FRESH, str(model), str(photo)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    fresh = json.loads(run.stdout.strip().splitlines()[-1])
    assert not fresh["project"], "the fresh Python imported the project"
    assert fresh["top"] == app_class and abs(fresh["p"] - app_p) < 1e-4, (fresh, app_class, app_p)


def test_a_photo_from_the_camera_gets_predictions(page):
    panel = _open_tab(page, "Try your photo")
    panel.locator('[data-testid="stFileChipDeleteBtn"]').first.click()
    page.wait_for_function(f"() => !({HAS_TABLE_JS})()")  # no photo, no predictions
    panel = _open_tab(page, "Try your photo")
    panel.get_by_role("button", name="Take Photo").click()
    page.wait_for_function(HAS_TABLE_JS)
    wait_idle(page)
    _open_tab(page, "Try your photo")
    table = _figure(page, type_="table")["data"][0]
    preds = table["meta"]["predictions"]
    # The three trained networks, and beside them ImageNet's own network with its 1,000 classes.
    assert set(preds) == {"scratch", "frozen", "finetune", "imagenet"}, preds
    assert all(len(v) == 3 for v in preds.values()), preds
    from tl_engine.inspect.similarity import imagenet_categories

    assert {c for c, _ in preds["imagenet"]} <= set(imagenet_categories()), preds  # ImageNet's own labels
