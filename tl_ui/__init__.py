"""Streamlit glue for the race page, kept testable without a server.

- ``charts``: pure Plotly figures and the verdict sentence; ``strip``, ``counters``, ``teaching``: pure HTML.
- ``runner``: the background worker (a daemon thread and a lock-guarded event list).
- ``settings``: URL query values <-> RunConfig, with fallbacks; ``controls``: the sidebar widgets (the only
  module here that imports streamlit).
- ``style``: one palette and one set of names for everything.
- ``experiment_charts``: the figures of the Experiments page.
"""
