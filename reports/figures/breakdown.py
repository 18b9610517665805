"""Seconds per state for each thread (or folded group), stacked, so totals and mixes compare at
a glance."""

from __future__ import annotations

import plotly.graph_objects as go

from reports.figures.layout import FigureSpec, base_layout, esc, row_axis, rows_height
from reports.figures.timeline import row_label, row_tick
from reports.threads import ThreadGroup, thread_state_seconds
from reports.view import ReportView
from reports.vocabulary import state_colour, state_name
from tracer.model.schema import STATES


def breakdown_figure(view: ReportView) -> FigureSpec | None:
    """Seconds per state for each thread, stacked, so totals and mixes compare at a glance."""
    rows = view.selection.rows
    if not rows:
        return None
    labels = [esc(row_label(r)) for r in rows]  # the hover's
    ticks = [esc(row_tick(r)) for r in rows]  # one line each, so the height is per row only
    # A group's bar is the mean of its threads: a sum over hundreds of threads would dwarf the
    # single threads beside it. The hover gives the sum too.
    sizes = [len(r.threads) if isinstance(r, ThreadGroup) else 1 for r in rows]
    seconds = [
        r.state_seconds() if isinstance(r, ThreadGroup) else thread_state_seconds(r) for r in rows
    ]
    present = {s for per in seconds for s in per}
    figure = go.Figure()
    for state in [*STATES, *sorted(present - set(STATES))]:
        if state not in present:
            continue
        name = esc(state_name(state))
        values, texts = [], []
        for label, size, per in zip(labels, sizes, seconds, strict=True):
            total = per.get(state, 0.0)
            values.append(round(total / size, 6))
            text = f"{label}<br>{name}: {total / size:.3f} s"
            if size > 1:
                text += f" per thread on average, {total:.3f} s for all {size} together"
            texts.append(text)
        figure.add_trace(
            go.Bar(
                orientation="h",
                name=name,
                y=list(range(len(rows))),
                x=values,
                marker={"color": state_colour(state)},
                hovertext=texts,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    title = "Seconds per state, per thread"
    if any(size > 1 for size in sizes):
        title += " (rows of folded threads: mean per thread)"
    layout = base_layout(title, rows_height(len(rows), 26))
    layout.update(
        barmode="stack",
        xaxis={"title": {"text": "seconds"}, "ticksuffix": " s", "rangemode": "tozero"},
        yaxis=row_axis(ticks),
    )
    figure.update_layout(layout)
    return FigureSpec("fig-breakdown", figure, labels)
