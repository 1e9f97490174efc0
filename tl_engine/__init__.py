"""The Transfer Learning Race engine: plain Python and PyTorch, no Streamlit, no Plotly.

The subpackages are layers; a module imports only from its own layer or the ones listed before it (a test
reads :data:`LAYERS` and checks every import, lazy ones included). Each subpackage's ``__init__`` names its
public surface; other layers import through it (``from ..models import SPECS``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

# Bottom to top. The contracts (config.py: RunConfig and the race result; errors.py: UserError) sit under
# everything; cli/ (and __main__.py) on top.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "errors"),
    ("models",),       # specs, strategies, backbones
    ("store",),        # results store, atomic files
    ("data",),         # bundled sets, user folders / zips / npz, uploads
    ("training",),     # checks, torch helpers, one strategy's life, the race
    ("inspect",),      # similarity, look-inside numbers, export
    ("experiments",),  # sweeps, noise, verdicts
    ("jobs",),         # job state, backends, worker, Ray, scheduler
    ("cli", "__main__"),
)


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` (PEP 562) that imports ``exports[name]`` from ``package`` on first use.

    Why lazy: the race page paints before torch is imported (seconds on a fresh server), so
    ``from tl_engine.models import SPECS`` must not import ``models.backbones`` (torch) on the way.
    """

    def __getattr__(name: str) -> object:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
