"""The GIL over the whole run: the share of each bin some thread held it, and the mean number
of threads waiting for it. The detail strip shows turns; this shows the run's phases."""

from __future__ import annotations

import plotly.graph_objects as go

from reports.figures.layout import FigureSpec, base_layout, time_axis
from reports.format import fmt_bin
from reports.intervals import binned_state_seconds, binned_turn_seconds
from reports.view import ReportView
from reports.vocabulary import state_colour
from tracer.model.schema import GIL_WAIT, RUNNING

# Bins of the run-scale GIL overview: enough to see phases, few enough to stay a smooth curve.
OVERVIEW_BINS = 400


def gil_overview_figure(view: ReportView) -> FigureSpec | None:
    """Run-scale GIL utilisation and mean waiters per bin: the shape of the whole run."""
    span = view.span_s
    if not view.gil_recorded or span <= 0:
        return None
    bins = OVERVIEW_BINS
    bin_s = span / bins
    xs = [round((b + 0.5) * bin_s, 7) for b in range(bins)]
    held = binned_turn_seconds(view.gil_turns, bins, span)
    waiting = binned_state_seconds(view.model, GIL_WAIT, bins, span)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=[round(h / bin_s, 4) for h in held],
            name="GIL held (share of time)",
            mode="lines",
            line={"color": state_colour(RUNNING), "width": 2},
            hovertemplate="%{y:.0%} held around %{x:.3f} s<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=[round(w / bin_s, 4) for w in waiting],
            name="mean threads waiting for the GIL",
            mode="lines",
            line={"color": state_colour(GIL_WAIT), "width": 2},
            yaxis="y2",
            hovertemplate="%{y:.2f} waiting around %{x:.3f} s<extra></extra>",
        )
    )
    layout = base_layout(f"GIL over the whole run ({fmt_bin(bin_s)} bins)", 320)
    layout.update(
        xaxis=time_axis(span),
        yaxis={"title": {"text": "GIL held"}, "tickformat": ".0%", "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "waiting threads"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    figure.update_layout(layout)
    return FigureSpec("fig-gil-overview", figure)
