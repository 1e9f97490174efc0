"""Background workers tied to the browser session that started them.

A closed tab stops polling but not a thread, so every race or sweep a session starts is registered
here: Streamlit calls ``on_release`` when the session ends, which sets each worker's stop event.
The engine checks it between batches, so no training thread outlives its audience for long.
(``on_release`` is not guaranteed at server shutdown: the threads are daemons for that case.)
"""

from __future__ import annotations

import threading

import streamlit as st


def _stop_all(stops: list[threading.Event]) -> None:
    for event in stops:
        event.set()


@st.cache_resource(scope="session", on_release=_stop_all, show_spinner=False)
def session_stop_events() -> list[threading.Event]:
    """The stop events of every worker this browser session started."""
    return []


def register(stop_event: threading.Event) -> None:
    """Stop this worker when the session that started it goes away."""
    session_stop_events().append(stop_event)  # a few Event objects per session: nothing to prune
