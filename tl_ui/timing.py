"""Work a page waits for (e.g. "Measure"), with an estimate measured on this machine and a progress bar.

The estimate is :class:`tl_engine.store.Timings`' (the median seconds per unit of earlier runs here); the first
run on a machine says that it has none yet. The work runs in a plain thread (it never calls ``st.*``) while the
script thread moves the bar: elapsed seconds against the measured estimate, never past 99 % before it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from tl_engine.store import Timings

T = TypeVar("T")
TICK = 0.25  # seconds between two moves of the bar


def button_label(action: str, estimate: float | None) -> str:
    """"Measure (about 27 s on this machine)" from a measured estimate, else says it was never timed here."""
    if estimate is None:
        return f"{action} (not timed on this machine yet)"
    return f"{action} (about {estimate:.0f} s on this machine)" if estimate < 90 else \
        f"{action} (about {estimate / 60:.0f} min on this machine)"


def progress(elapsed: float, estimate: float | None, what: str) -> tuple[float, str]:
    """The bar's fill (0..0.99) and its text after ``elapsed`` seconds."""
    if estimate is None or estimate <= 0:
        return 0.0, f"{what} · {elapsed:.0f} s (the first run on this machine: it gives the next estimate)"
    return min(0.99, elapsed / estimate), f"{what} · {elapsed:.0f} s of about {estimate:.0f} s (measured here)"


def run_timed(fn: Callable[[], T], kind: str, units: float, what: str, record: Callable[[T], bool] = lambda r: True,
              timings: Timings | None = None) -> T:
    """Run ``fn`` in a thread with a progress bar; record its duration under ``kind`` when ``record(result)``
    (e.g. not when it was answered from a cache). Its exception, if any, is raised here."""
    timings = timings or Timings()
    estimate = timings.estimate(kind, units)
    out: dict[str, object] = {}

    def work() -> None:
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001 (handed to the script thread, raised there)
            out["error"] = e

    bar = st.progress(0.0, text=progress(0.0, estimate, what)[1])
    start = timings.clock()
    thread = threading.Thread(target=work, name="tl-timed", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(TICK)
        fill, text = progress(timings.clock() - start, estimate, what)
        bar.progress(fill, text=text)
    seconds = timings.clock() - start
    bar.empty()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    result = out["result"]
    if record(result):  # type: ignore[arg-type]
        timings.record(kind, units, seconds)
    return result  # type: ignore[return-value]
