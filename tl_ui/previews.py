"""Pictures of the data: a labelled mosaic of a dataset, and a captioned row of images (mistakes, a cell).

Pure functions: numpy arrays in, one ``PIL.Image`` out, no Streamlit, so a page can cache them
(``st.cache_data`` keyed by dataset name, per_class, seed and resolution) and a test can check the pixels.
Pixels are enlarged only by whole factors with NEAREST, so a projector shows the real pixels, not a blur.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tl_engine.data import ImageSet
from tl_ui.safe_text import md, one_line

__all__ = ["sample_grid", "image_row", "network_view", "CLASSES_PER_PAGE", "pages"]

GAP = 4  # pixels between thumbnails
LABEL_W = 240  # the class-name column of the mosaic
MIN_CELL = 84  # thumbnails are enlarged (by a whole factor) until at least this wide: readable on a projector
BG, INK, MUTED = (255, 255, 255), (17, 17, 17), (90, 90, 90)
CLASSES_PER_PAGE = 20  # rows of the mosaic per page: 1,000 classes in one image would be a 136 MP "bomb"


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled scalable font: no system fonts needed


def network_view(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 N×H×W[×3] -> uint8 N×R×R×3: the images resized exactly as the race resizes them (needs torch).

    Uses :func:`tl_engine.data.bundled.to_model_input` with mean 0 and std 1, so only the resize is applied.
    """
    from tl_engine.data import to_model_input  # torch only on this path: the plain preview stays torch-free

    x = to_model_input(np.ascontiguousarray(images), resolution, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return (x * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


def _to_pil(img: np.ndarray, factor: int) -> Image.Image:
    pil = Image.fromarray(img).convert("RGB")
    return pil.resize((pil.width * factor, pil.height * factor), Image.NEAREST) if factor > 1 else pil


def _factor(side: int) -> int:
    return max(1, -(-MIN_CELL // max(side, 1)))  # ceil(MIN_CELL / side)


def _pick(y: np.ndarray, rows: range, per_class: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for c in range(rows.stop):  # the draws of earlier pages too: a page shows what the whole grid would
        idx = np.flatnonzero(y == c)
        pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        if c >= rows.start:
            out.append(pick)
    return out


def pages(n_classes: int) -> int:
    """How many pages of :data:`CLASSES_PER_PAGE` rows the mosaic of ``n_classes`` classes has."""
    return max(1, -(-n_classes // CLASSES_PER_PAGE))


def sample_grid(ds: ImageSet, per_class: int = 6, seed: int = 0, resolution: int | None = None,
                page: int = 0) -> Image.Image:
    """A mosaic of training images: one row per class (name and training-image count on the left).

    Args:
        per_class: images per row (fewer when a class has fewer).
        seed: which images are drawn (the same seed always shows the same ones).
        resolution: ``None`` shows the stored images (no torch needed); a number shows them as the network
            sees them, resized to the race resolution the way the race does, then enlarged with NEAREST.
        page: which :data:`CLASSES_PER_PAGE` classes (0 = the first): the image stays a few megapixels
            whatever the class count (see :func:`pages`).
    """
    n_classes = len(ds.info.classes)
    page = min(max(page, 0), pages(n_classes) - 1)
    rows = range(page * CLASSES_PER_PAGE, min((page + 1) * CLASSES_PER_PAGE, n_classes))
    classes = [ds.info.classes[c] for c in rows]
    picks = _pick(np.asarray(ds.train_y), rows, per_class, seed)
    chosen = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    images = ds.train_x[chosen]
    if resolution is not None and len(images):
        images = network_view(images, resolution)
    side = images.shape[1] if len(images) else MIN_CELL
    f = _factor(side)
    cell = side * f
    counts = np.bincount(np.asarray(ds.train_y), minlength=n_classes)[rows.start:rows.stop]
    width = LABEL_W + per_class * (cell + GAP) + GAP
    height = len(classes) * (cell + GAP) + GAP
    canvas = Image.new("RGB", (width, max(height, 1)), BG)
    draw = ImageDraw.Draw(canvas)
    k = 0
    for c, name in enumerate(classes):
        top = GAP + c * (cell + GAP)
        draw.text((8, top + cell // 2 - 14), _fit(draw, name, 26, LABEL_W - 16), fill=INK, font=_font(26),
                  anchor="lm")
        draw.text((8, top + cell // 2 + 16), f"{counts[c]:,} images", fill=MUTED, font=_font(18), anchor="lm")
        for j in range(len(picks[c])):
            canvas.paste(_to_pil(images[k], f), (LABEL_W + GAP + j * (cell + GAP), top))
            k += 1
    return canvas


def mistake_caption(true: str, predicted: str, confidence: float) -> str:
    """A top mistake's caption: the wrong answer, and on its own line the true class (never cut off by the first)."""
    return f"{one_line(predicted)} {confidence:.0%}\n(is {one_line(true)})"  # a name's own newline: one line


def only_classes_note(classes: Sequence[str]) -> str:
    """What "Try your photo" must say first: a network trained on these classes can answer nothing else."""
    shown = ", ".join(md(c) for c in classes[:12]) + (f" and {len(classes) - 12:,} more" if len(classes) > 12 else "")
    return (f"Each trained network can only answer one of its {len(classes):,} classes ({shown}): shown anything "
            "else, it still picks one of them, often very sure. The ImageNet column is the network they all started "
            "from, with its own 1,000 classes: what it sees in the photo.")


def image_row(images: np.ndarray, captions: Sequence[str], per_row: int = 8) -> Image.Image:
    """Images (uint8 N×H×W[×3], e.g. the test images of a confusion cell) in rows, each captioned underneath.

    A caption may have several lines ("\n"); each line longer than the thumbnail is cut with an ellipsis (so put
    what must stay readable on a line of its own). An empty ``images`` gives a small blank image.
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not len(images):
        return Image.new("RGB", (MIN_CELL, MIN_CELL), BG)
    side = images.shape[1]
    f = _factor(side)
    cell = max(side * f, 2 * MIN_CELL)  # captions need room: thumbnails are at least 168 px wide
    f = max(f, cell // side)
    thumb = side * f
    lines = max(c.count("\n") + 1 for c in captions)
    text_h = 8 + 22 * lines
    cols = min(per_row, len(images))
    rows = -(-len(images) // cols)
    canvas = Image.new("RGB", (cols * (cell + GAP) + GAP, rows * (thumb + text_h + GAP) + GAP), BG)
    draw = ImageDraw.Draw(canvas)
    for i, (img, cap) in enumerate(zip(images, captions)):
        x0 = GAP + (i % cols) * (cell + GAP)
        y0 = GAP + (i // cols) * (thumb + text_h + GAP)
        canvas.paste(_to_pil(img, f), (x0 + (cell - thumb) // 2, y0))
        for j, line in enumerate(cap.split("\n")):
            draw.text((x0 + cell // 2, y0 + thumb + 4 + 22 * j), _fit(draw, line, 18, cell), fill=INK, font=_font(18),
                      anchor="ma")
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels at font ``size``."""
    # One line (Pillow refuses to measure a newline), capped; Pillow's bundled font has no arrow glyph.
    text = one_line(text, limit=200).replace("→", "->")
    if draw.textlength(text, font=_font(size)) <= width:
        return text
    while text and draw.textlength(text + "…", font=_font(size)) > width:
        text = text[:-1]
    return text + "…"
