"""CPU parallelism over time (CPU-seconds per wall-second, from the OS sampler) against one
core's worth, the machine's cores and the run's mean."""

from __future__ import annotations

import plotly.graph_objects as go

from reports.figures.layout import (
    FigureSpec,
    base_layout,
    marker_decorations,
    reference_line,
    time_axis,
)
from reports.format import fmt_bin
from reports.view import ReportView
from reports.vocabulary import state_colour
from tracer.model.schema import ON_CPU


def parallelism_figure(view: ReportView) -> FigureSpec | None:
    """CPU-seconds per wall-second over time against one core and the machine's cores."""
    model = view.model
    series = model.parallelism
    if series is None or not series.t:
        return None
    span = max(view.span_s, series.t[-1] + series.bin_s)
    xs = [*series.t, series.t[-1] + series.bin_s]
    ys = [*series.values, series.values[-1]]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            name="CPU parallelism",
            mode="lines",
            line={"shape": "hv", "color": state_colour(ON_CPU), "width": 2},
            fill="tozeroy",
            fillcolor="rgba(0,114,178,0.12)",
            hovertemplate="%{y:.2f} cores busy from %{x:.3f} s<extra></extra>",
        )
    )
    reference_line(figure, span, float(model.cores), f"{model.cores} cores (this machine)", "dash")
    reference_line(figure, span, 1.0, "1.0 = one core's worth", "dot")
    mean = model.metrics.parallelism
    if mean is not None:
        reference_line(figure, span, mean, f"run mean {mean:.2f}", "dashdot")
    shapes, notes = marker_decorations(model.markers)
    top = max([float(model.cores), 1.0, *series.values]) * 1.15
    layout = base_layout(f"CPU parallelism over time ({fmt_bin(series.bin_s)} bins)", 340)
    layout.update(
        xaxis=time_axis(span),
        yaxis={"title": {"text": "cores busy (CPU-s per s)"}, "range": [0, top]},
        shapes=shapes,
        annotations=notes,
    )
    figure.update_layout(layout)
    return FigureSpec("fig-parallelism", figure)
