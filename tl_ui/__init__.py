"""Streamlit glue for the race page: pure chart functions, the background worker, the page's controls.

Only the modules that render (``controls``, ``teaching``) import streamlit; ``charts``, ``strip`` and
``runner`` are plain Python and plotly, unit-tested without a server.
"""
