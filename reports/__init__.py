"""Renderers: they read only the analysed model (``tracer.model``) and never reach back upstream.

``reports.view.build_view`` turns the model into the view every renderer reads (thread order and
folding, run numbers, shared series), once per render. ``reports.html.render_report`` writes
report.html (its figures in ``reports.figures``), ``reports.perfetto.write_trace`` trace.json and
``reports.summary.print_summary`` the terminal summary; ``reports.prose`` says the sentences,
``reports.vocabulary`` the words and colours, ``reports.format`` the numbers.
"""
