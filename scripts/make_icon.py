"""Draw the app's page icon, ``assets/icon.png``: three racing lines in the strategies' colours on a white tile.

Run with ``.venv/bin/python scripts/make_icon.py``. Drawn here, from nothing but Pillow (so it is this project's own
work, under the project's licence). It replaces an emoji or ``:material/...:`` page icon, for which Streamlit's page
asks fonts.gstatic.com: no request may leave the classroom's machine. Deterministic: the same bytes every run.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "icon.png"
COLORS = ("#4a6fa5", "#e07b00", "#1f8a4c")  # scratch, frozen, fine-tune (tl_ui.style.COLORS)
SIZE = 64


def draw(size: int = SIZE) -> Image.Image:
    """Three rising curves (a race of three strategies), ending in dots, on a rounded white tile."""
    scale = 4  # drawn large and shrunk: smooth edges without anti-aliasing support in ImageDraw.line
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 6, fill="#ffffff", outline="#c9ced6", width=scale * 2)
    ends = (0.55, 0.35, 0.18)  # final heights (fraction from the top): scratch lowest, fine-tune highest
    for colour, end in zip(COLORS, ends):
        pts = []
        for i in range(9):
            t = i / 8
            y = 0.82 - (0.82 - end) * (1 - (1 - t) ** 2)  # a learning curve: fast, then flattening
            pts.append((s * (0.14 + 0.66 * t), s * y))
        d.line(pts, fill=colour, width=scale * 5, joint="curve")
        x, y = pts[-1]
        r = scale * 5
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return img.resize((size, size), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    draw().save(OUT, optimize=False)
    print(f"wrote {OUT}")
