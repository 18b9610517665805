"""Renderers: they read only the analysed model (``tracer.model``) and never reach back upstream.

``reports.html.render_report`` writes report.html, ``reports.perfetto.write_trace`` trace.json and
``reports.summary.print_summary`` the terminal summary; ``reports.explain`` holds the numbers and
wording they share.
"""
