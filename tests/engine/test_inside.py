"""The look-inside views and "try it": real tiny races with their trained networks, the numbers the views read,
the exported TorchScript file in a fresh interpreter, the previews and the pure figure functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from tests.conftest import ROOT
from tl_engine.config import RunConfig, StrategySummary
from tl_engine.data.imageset import DatasetInfo, ImageSet
from tl_ui import inside_charts as ic
from tl_ui.previews import image_row, network_view, sample_grid

CFG = RunConfig(dataset="fashion-mnist", train_size=20, test_size=30, val_size=10, epochs=1, resolution=32,
                batch_size=8, seed=0, device="cpu", frozen_stages=4)
CHELSEA = ROOT / "assets" / "images" / "chelsea.jpg"


def _run(cfg: RunConfig):
    from tl_engine.training.race import Race

    race = Race(cfg, keep_models=True)
    for _ in race:
        pass
    return race, race.result()


@pytest.fixture(scope="module")
def k4():
    """All three strategies, fine-tune freezing 4 stages, one epoch (each stage that trains takes 3 steps)."""
    return _run(CFG)


@pytest.fixture(scope="module")
def k0():
    """Fine-tune alone with nothing frozen: its stem must learn."""
    from dataclasses import replace

    return _run(replace(CFG, frozen_stages=0, strategies=("finetune",)))


def _spec():
    from tl_engine.models.specs import SPECS

    return SPECS[CFG.backbone]


# ---- the engine's details of a real race ---------------------------------------------------------------------

@pytest.mark.slow
def test_confusion_matrix_agrees_with_accuracy_and_labels(k4):
    race, res = k4
    y = race.data.y_test.numpy()
    for s, summ in res.summary.items():
        cm = np.array(summ.confusion_matrix)
        assert cm.sum() == len(y) == 30
        assert np.trace(cm) / cm.sum() == pytest.approx(summ.final_test_acc, abs=1e-9), s
        assert cm.sum(axis=1).tolist() == np.bincount(y, minlength=len(res.classes)).tolist()  # rows = true class
        assert ic.confusion_caption(cm, res.classes, s).startswith(f"{ic.label(s)}: {np.trace(cm)} of 30 right")


@pytest.mark.slow
def test_delta_theta_is_exactly_zero_for_frozen_stages_only(k4, k0):
    _, res = k4
    d = res.summary
    assert all(v == 0.0 for k, v in d["frozen"].delta_theta.items() if k != "head")
    assert d["frozen"].delta_theta["head"] > 0
    ft = list(d["finetune"].delta_theta.values())
    assert ft[:4] == [0.0] * 4 and all(v > 0 for v in ft[4:])
    assert all(v > 0 for v in d["scratch"].delta_theta.values())
    assert all(v > 0 for v in k0[1].summary["finetune"].delta_theta.values())
    delta = {s: v.delta_theta for s, v in d.items()}
    caption = ic.delta_theta_caption(delta)
    assert "Frozen: Δθ is exactly 0 in all 7 stages; only the head moved" in caption
    assert "Fine-tune: Δθ is exactly 0 in the first 4 stages" in caption
    assert "Scratch: every stage moved" in caption
    fig = ic.delta_theta_figure(delta, frozen_k=4)
    assert [t.name for t in fig.data] == ["Scratch", "Frozen", "Fine-tune"]
    for t in fig.data:  # the "0 (frozen)" label is on exactly the bars that are exactly zero
        assert [txt == "0 (frozen)" for txt in t.text] == [v == 0 for v in t.y]
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x1 == 3.5


@pytest.mark.slow
def test_first_layer_filters_show_what_was_frozen(k4, k0):
    from tl_engine.inspect.views import first_layer_filters
    from tl_engine.models.backbones import build

    race, _ = k4
    imagenet = first_layer_filters(build(CFG.backbone, 10))
    f = {s: first_layer_filters(net) for s, net in race.models.items()}
    assert imagenet.shape == (32, 3, 3, 3) and imagenet.min() == 0 and imagenet.max() == 1
    assert np.array_equal(f["frozen"], imagenet)
    assert np.array_equal(f["finetune"], imagenet)  # k = 4 >= 1: the stem is frozen
    assert not np.array_equal(f["scratch"], imagenet)
    assert not np.array_equal(first_layer_filters(k0[0].models["finetune"]), imagenet)  # k = 0: the stem learned
    caption = ic.filters_caption(f, reference="frozen")
    assert "Fine-tune's are identical" in caption and "Scratch's differ" in caption
    fig = ic.filters_figure(f)
    assert [type(t) for t in fig.data] == [go.Image] * 3
    assert fig.data[0].z.shape == ic.filters_mosaic(f["scratch"]).shape


@pytest.mark.slow
def test_pooled_features_pca_and_separation(k4):
    from tl_engine.inspect.views import feature_separation, pca_2d, pooled_features

    race, res = k4
    feats = {s: pooled_features(net, race.data.x_test, batch=16) for s, net in race.models.items()}
    assert {v.shape for v in feats.values()} == {(30, 1280)}
    # The frozen network's pooled features are what the engine's head sees: its logits follow from them.
    import torch

    head = race.models["frozen"].head
    with torch.no_grad():
        logits = head(torch.from_numpy(feats["frozen"]))
    assert logits.argmax(1).tolist() == res.summary["frozen"].test_pred
    pts = pca_2d(feats)
    y = race.data.y_test.numpy()
    for s, p in pts.items():
        assert p.shape == (30, 2)
        # Independent check (no SVD): the PCA variances are the top eigenvalues of the centred Gram matrix / (n-1).
        c = feats[s].astype(np.float64) - feats[s].mean(axis=0)
        top = np.linalg.eigvalsh(c @ c.T)[::-1][:2] / (len(c) - 1)
        assert p.var(axis=0, ddof=1) == pytest.approx(top, rel=1e-3)
    scores = {s: feature_separation(p, y) for s, p in pts.items()}
    assert all(0 <= v <= 1 for v in scores.values())
    fig = ic.feature_map_figure(pts, y, res.classes, scores)
    assert len(fig.data) == 3 * 10 and sum(t.showlegend for t in fig.data) == 10
    assert sum(len(t.x) for t in fig.data) == 3 * 30
    assert "chance: 10 %" in ic.feature_map_caption(scores, 10)


def test_feature_separation_is_measured():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    far = rng.normal(size=(60, 2)) * 0.1 + np.array([[0, 0], [10, 0], [0, 10]])[y]
    assert feature_separation(far, y) == 1.0
    # Labels unrelated to the points: the score falls to about chance (1/3), it is not a fixed answer.
    mixed = rng.normal(size=(600, 2))
    assert 0.2 < feature_separation(mixed, np.arange(600) % 3) < 0.5
    # Leave-one-out: a class of one point has no centre of its own and counts as wrong.
    assert feature_separation(np.array([[0.0, 0], [0.1, 0], [5, 5]]), [0, 0, 1]) == pytest.approx(2 / 3)


def feature_separation(p, y):
    from tl_engine.inspect.views import feature_separation as fs

    return fs(p, y)


@pytest.mark.slow
def test_predict_matches_the_engine_on_test_images(k4):
    from tl_engine.data.bundled import load_dataset, split_balanced, to_model_input
    from tl_engine.inspect.views import predict

    race, res = k4
    sp = split_balanced(load_dataset(CFG.dataset), CFG.train_size, CFG.test_size, CFG.seed, val_size=CFG.val_size)
    spec = _spec()
    # The raw test images are the ones the race scored (guards this test against a changed split).
    assert np.array_equal(to_model_input(sp.test_x, CFG.resolution, spec.mean, spec.std).numpy(),
                          race.data.x_test.numpy())
    summ = res.summary["finetune"]
    for i in range(10):  # ten images: each predict() is one forward pass of the whole network
        top = predict(race.models["finetune"], Image.fromarray(sp.test_x[i]), CFG.resolution, spec.mean, spec.std,
                      res.classes, k=3, grey=True)
        assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
        assert top[0][0] == res.classes[summ.test_pred[i]]
        assert top[0][1] == pytest.approx(summ.test_conf[i], abs=2e-4)  # test_conf is stored to 4 decimals


@pytest.mark.slow
def test_mistakes_and_confusion_cells_on_a_real_race(k4):
    from tl_engine.inspect.views import as_seen, cell_members, top_mistakes

    race, res = k4
    y = race.data.y_test
    summ = res.summary["scratch"]
    n_wrong = int(30 - np.trace(summ.confusion_matrix))
    mistakes = top_mistakes(summ, y, k=50)
    assert len(mistakes) == n_wrong
    assert all(t != p and summ.test_pred[i] == p for i, t, p, _ in mistakes)
    cells = [cell_members(summ, y, t, p) for t in range(10) for p in range(10)]
    assert [len(c) for c in cells] == np.asarray(summ.confusion_matrix).reshape(-1).tolist()
    seen = as_seen(race.data.x_test[:4], _spec().mean, _spec().std)
    assert seen.shape == (4, 32, 32, 3) and seen.dtype == np.uint8


# ---- export ------------------------------------------------------------------------------------------------

FRESH = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from PIL import Image
    m = torch.jit.load(sys.argv[1])
    probs = m(torch.from_numpy(np.asarray(Image.open(sys.argv[2]).convert("RGB"))))
    print(m.classes[int(probs.argmax())], float(probs.max()))
    assert not any(k.startswith(("tl_engine", "tl_ui")) for k in sys.modules)
    print(json.dumps({"cls": m.classes[int(probs.argmax())], "prob": float(probs.max()), "res": m.resolution,
                      "mean": list(m.mean), "grey": m.grey, "n": len(m.classes)}))
""")


@pytest.mark.slow
def test_exported_model_loads_without_the_project_and_predicts_alike(k4, tmp_path):
    from tl_engine.inspect.export import export_torchscript, load_exported
    from tl_engine.inspect.views import predict

    race, res = k4
    spec = _spec()
    net = race.models["finetune"]
    path = export_torchscript(net, res.classes, CFG.resolution, spec.mean, spec.std, tmp_path / "m.pt", grey=True)
    # A colour, non-square photo: exercises the crop, the grey conversion and the antialiased resize.
    engine = predict(net, Image.open(CHELSEA), CFG.resolution, spec.mean, spec.std, res.classes, k=1, grey=True)[0]
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-I", str(script), str(path), str(CHELSEA)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["cls"] == engine[0]
    assert got["prob"] == pytest.approx(engine[1], abs=1e-4)
    assert (got["res"], got["grey"], got["n"]) == (32, True, 10) and got["mean"] == pytest.approx(list(spec.mean))
    _, meta = load_exported(path)
    assert meta["classes"] == list(res.classes) and meta["std"] == pytest.approx(list(spec.std))


def test_exported_grey_conversion_is_pils():
    import torch

    from tl_engine.inspect.export import _Exported

    rgb = np.random.default_rng(1).integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    w = _Exported(torch.nn.Identity(), ["a"], 7, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), grey=True)
    x = w.preprocess(torch.from_numpy(rgb))  # crops 7×9 to the centre 7×7, no resize (7 == resolution)
    pil = np.asarray(Image.fromarray(rgb).convert("L"))[:, 1:8]
    assert np.array_equal((x[0, 0] * 255).round().byte().numpy(), pil)


# ---- unit checks on hand-made predictions (fast) -----------------------------------------------------------

def _summary(pred, conf, cm=None) -> StrategySummary:
    return StrategySummary(0.5, 0.5, 0.5, 1, 1, 1.0, 1.0, 0.0, 1, confusion_matrix=cm, test_pred=pred, test_conf=conf)


def test_top_mistakes_and_cell_members_order_by_confidence():
    from tl_engine.inspect.views import cell_members, top_mistakes

    y = [0, 0, 1, 1, 2, 2]
    s = _summary([1, 0, 1, 0, 0, 0], [0.6, 0.9, 0.8, 0.95, 0.7, 0.99])
    assert top_mistakes(s, y, k=2) == [(5, 2, 0, 0.99), (3, 1, 0, 0.95)]
    assert [i for i, *_ in top_mistakes(s, y)] == [5, 3, 4, 0]
    assert cell_members(s, y, 2, 0) == [(5, 0.99), (4, 0.7)]
    assert cell_members(s, y, 1, 2) == []
    with pytest.raises(ValueError):
        top_mistakes(_summary(None, None), y)


# ---- figures and captions (fast) ---------------------------------------------------------------------------

CLASSES = ("cat", "dog", "fox")


def test_confusion_figure_cells_are_clickable_points():
    cm = [[5, 1, 0], [3, 2, 0], [0, 0, 4]]
    fig = ic.confusion_figure(cm, CLASSES, "finetune")
    heat, dots = fig.data
    assert isinstance(heat, go.Heatmap) and heat.hoverinfo == "skip"
    assert isinstance(dots, go.Scatter) and len(dots.x) == 9 and dots.marker.opacity == 0
    k = list(zip(dots.y, dots.x)).index(("dog", "cat"))
    assert list(dots.customdata[k]) == [1, 0, 3]
    event = {"selection": {"points": [{"customdata": list(dots.customdata[k]), "x": "cat", "y": "dog"}]}}
    assert ic.cell_from_selection(event) == (1, 0)
    assert ic.cell_from_selection({"selection": {"points": []}}) is None and ic.cell_from_selection(None) is None
    assert ic.confusion_caption(cm, CLASSES, "finetune") == (
        "Fine-tune: 11 of 15 right (73 %); most common mistake: dog taken for cat (3 times).")
    assert ic.confusion_caption(np.diag([2, 2, 2]), CLASSES, "frozen").endswith("no mistakes.")


def test_per_class_and_prediction_views_read_their_numbers():
    per = {"scratch": [0.2, 0.9, 0.5], "frozen": [0.4, 0.8, float("nan")], "finetune": [0.1, 1.0, 0.6]}
    fig = ic.per_class_figure(per, CLASSES)
    assert [t.name for t in fig.data] == ["Scratch", "Frozen", "Fine-tune"]
    assert fig.data[1].y == (40.0, 80.0, None) and fig.data[0].marker.color == ic.color("scratch")
    assert ic.per_class_caption(per, CLASSES) == ("Hardest class: cat (Scratch 20 %, Frozen 40 %, Fine-tune 10 %); "
                                                  "easiest: dog (Scratch 90 %, Frozen 80 %, Fine-tune 100 %).")
    agree = {"scratch": [("dog", 0.4)], "finetune": [("dog", 0.9), ("cat", 0.05)]}
    assert ic.prediction_caption(agree) == "Both say “dog”; Fine-tune is the most sure (90 %)."
    differ = {"scratch": [("cat", 0.5)], "frozen": [("dog", 0.6)]}
    assert ic.prediction_caption(differ).startswith("They disagree: Scratch says “cat” (50 %)")
    table = ic.prediction_table(agree)
    assert isinstance(table.data[0], go.Table)
    assert list(table.data[0].cells.values[1]) == ["dog  40 %", ""]
    assert list(table.data[0].cells.values[2]) == ["dog  90 %", "cat  5 %"]


def test_delta_caption_follows_the_numbers_not_the_story():
    # A made-up result that contradicts the usual story: the caption must say what the numbers say.
    delta = {"frozen": {"stem": 0.01, "s2": 0.0, "head": 0.5}, "finetune": {"stem": 0.0, "s2": 0.0, "head": 0.0}}
    text = ic.delta_theta_caption(delta)
    assert "Frozen: Δθ is exactly 0 in s2; the others moved up to Δθ = 0.01; the head moved by Δθ = 0.50." in text
    assert "Fine-tune: Δθ is exactly 0 in all 2 stages; nothing else moved either." in text
    fig = ic.delta_theta_figure(delta, frozen_k=0)
    assert not fig.layout.shapes and list(fig.data[1].text) == ["0 (frozen)"] * 3


# ---- previews -------------------------------------------------------------------------------------------------

def _tiny_set() -> ImageSet:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 4)
    info = DatasetInfo("tiny", "tiny", "noise", 12, 0, 0, CLASSES, "none", "test")
    return ImageSet(info, x, y, x[:0], y[:0], x[:0], y[:0])


def test_sample_grid_shows_the_real_pixels():
    ds = _tiny_set()
    img = np.asarray(sample_grid(ds, per_class=2, seed=0))
    f = 11  # 8 px enlarged by ceil(84 / 8)
    assert img.shape == (3 * (8 * f + 4) + 4, 240 + 2 * (8 * f + 4) + 4, 3)
    first = np.sort(np.random.default_rng(0).choice(np.arange(4), size=2, replace=False))[0]
    cell = img[4:4 + 8 * f, 244:244 + 8 * f, 0]
    assert np.array_equal(cell[::f, ::f], ds.train_x[first])  # NEAREST: every f-th pixel is an original pixel
    seen = np.asarray(sample_grid(ds, per_class=2, resolution=16))
    view = network_view(ds.train_x[[first]], 16)[0]
    assert np.array_equal(seen[4:4 + 16 * 6:6, 244:244 + 16 * 6:6], view)  # as the network sees it, 16 px x6


def test_sample_grid_needs_no_torch():
    code = ("import sys; from tl_engine.data.bundled import load_dataset; from tl_ui.previews import sample_grid; "
            "im = sample_grid(load_dataset('fashion-mnist')); print(im.size, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"


def test_image_row_captions_every_image():
    ds = _tiny_set()
    row = image_row(ds.train_x[:5], [f"#{i}" for i in range(5)], per_row=3)
    assert row.height > 2 * 168 and row.width == 3 * (168 + 4) + 4
    with pytest.raises(ValueError):
        image_row(ds.train_x[:2], ["one"])


# ---- the click on a confusion cell, end to end (real Streamlit, real Chromium) --------------------------------

CLICK_APP = """
import sys; sys.path.insert(0, {root!r})
import streamlit as st
from tl_ui import inside_charts as ic
fig = ic.confusion_figure([[5, 1, 0], [3, 2, 0], [0, 0, 4]], ("cat", "dog", "fox"), "finetune")
event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="cm")
st.markdown(f"CELL={{ic.cell_from_selection(event)}}")
"""
CELL_CENTRE_JS = """([row, col]) => { const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(col), r.top + ya._offset + ya.l2p(row)]; }"""
HOVERED_JS = """() => ((document.querySelector('.js-plotly-plot')._hoverdata || [])[0] || {}).customdata?.slice(0, 2)"""


@pytest.mark.browser
@pytest.mark.slow
def test_clicking_a_confusion_cell_reaches_python(tmp_path):
    """The mechanism confusion_figure documents: a click on a cell selects its invisible marker, and
    Streamlit's selection event carries (true, pred) back to the script."""
    chromium = "/usr/bin/chromium"
    playwright = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else None
    if not os.path.exists(chromium) and not os.environ.get("CI"):
        pytest.skip(f"{chromium} is missing (Debian package `chromium`)")
    from playwright.sync_api import sync_playwright

    del playwright
    app = tmp_path / "click_app.py"
    app.write_text(CLICK_APP.format(root=str(ROOT)))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
                               "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            for _ in range(60):  # the server needs a few seconds to listen
                try:
                    page.goto(f"http://127.0.0.1:{port}")
                    break
                except Exception:
                    page.wait_for_timeout(1000)
            page.wait_for_selector("text=CELL=None", timeout=90_000)
            page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout", timeout=60_000)
            for _ in range(10):  # the page may still be settling: aim until the hover is on the dog/cat marker
                x, y = page.evaluate(CELL_CENTRE_JS, [1, 0])  # true "dog", predicted "cat"
                page.mouse.move(x, y)  # plotly selects what the pointer hovers
                page.wait_for_timeout(500)
                if page.evaluate(HOVERED_JS) == [1, 0]:
                    break
            assert page.evaluate(HOVERED_JS) == [1, 0]
            page.mouse.click(x, y)
            page.wait_for_selector("text=CELL=(1, 0)", timeout=60_000)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
