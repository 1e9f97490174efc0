"""One palette for every chart, strip and table (projector-friendly). Names come from the engine's tables.

Strategy and backbone names a person reads are defined once, in :mod:`tl_engine.models.strategies` and
:mod:`tl_engine.models.specs` (both importable without torch); this module only adds colours and number formats.
"""

from __future__ import annotations

from pathlib import Path

from tl_engine.models import SPECS, label

__all__ = ["COLORS", "DASH", "LOCKED", "FONT", "ICON", "label", "color", "backbone_label", "fmt_params",
           "plural"]

# Fixed colours: the same strategy is the same colour everywhere on the page.
COLORS: dict[str, str] = {
    "scratch": "#4a6fa5",  # grey-blue: starts from nothing
    "frozen": "#e07b00",  # orange
    "finetune": "#1f8a4c",  # green
    "gradual": "#7b3fb0",  # purple: fine-tune's recipe, head first
    "lora": "#d6336c",  # raspberry
    "early": "#00838f",  # teal
    "pixels": "#3d3d3d",  # near-black, dashed in charts: the baseline
}
DASH: dict[str, str] = {"pixels": "dash"}  # line style per strategy in the curve charts (default solid)
LOCKED = "#c9ced6"  # grey for frozen (locked) blocks
FONT = dict(size=18, color="#111111")
# The page icon: a bundled file (scripts/make_icon.py). An emoji or ":material/...:" icon makes the browser fetch
# it from fonts.gstatic.com, and no request may leave the classroom's machine.
ICON = str(Path(__file__).resolve().parent.parent / "assets" / "icon.png")


def color(strategy: str) -> str:
    return COLORS.get(strategy, "#555555")


def backbone_label(name: str) -> str:
    """Short display name of a backbone ("mobilenet_v2" -> "MobileNetV2")."""
    return SPECS[name].label if name in SPECS else name


def plural(n: float, word: str, many: str | None = None) -> str:
    """A count and its noun, agreeing: "1 epoch", "2 epochs", "1,000 images", "1 class" / "3 classes" (``many``).

    ``n`` is rounded to a whole number first (say "≈ 1 image" for 1.4 images per class)."""
    n = round(n)
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def fmt_params(n: int) -> str:
    """Parameter counts for humans: 2236682 -> "2.24 M", 12810 -> "12.8 k", 0 -> "0"."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)
