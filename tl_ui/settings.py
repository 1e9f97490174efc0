"""The page's settings as plain data: parsed from the URL, clamped to the dataset, turned into a RunConfig.

Pure Python (no Streamlit), so every rule about what a query string may contain is unit-testable. Any value
that does not parse or is out of range falls back to the RunConfig default: a bad link never crashes the page.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from tl_engine.config import BACKBONE_NAMES, KNOWN_STRATEGIES, MAX_RACERS, NUM_STAGES, RunConfig
from tl_engine.data.sizes import balanced_max, fitted_size

DEFAULTS = RunConfig()
# Sensible steps, from a couple of images per class to a few hundred.
TRAIN_STEPS = (20, 50, 100, 200, 500, 1000, 2000, 5000)
TEST_STEPS = (200, 500, 1000, 2000)
RESOLUTIONS = (32, 48, 64, 96, 128, 160, 224)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BODY_MULTIPLES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # the body's learning rate as a multiple of the head's
LORA_RANKS = (1, 2, 4, 8, 16, 32)
MAX_EPOCHS = 30
MAX_SEED = 9999

# RunConfig field -> query-parameter name (short, readable links).
URL_NAMES: dict[str, str] = {
    "dataset": "dataset",
    "backbone": "backbone",
    "train_size": "train",
    "test_size": "test",
    "frozen_stages": "k",
    "epochs": "epochs",
    "resolution": "res",
    "lr_head": "lr_head",
    "body_x": "body_x",  # not a RunConfig field: lr_body = body_x * lr_head (see to_config)
    "lr_scratch": "lr_scratch",
    "augment": "augment",
    "seed": "seed",
    "strategies": "racers",
    "lora_rank": "rank",
}
_RUNCONFIG_FIELDS = {f.name for f in fields(RunConfig)}
assert set(URL_NAMES) - {"body_x"} <= _RUNCONFIG_FIELDS


def num_classes(info: Any) -> int:
    """Class count of a DatasetInfo (its ``classes`` is a list of names or a count)."""
    c = info.classes
    return c if isinstance(c, int) else len(c)


def train_options(info: Any) -> list[int]:
    """Training-set sizes the slider offers: steps from one image per class up to all the train split holds,
    plus the largest class-balanced draw (the default) and "all of it". Every one can run (sizes above the
    balanced maximum draw what the smaller classes have: :func:`tl_engine.data.sizes.quotas`)."""
    n, c = info.n_train, num_classes(info)
    extra = {v for v in (balanced_max(info, "train"), n) if v < TRAIN_STEPS[-1]}  # a large set keeps the steps
    return sorted({s for s in TRAIN_STEPS if c <= s <= n} | extra)


def test_options(info: Any) -> list[int]:
    """Test-set sizes the slider offers: class-balanced only (a chance line of 1/classes must stay true)."""
    most, c = balanced_max(info, "test"), num_classes(info)
    return sorted({s for s in TEST_STEPS if c <= s <= most} | ({most} if most < TEST_STEPS[-1] else set()))


def fitted(info: Any, key: str) -> int:
    """The size a dataset starts with (``train_size``, ``val_size`` or ``test_size``): the RunConfig default,
    at least one image per class and at most the largest class-balanced draw."""
    return fitted_size(info, key.split("_")[0], getattr(DEFAULTS, key))


def snap(value: float, options: Sequence[float], log: bool = False) -> Any:
    """The option nearest to ``value`` (on a log scale for learning rates)."""
    if log:
        return min(options, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def parse_racers(raw: str) -> tuple[str, ...]:
    """``racers=frozen,lora``: known names, no repeats, one to MAX_RACERS of them, in the order given."""
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not 1 <= len(names) <= MAX_RACERS or any(n not in KNOWN_STRATEGIES for n in names):
        raise ValueError(raw)
    return names


def _parse(key: str, raw: str, datasets: Sequence[str]) -> Any:
    """One query value, validated; raises ValueError when it is unusable."""
    if key == "strategies":
        return parse_racers(raw)
    if key == "body_x":
        v = float(raw)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(raw)
        return snap(v, BODY_MULTIPLES, log=True)
    if key == "lora_rank":
        v = int(float(raw))
        if v not in LORA_RANKS:
            raise ValueError(raw)
        return v
    if key == "dataset":
        if raw not in datasets:
            raise ValueError(raw)
        return raw
    if key == "backbone":
        if raw not in BACKBONE_NAMES:
            raise ValueError(raw)
        return raw
    if key == "augment":
        return _parse_bool(raw)
    if key.startswith("lr_"):
        v = float(raw)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(raw)
        return snap(v, LEARNING_RATES, log=True)
    v = int(float(raw))  # "20" and "20.0" both work; "abc" raises
    limits = {"frozen_stages": (0, NUM_STAGES), "epochs": (1, MAX_EPOCHS), "seed": (0, MAX_SEED)}
    if key in limits:
        lo, hi = limits[key]
        if not lo <= v <= hi:
            raise ValueError(raw)
        return v
    if key == "resolution":
        return snap(v, RESOLUTIONS)
    if v < 1:
        raise ValueError(raw)
    return v  # train_size / test_size: snapped to the dataset's steps by clamp_to_dataset


def default_settings(datasets: Sequence[Any]) -> dict[str, Any]:
    d = {k: getattr(DEFAULTS, k) for k in URL_NAMES if k != "body_x"}
    d["body_x"] = snap(DEFAULTS.lr_body / DEFAULTS.lr_head, BODY_MULTIPLES, log=True)
    names = [i.name for i in datasets]
    if names and d["dataset"] not in names:
        d["dataset"] = names[0]
    info = next((i for i in datasets if i.name == d["dataset"]), None)
    if info is not None:
        d.update(train_size=fitted(info, "train_size"), test_size=fitted(info, "test_size"))
    return clamp_to_dataset(d, datasets)


def settings_from_query(query: Mapping[str, str], datasets: Sequence[Any]) -> dict[str, Any]:
    """Settings from URL query parameters; each missing or invalid one takes its default."""
    out = default_settings(datasets)
    names = [i.name for i in datasets]
    for key, url in URL_NAMES.items():
        raw = query.get(url)
        if raw is None:
            continue
        with contextlib.suppress(ValueError, OverflowError):  # keep the default: a bad link still opens
            out[key] = _parse(key, str(raw), names)
    if "body_x" not in query and "lr_body" in query:  # a link from before the multiple: keep its meaning
        with contextlib.suppress(ValueError, OverflowError, ZeroDivisionError):
            out["body_x"] = _parse("body_x", str(float(query["lr_body"]) / out["lr_head"]), names)
    return clamp_to_dataset(out, datasets)


def clamp_to_dataset(settings: dict[str, Any], datasets: Sequence[Any]) -> dict[str, Any]:
    """Snap train/test sizes to the steps the chosen dataset can supply."""
    info = next((i for i in datasets if i.name == settings["dataset"]), None)
    if info is None:
        return settings
    out = dict(settings)
    out["train_size"] = snap(out["train_size"], train_options(info))
    out["test_size"] = snap(out["test_size"], test_options(info))
    return out


def to_query(settings: Mapping[str, Any]) -> dict[str, str]:
    """Every setting as a query parameter (all of them, so a link keeps its meaning if defaults change)."""
    out = {}
    for key, url in URL_NAMES.items():
        v = settings[key]
        out[url] = (("1" if v else "0") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float)
                    else ",".join(v) if isinstance(v, (tuple, list)) else str(v))
    return out


def to_config(settings: Mapping[str, Any]) -> RunConfig:
    """The RunConfig of these settings; the body's rate is ``body_x`` times the head's."""
    cfg = {k: v for k, v in settings.items() if k in _RUNCONFIG_FIELDS}
    if "body_x" in settings:
        cfg["lr_body"] = float(f"{settings['body_x'] * settings['lr_head']:.6g}")
    if "strategies" in cfg:
        cfg["strategies"] = tuple(cfg["strategies"]) or DEFAULTS.strategies
    return RunConfig(**cfg)
