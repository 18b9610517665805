"""The locks threads waited longest for, worst first: where waiting time went. Contention (a
lock another thread held) comes first; what threads waited on for a signal (an Event, Condition,
Barrier or queue) follows in its own colour, however long: it is not a lock anyone held."""

from __future__ import annotations

import plotly.graph_objects as go

from reports.figures.layout import FigureSpec, base_layout, esc, row_axis, rows_height
from reports.format import fmt_seconds
from reports.view import ReportView
from reports.vocabulary import state_colour, wait_kind_words
from tracer.model.schema import LOCK_WAIT, SIGNAL_WAIT, LockStats

# Locks in the "worst locks by wait" chart: enough to find the culprit, few enough to read.
TOP_LOCKS = 15


def lock_wait_figure(view: ReportView) -> FigureSpec | None:
    """The locks threads waited longest for, worst first: where waiting time went."""
    locks = view.model.locks
    rows = sorted((row for row in locks if row.wait_s > 0),
                  key=lambda row: (not row.contention, -row.wait_s))[:TOP_LOCKS]
    if not rows:
        return None
    labels = [esc(lock_label(row)) for row in rows]
    waits = [round(row.wait_s, 7) for row in rows]
    figure = go.Figure(
        go.Bar(
            orientation="h",
            name="total wait",
            y=list(range(len(rows))),
            x=waits,
            marker={"color": [state_colour(LOCK_WAIT if row.contention else SIGNAL_WAIT)
                              for row in rows]},
            text=[fmt_seconds(w) for w in waits],
            textposition="auto",
            hovertext=[_lock_hover(row) for row in rows],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    title = "Locks by total time threads waited for them"
    if any(not row.contention for row in rows):
        title += "; then waits for a signal (yellow)"
    if len(locks) > len(rows):
        title += f" (worst {len(rows)})"
    layout = base_layout(title, rows_height(len(rows), 30, 140))
    layout.update(
        showlegend=False,
        xaxis={"title": {"text": "total wait (s)"}, "ticksuffix": " s", "rangemode": "tozero"},
        yaxis=row_axis(labels),
    )
    figure.update_layout(layout)
    return FigureSpec("fig-locks", figure, labels)


def lock_label(row: LockStats) -> str:
    """A lock's name plus where it was made: two locks may share a name, never a site."""
    site = row.site or ""
    path, colon, line = site.rpartition(":")
    if not colon:  # no line number
        path, line = site, ""
    short = path.replace("\\", "/").rsplit("/", 1)[-1] + (f":{line}" if colon else "")
    return f"{row.name} ({short})" if short else row.name


def _lock_hover(row: LockStats) -> str:
    lines = [
        f"<b>{esc(row.name)}</b> ({esc(row.kind)})",
        esc(row.site or "site not recorded"),
        f"{row.contended} of {row.acquisitions} acquisitions waited" if row.contention else
        f"{row.contended} waits for a signal ({esc(wait_kind_words(row.kind))}): not contention",
        f"total wait {fmt_seconds(row.wait_s)}, mean {fmt_seconds(row.mean_wait_s)}",
        f"p95 {fmt_seconds(row.p95_wait_s)}, max {fmt_seconds(row.max_wait_s)}",
        f"held {fmt_seconds(row.hold_s)} in total, longest {fmt_seconds(row.max_hold_s)}",
    ]
    return "<br>".join(lines)
