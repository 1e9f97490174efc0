"""One palette and one set of names for every chart, strip and table (projector-friendly)."""

from __future__ import annotations

# Fixed colours: the same strategy is the same colour everywhere on the page.
COLORS: dict[str, str] = {
    "scratch": "#4a6fa5",  # grey-blue: starts from nothing
    "frozen": "#e07b00",  # orange
    "finetune": "#1f8a4c",  # green
}
LOCKED = "#c9ced6"  # grey for frozen (locked) blocks
LABELS: dict[str, str] = {"scratch": "Scratch", "frozen": "Frozen", "finetune": "Fine-tune"}
# Short names for the select box (the engine's titles are longer and need torch to import).
BACKBONE_LABELS: dict[str, str] = {"mobilenet_v2": "MobileNetV2", "efficientnet_lite0": "EfficientNet-Lite0"}
FONT = dict(size=18, color="#111111")


def label(strategy: str) -> str:
    """Display name of a strategy ("finetune" -> "Fine-tune"); unknown names pass through."""
    return LABELS.get(strategy, strategy)


def color(strategy: str) -> str:
    return COLORS.get(strategy, "#555555")


def fmt_params(n: int) -> str:
    """Parameter counts for humans: 2236682 -> "2.24 M", 12810 -> "12.8 k", 0 -> "0"."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)
