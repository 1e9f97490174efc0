"""What the pages share, kept testable without a server where it can be.

Pure (no Streamlit): ``charts``, ``experiment_charts``, ``inside_charts`` (events or results in, Plotly figures
out), ``strip``, ``counters`` (HTML), ``previews`` (image mosaics), ``settings`` (URL <-> RunConfig), ``style``
(colours and number formats), ``keys`` (session-state key names).
Streamlit code: ``jobs`` (the server's scheduler and what each tab watches), ``controls`` (sidebar),
``upload`` and ``builder`` (your own images), ``race_live`` (the live fragment), ``inside_panel`` (data preview
and look-inside views), ``teaching`` (its ``guide_panel``; the rest of it is pure HTML).
"""
