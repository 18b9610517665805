"""Who held the GIL when, and how many threads queued for it, opened on a ~100 ms window.

The strip is one row of bars (one colour per holder) above the waiters curve; a CPU-bound run has
a turn every 5 ms, so past ``GIL_STRIP_BUDGET`` turns only a stretch around the opening window is
drawn turn by turn and the rest shows the main holder per bin.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import plotly.graph_objects as go

from reports.figures.layout import (
    SEGMENT_BUDGET,
    FigureSpec,
    PlotlyDict,
    bar_trace,
    base_layout,
    esc,
    time_axis,
)
from reports.figures.timeline import row_tick
from reports.format import fmt_bin
from reports.intervals import Segment, binned_state_seconds, dominant_per_bin
from reports.threads import thread_label
from reports.view import ReportView
from reports.vocabulary import state_colour
from tracer.model.schema import GIL_WAIT, RunModel

# Bars in the GIL strip. It is one row, opened on a 100 ms window, so it needs far fewer bars
# than the timeline; each costs drawing time (measured in headless Chromium: 6,000 bars 0.6 s)
# however little of the run is in view.
GIL_STRIP_BUDGET = 3_000
# The GIL detail window: 100 ms holds ~20 hand-offs at the default 5 ms switch interval, each a
# visible block.
DETAIL_WINDOW_S = 0.1
# Colour-blind-safe qualitative palette (Paul Tol's "muted") for one colour per GIL holder.
HOLDER_COLOURS = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#6699CC",
)
# Past len(HOLDER_COLOURS) GIL holders, colours would repeat and the legend would run off the
# figure (and each Plotly trace costs layout time: 513 holders took 1.3 s to draw, one trace
# 0.3 s). The busiest holders keep a colour each; the rest share one grey trace, and the hover
# still names each bar's thread.
OTHER_HOLDERS_COLOUR = "#BBBBBB"


def gil_detail_figure(view: ReportView, budget: int = GIL_STRIP_BUDGET) -> FigureSpec | None:
    """Who held the GIL when, and how many threads queued for it, in a ~100 ms window."""
    if not view.gil_recorded:
        return None
    span, every_turn = view.span_s, view.gil_turns
    xs = list(view.gil_waiters.times)
    ys: list[float] = [float(y) for y in view.gil_waiters.counts]
    opening = _window_start(every_turn, xs, ys)
    turns, note = strip_turns(every_turn, span, opening, budget)
    figure = go.Figure()
    hover = _holder_traces(figure, view, turns)
    # The waiters curve is one SVG path however many points it has, so it keeps the timeline's
    # resolution rather than the strip's.
    if len(xs) > 2 * SEGMENT_BUDGET:
        xs, ys, note = _binned_waiters(view.model, span, SEGMENT_BUDGET, note)
    if xs:
        figure.add_trace(_waiters_trace(xs, ys, span))
    _gil_detail_layout(figure, span, opening, max(ys, default=0))
    labels = [esc(thread_label(t)) for t in view.threads]
    return FigureSpec("fig-gil-detail", figure, labels, hover, note, bool(note))


def _holder_traces(figure: go.Figure, view: ReportView,
                   turns: Sequence[Segment]) -> dict[int, PlotlyDict]:
    """A bar trace per coloured holder, then one for the rest; their hover specs by index."""
    hover: dict[int, PlotlyDict] = {}
    coloured, others = holder_rows(view.gil_turns)
    for index, row in enumerate(coloured):
        mine = [t for t in turns if t.row == row]
        label = esc(thread_label(view.threads[row]))
        hover[len(figure.data)] = {
            "state": "holds the GIL",
            "label": label,
            "stacks": [t.stack for t in mine],
        }
        # The legend names the holder in one line; the hover box has the full label.
        legend = esc(row_tick(view.threads[row]))
        figure.add_trace(bar_trace(mine, legend, HOLDER_COLOURS[index], y=0))
    if others:
        mine = [t for t in turns if t.row in others]
        hover[len(figure.data)] = {
            "state": "holds the GIL",
            "rows": [t.row for t in mine],  # the bars sit on the strip, not on a thread's row
            "stacks": [t.stack for t in mine],
        }
        figure.add_trace(bar_trace(mine, f"{len(others)} other threads", OTHER_HOLDERS_COLOUR, 0))
    return hover


def strip_turns(
    turns: Sequence[Segment], span: float, opening: float, budget: int
) -> tuple[list[Segment], str]:
    """The GIL strip's bars: every turn when they fit in ``budget``; otherwise every turn in a
    stretch around where the view opens (so the 100 ms window shows each turn as recorded) and,
    elsewhere, the main holder per time bin, with a note saying which is which."""
    if len(turns) <= budget:
        return list(turns), ""
    exact = budget // 2
    starts = [t.start for t in turns]
    # A tenth of the exact stretch before the opening window, the rest after it.
    first = max(0, min(bisect_left(starts, opening) - exact // 10, len(turns) - exact))
    region = list(turns[first : first + exact])
    begin, finish = region[0].start, region[-1].end
    bins = budget - exact
    bin_s = span / bins if span > 0 else 1.0
    binned: list[Segment] = []
    for part, low, high in ((turns[:first], 0.0, begin), (turns[first + exact :], finish, span)):
        pieces = ((t.start, t.end, t.key) for t in part)
        for start, end, key in dominant_per_bin(pieces, bin_s, bins):
            start, end = max(start, low), min(end, high)
            if end > start:
                binned.append(Segment(int(key), start, end, key))
    note = (
        f"More GIL turns than the page can draw: every turn is drawn from {begin:.3f} s to "
        f"{finish:.3f} s, where the view opens; elsewhere the strip shows the main holder of each "
        f"{fmt_bin(bin_s)} bin. trace.json has every turn."
    )
    return sorted([*region, *binned], key=lambda t: t.start), note


def holder_rows(turns: Sequence[Segment]) -> tuple[list[int], set[int]]:
    """The rows of the GIL holders drawn in a colour each, in row order, and those drawn as
    "other threads": when there are more holders than colours, the ones that held it longest
    keep theirs."""
    held: dict[int, float] = {}
    for turn in turns:
        held[turn.row] = held.get(turn.row, 0.0) + turn.end - turn.start
    if len(held) <= len(HOLDER_COLOURS):
        return sorted(held), set()
    busiest = sorted(held, key=lambda row: (-held[row], row))[: len(HOLDER_COLOURS) - 1]
    return sorted(busiest), set(held) - set(busiest)


def _binned_waiters(
    model: RunModel, span: float, budget: int, note: str
) -> tuple[list[float], list[float], str]:
    seconds = binned_state_seconds(model, GIL_WAIT, budget, span)
    bin_s = span / budget
    extra = f" The waiters curve is the mean per {fmt_bin(bin_s)} bin."
    return [b * bin_s for b in range(budget)], [v / bin_s for v in seconds], (note + extra).strip()


def _waiters_trace(xs: list[float], ys: list[float], span: float) -> go.Scatter:
    if xs[-1] < span:
        xs = [*xs, span]
        ys = [*ys, ys[-1]]
    return go.Scatter(
        x=xs,
        y=ys,
        name="threads waiting for the GIL",
        mode="lines",
        line={"shape": "hv", "color": state_colour(GIL_WAIT), "width": 1.5},
        fill="tozeroy",
        fillcolor="rgba(213,94,0,0.15)",
        xaxis="x2",
        yaxis="y2",
        hovertemplate="%{y} waiting from %{x:.4f} s<extra></extra>",
    )


def _window_start(turns: Sequence[Segment], xs: Sequence[float], ys: Sequence[float]) -> float:
    """Open the zoomed view where the GIL passes between threads most often: that is where turns
    show. (The first moment anyone waits is often start-up noise: the main thread re-taking the
    GIL after each import's file read.)"""
    ordered = sorted(turns, key=lambda turn: turn.start)
    starts = [turn.start for previous, turn in zip([None, *ordered], ordered)
              if previous is None or previous.key != turn.key]  # hand-offs between threads
    best_count, best_start, first = 0, None, 0
    for last, start in enumerate(starts):
        while start - starts[first] > DETAIL_WINDOW_S:
            first += 1
        if last - first + 1 > best_count:
            best_count, best_start = last - first + 1, starts[first]
    if best_start is not None and best_count > 2:
        return max(0.0, best_start - DETAIL_WINDOW_S / 20)
    contended = next((x for x, y in zip(xs, ys, strict=True) if y > 0), None)
    if contended is not None:
        return max(0.0, contended - DETAIL_WINDOW_S / 10)
    return turns[0].start if turns else 0.0


def _gil_detail_layout(figure: go.Figure, span: float, start: float, most_waiting: float) -> None:
    """Two panels on one time axis: the holder strip (x, y) above the waiters curve (x2, y2).

    The range slider belongs to the waiters' axis, so it draws only that one curve as the map of
    the run; were it on the strip's axis it would draw every GIL bar a second time (measured: a
    6,000-bar strip took 1.4 s with the slider drawing bars, 0.6 s without). The strip's axis
    follows the slider through ``matches``."""
    start = min(start, max(0.0, span - DETAIL_WINDOW_S))
    window = [start, start + DETAIL_WINDOW_S] if span > 2 * DETAIL_WINDOW_S else [0, span or 1e-3]
    layout = base_layout("GIL holder and waiting threads, 100 ms window", 440)
    axis = time_axis(span)
    axis.update(
        range=window,
        anchor="y2",
        rangeslider={"visible": True, "range": [0, span or 1e-3], "thickness": 0.12},
    )
    layout.update(
        barmode="overlay",
        xaxis={
            "matches": "x2",
            "anchor": "y",
            "showticklabels": False,
            "showgrid": True,
            "zeroline": False,
        },
        xaxis2=axis,
        yaxis={
            "domain": [0.55, 1.0],
            "tickvals": [0],
            "ticktext": ["GIL holder"],
            "range": [-0.6, 0.6],
            "fixedrange": True,
            "showgrid": False,
            "anchor": "x",
        },
        yaxis2={
            "domain": [0.0, 0.45],
            "title": {"text": "waiting threads"},
            "range": [0, max(1.0, float(most_waiting)) * 1.15],
            "fixedrange": True,
            "tickformat": "d",
            "anchor": "x2",
        },
        # One entry per holder can be many: a vertical list on the right never covers the title.
        legend={
            "orientation": "v",
            "x": 1.01,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "top",
            "font": {"size": 11},
            "title": {"text": "GIL holder"},
        },
    )
    figure.update_layout(layout)
