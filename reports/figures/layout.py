"""What every figure shares: the spec html.py finishes a figure from, the base layout, axes,
reference lines, marker decorations, bars, and hover tables.

Every string that comes from user code (thread names, frames, marker names) is HTML-escaped
(:func:`esc`) before it enters a figure, because Plotly renders a subset of HTML in labels and
hover text and shows entities as literal text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from reports.intervals import Segment
from reports.prose import marker_words
from tracer.model.schema import Marker

# Past this many drawn bars in one figure, figures aggregate (dominant state per time bin). Each
# bar costs about 0.07 ms to draw in headless Chromium on 2 cores (benchmarks/report_scale.py:
# 64 threads x 60 s loaded in 3.9 s at 20,000 bars, 2.6 s at 4,000); 6,000 keeps a report under
# 3 s and still gives a few-thread run 1,500 bins per row. trace.json keeps every interval.
SEGMENT_BUDGET = 6_000
# Marker shapes are drawn one shape each; beyond this many they would clutter and slow the plot.
MARKER_LIMIT = 200
# A mark's fields are written next to its name when the whole fits in this many characters.
MARKER_TEXT = 24
# Frames shown in a hover box; the full stack is in trace.json and the raw recordings.
HOVER_FRAMES = 12
# A thread's name on a row (figure tick labels, legends, the thread table) keeps at most this many
# characters: its start and its end, "…" between (names often end in a number that tells them
# apart). One line per row whatever the name: a 56-thread table with 120-character names was
# 8,400 px tall. The full name is in the hover box and the table cell's title.
NAME_CHARS = 48
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Plotly's own dicts (layout, shapes, annotations, hover specs the page's script reads).
PlotlyDict = dict[str, Any]


class NoteTable:
    """Hover lines stored once and referenced by index from each bar: many bars share a few texts
    (the same lock, the same holder), so the page carries each text once."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.texts)
            self.texts.append(text)
        return self._index[text]


@dataclass
class FigureSpec:
    """A figure plus what the page needs to finish it: hover side tables and a note to show."""

    div_id: str
    figure: go.Figure
    labels: list[str] = field(default_factory=list)  # escaped row labels, indexed by bar y
    hover: dict[int, PlotlyDict] = field(default_factory=dict)  # trace index -> hover spec
    note: str = ""
    aggregated: bool = False


def esc(text: object) -> str:
    """Escape user text for Plotly, which would otherwise interpret tags in it."""
    return html.escape(str(text), quote=True)


def shorten(text: str, limit: int = NAME_CHARS) -> str:
    """``text`` in at most ``limit`` characters: its first two thirds and its end around "…"."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    tail = limit - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail > 0 else "")


def stack_hover_table(stacks: Sequence[Sequence[str]]) -> list[str]:
    """Each stack once, escaped, innermost frame first, ready to append to hover text."""
    table = []
    for frames in stacks:
        shown = [esc(frame) for frame in frames[:HOVER_FRAMES]]
        if len(frames) > HOVER_FRAMES:
            shown.append(f"… {len(frames) - HOVER_FRAMES} more frames")
        table.append("<br>".join(shown) if shown else "(no Python frames)")
    return table


def note_spec(notes: Sequence[str]) -> PlotlyDict:
    """Per-bar hover lines as indices into a table of distinct, already escaped texts."""
    table = NoteTable()
    ids = [table.add(note) if note else -1 for note in notes]
    return {"notes": ids, "texts": table.texts}


# Legends sit in the top-right corner of the figure box, clear of the title (top left) and of
# the marker names that are written just above the plot area.
LEGEND: PlotlyDict = {
    "orientation": "h",
    "yref": "container",
    "y": 0.99,
    "yanchor": "top",
    "x": 1.0,
    "xanchor": "right",
    "font": {"size": 11},
}


def base_layout(title: str, height: int) -> PlotlyDict:
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "template": "plotly_white",
        "font": {"family": FONT, "size": 12},
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 80, "b": 50},
        "hoverlabel": {"align": "left", "font": {"family": "ui-monospace, monospace", "size": 11}},
        "legend": LEGEND,
    }


def time_axis(span_s: float, title: str = "time since start (s)") -> PlotlyDict:
    return {
        "title": {"text": title},
        "range": [0, span_s if span_s > 0 else 1e-3],
        "ticksuffix": " s",
        "showgrid": True,
        "zeroline": False,
    }


def row_axis(labels: Sequence[str]) -> PlotlyDict:
    return {
        "tickmode": "array",
        "tickvals": list(range(len(labels))),
        "ticktext": list(labels),
        "autorange": "reversed",
        "automargin": True,
        "showgrid": False,
        "zeroline": False,
    }


def rows_height(rows: int, per_row: int = 28, extra: int = 150) -> int:
    return max(280, min(2400, extra + per_row * rows))


def marker_decorations(markers: Sequence[Marker]) -> tuple[list[PlotlyDict], list[PlotlyDict]]:
    """Phases as shaded bands and marks as dashed vertical lines, each named at the top."""
    shapes: list[PlotlyDict] = []
    notes: list[PlotlyDict] = []
    for index, marker in enumerate(sorted(markers, key=lambda m: m.start)[:MARKER_LIMIT]):
        words = marker_words(marker)  # "iteration i=3": a mark's fields say which one it is
        name = esc(words if len(words) <= MARKER_TEXT else marker.name)
        if marker.kind == "phase" and marker.end is not None:
            shapes.append(_phase_band(marker.start, marker.end))
        else:
            shapes.append(_mark_line(marker.start))
        notes.append(
            {
                "x": marker.start,
                "y": 1.0,
                "xref": "x",
                "yref": "paper",
                "text": name,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "yshift": 14 * (index % 2),  # neighbours alternate height so names stay legible
                "font": {"size": 10, "color": "#444"},
                "bgcolor": "rgba(255,255,255,0.8)",
            }
        )
    return shapes, notes


def _phase_band(start: float, end: float) -> PlotlyDict:
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": start,
        "x1": end,
        "y0": 0,
        "y1": 1,
        "fillcolor": "rgba(120,120,160,0.10)",
        "line": {"width": 1, "color": "rgba(120,120,160,0.5)", "dash": "dot"},
        "layer": "below",
    }


def _mark_line(at: float) -> PlotlyDict:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": at,
        "x1": at,
        "y0": 0,
        "y1": 1,
        "line": {"width": 1.5, "color": "#333", "dash": "dash"},
    }


def bar_trace(
    segments: Sequence[Segment], name: str, colour: str, y: float | None = None
) -> go.Bar:
    """Horizontal bars, one per segment, on their rows (or all on ``y``)."""
    return go.Bar(
        orientation="h",
        name=name,
        y=[s.row if y is None else y for s in segments],
        base=[round(s.start, 7) for s in segments],
        x=[round(s.end - s.start, 7) for s in segments],
        marker={"color": colour, "line": {"width": 0}},
        width=0.8,
        hovertemplate="%{hovertext}<extra></extra>",
    )


def reference_line(figure: go.Figure, span: float, level: float, name: str, dash: str) -> None:
    """A horizontal line across the run, e.g. one core's worth of parallelism."""
    figure.add_trace(
        go.Scatter(
            x=[0, span],
            y=[level, level],
            name=name,
            mode="lines",
            line={"color": "#444", "width": 1.2, "dash": dash},
            hoverinfo="name",
        )
    )
