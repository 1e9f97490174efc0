"""Measured durations on this machine, so that a page's "about N s" is a measurement, not a guess.

Each kind of work has its own unit: ``similarity:<backbone>`` counts images through the ImageNet network,
``race`` counts :func:`tl_engine.experiments.sweep.run_cost` units (images × trained share × epochs). A
measurement is (units, seconds); the estimate for new work is its units times the median seconds per unit of
the last :data:`KEEP` measurements of that kind (the median: one run slowed by a busy machine does not swing it).
The file (``timings.json`` beside the results store) is small and written atomically; a damaged or missing
file means "not measured yet", never an error. A fresh machine has no estimate until it has measured one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from .files import write_json_atomic

__all__ = ["KEEP", "Timings", "timings_path"]

KEEP = 20  # measurements kept per kind
_LOCK = threading.Lock()  # one process's threads (a server's sessions) never interleave a read-modify-write


def timings_path() -> Path:
    from .results import default_path

    return default_path().parent / "timings.json"


class Timings:
    """Seconds per unit of work, per kind, measured here. ``clock`` is injectable (tests use a fake one)."""

    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path) if path is not None else timings_path()
        self.clock = clock

    @classmethod
    def beside(cls, store_path: str | Path) -> Timings:
        """The timings file next to a results store (its folder is the machine's data folder)."""
        return cls(Path(store_path).parent / "timings.json")

    def _read(self) -> dict[str, list[list[float]]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: [m for m in v if _valid(m)] for k, v in data.items() if isinstance(v, list)}

    def record(self, kind: str, units: float, seconds: float) -> None:
        """Keep one measurement (ignored when it cannot give a rate: no units, or no time)."""
        if not _valid([units, seconds]):
            return
        with _LOCK:
            data = self._read()
            data[kind] = (data.get(kind, []) + [[float(units), float(seconds)]])[-KEEP:]
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self.path, data)
            except OSError:  # a read-only data folder: the estimate stays unmeasured, the work is not lost
                pass

    def rate(self, kind: str) -> float | None:
        """Median seconds per unit of ``kind`` measured here, or None before the first measurement."""
        runs = self._read().get(kind, [])
        return median(s / u for u, s in runs) if runs else None

    def estimate(self, kind: str, units: float) -> float | None:
        """Seconds ``units`` of ``kind`` should take here, from the measurements (None: not measured yet)."""
        r = self.rate(kind)
        return None if r is None else r * units

    def count(self, kind: str) -> int:
        return len(self._read().get(kind, []))

    @contextmanager
    def timed(self, kind: str, units: float) -> Iterator[None]:
        """Measure the block and record it (only when it finishes without an exception)."""
        start = self.clock()
        yield
        self.record(kind, units, self.clock() - start)


def _valid(m: object) -> bool:
    return (isinstance(m, list) and len(m) == 2 and all(isinstance(v, int | float) for v in m)
            and m[0] > 0 and m[1] > 0)
