"""The report's Plotly figures, one function per figure, each reading only the model.

Scale is the constraint that shapes this module: a CPU-bound run hands the GIL over every 5 ms, so
a minute of recording is tens of thousands of intervals. Each figure therefore draws one trace per
state (or per holder) rather than one shape per interval, merges adjacent intervals of the same
state, and past ``SEGMENT_BUDGET`` drawn segments shows the dominant state per time bin instead;
the Perfetto trace keeps every event. The interval algebra behind this (merging, binning, GIL
turns) is in :mod:`reports.intervals`, which the Perfetto writer shares without importing Plotly.
Threads scale too: past ``explain.FOLD_ABOVE`` threads the per-thread figures draw the most
interesting threads one per row and fold the rest into a few group rows
(``explain.select_threads``), because Plotly lays out every tick label and legend entry, and
hundreds of them cost seconds.

Every string that comes from user code (thread names, frames, marker names) is HTML-escaped
before it enters a figure, because Plotly renders a subset of HTML in labels and hover text and
shows entities as literal text.
"""

from __future__ import annotations

import html
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from reports.explain import (
    CUT_OFF,
    ThreadGroup,
    describe_wait,
    fmt_seconds,
    lock_called,
    marker_words,
    ordered_threads,
    select_threads,
    thread_end_text,
    thread_label,
    thread_state_seconds,
)
from reports.intervals import (
    TOUCH_S,
    Segment,
    binned_state_seconds,
    binned_turn_seconds,
    dominant_per_bin,
    gil_turns,
    gil_waiter_steps,
    has_gil_data,
    merge_intervals,
    run_end,
    sample_stack,
)
from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    OFF_CPU,
    ON_CPU,
    RUNNING,
    STATES,
    RunModel,
    ThreadTimeline,
)

# Past this many drawn bars in one figure, figures aggregate (dominant state per time bin). Each
# bar costs about 0.07 ms to draw in headless Chromium on 2 cores (benchmarks/report_scale.py:
# 64 threads x 60 s loaded in 3.9 s at 20,000 bars, 2.6 s at 4,000); 6,000 keeps a report under
# 3 s and still gives a few-thread run 1,500 bins per row. trace.json keeps every interval.
SEGMENT_BUDGET = 6_000
# Bars in the GIL strip. It is one row, opened on a 100 ms window, so it needs far fewer bars
# than the timeline; each costs drawing time (measured in headless Chromium: 6,000 bars 0.6 s)
# however little of the run is in view.
GIL_STRIP_BUDGET = 3_000
# The GIL detail window: 100 ms holds ~20 hand-offs at the default 5 ms switch interval, each a
# visible block.
DETAIL_WINDOW_S = 0.1
# Bins of the run-scale GIL overview: enough to see phases, few enough to stay a smooth curve.
OVERVIEW_BINS = 400
# Marker shapes are drawn one shape each; beyond this many they would clutter and slow the plot.
MARKER_LIMIT = 200
# A mark's fields are written next to its name when the whole fits in this many characters.
MARKER_TEXT = 24
# Frames shown in a hover box; the full stack is in trace.json and the raw recordings.
HOVER_FRAMES = 12
# Lock holds are drawn as a thin strip inside each thread's row. The lock recorder keeps only holds
# long enough to matter, so a few hundred is usual; past this many the strip would be noise and
# cost drawing time the states need, so it is left out (trace.json has them all).
HOLD_LIMIT = 5_000
# A hover box lists at most this many different locks for one drawn bar.
HOVER_LOCKS = 3
# Locks in the "worst locks by wait" chart: enough to find the culprit, few enough to read.
TOP_LOCKS = 15
HOLD_COLOUR = "#3d2c5e"
CUT_OFF_COLOUR = "#b3261e"

# Okabe-Ito colours (colour-blind safe); greys for "not wanting a CPU".
STATE_COLOURS = {
    RUNNING: "#009E73",
    NATIVE: "#56B4E9",
    ON_CPU: "#0072B2",
    GIL_WAIT: "#D55E00",
    CPU_WAIT: "#E69F00",
    LOCK_WAIT: "#CC79A7",
    BLOCKED: "#999999",
    OFF_CPU: "#D4D4D4",
}
STATE_NAMES = {
    RUNNING: "running (holds GIL)",
    NATIVE: "native (no GIL)",
    ON_CPU: "on CPU",
    GIL_WAIT: "waiting for GIL",
    CPU_WAIT: "waiting for a core",
    LOCK_WAIT: "waiting for lock",
    BLOCKED: "blocked",
    OFF_CPU: "off CPU",
}
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
UNKNOWN_COLOUR = "#666666"
# Past len(HOLDER_COLOURS) GIL holders, colours would repeat and the legend would run off the
# figure (and each Plotly trace costs layout time: 513 holders took 1.3 s to draw, one trace
# 0.3 s). The busiest holders keep a colour each; the rest share one grey trace, and the hover
# still names each bar's thread.
OTHER_HOLDERS_COLOUR = "#BBBBBB"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


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
    hover: dict[int, dict[str, Any]] = field(default_factory=dict)  # trace index -> hover spec
    note: str = ""
    aggregated: bool = False


def esc(text: object) -> str:
    """Escape user text for Plotly, which would otherwise interpret tags in it."""
    return html.escape(str(text), quote=True)


def stack_hover_table(stacks: Sequence[Sequence[str]]) -> list[str]:
    """Each stack once, escaped, innermost frame first, ready to append to hover text."""
    table = []
    for frames in stacks:
        shown = [esc(frame) for frame in frames[:HOVER_FRAMES]]
        if len(frames) > HOVER_FRAMES:
            shown.append(f"… {len(frames) - HOVER_FRAMES} more frames")
        table.append("<br>".join(shown) if shown else "(no Python frames)")
    return table


# ---------------------------------------------------------------------------------------------
# Timeline rows: what to draw within the budget (the interval algebra is in reports.intervals)


Row = ThreadTimeline | ThreadGroup


@dataclass
class DrawnRows:
    """A timeline's bars: ``bin_s`` is the bin width when any row is binned (None when every
    interval is drawn); ``exact`` says whether single threads' rows are drawn interval by
    interval (a folded group's row is always binned)."""

    segments: list[Segment]
    bin_s: float | None
    exact: bool


def timeline_segments(rows: Sequence[Row], span_s: float, budget: int) -> DrawnRows:
    """All merged intervals of each thread, or per-bin dominant states when they exceed
    ``budget``; a folded group's row shows the state most of its threads were in, per bin."""
    merged = [merge_intervals(r.intervals) if isinstance(r, ThreadTimeline) else None for r in rows]
    bins = max(1, budget // max(1, len(rows)))
    bin_s = span_s / bins if span_s > 0 else 1.0
    groups = sum(1 for m in merged if m is None)
    exact = sum(len(m) for m in merged if m is not None) + groups * bins <= budget
    segments = []
    for row, (item, intervals) in enumerate(zip(rows, merged, strict=True)):
        if isinstance(item, ThreadGroup):
            pieces = (
                (i.start, i.end, i.state)
                for thread in item.threads
                for i in merge_intervals(thread.intervals)
            )
            segments += [Segment(row, *piece) for piece in dominant_per_bin(pieces, bin_s, bins)]
            continue
        assert intervals is not None
        times = [s.t for s in item.samples]
        if exact:
            drawn = [(i.start, i.end, i.state) for i in intervals]
        else:
            drawn = dominant_per_bin(((i.start, i.end, i.state) for i in intervals), bin_s, bins)
        for start, end, state in drawn:
            segments.append(Segment(row, start, end, state, sample_stack(item, times, start, end)))
    return DrawnRows(segments, None if exact and not groups else bin_s, exact)


def row_label(row: Row) -> str:
    return row.label if isinstance(row, ThreadGroup) else thread_label(row)


# ---------------------------------------------------------------------------------------------
# Shared layout pieces


# Legends sit in the top-right corner of the figure box, clear of the title (top left) and of
# the marker names that are written just above the plot area.
_LEGEND = {
    "orientation": "h",
    "yref": "container",
    "y": 0.99,
    "yanchor": "top",
    "x": 1.0,
    "xanchor": "right",
    "font": {"size": 11},
}


def _base_layout(title: str, height: int) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "template": "plotly_white",
        "font": {"family": FONT, "size": 12},
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 80, "b": 50},
        "hoverlabel": {"align": "left", "font": {"family": "ui-monospace, monospace", "size": 11}},
        "legend": _LEGEND,
    }


def _time_axis(span_s: float, title: str = "time since start (s)") -> dict[str, Any]:
    return {
        "title": {"text": title},
        "range": [0, span_s if span_s > 0 else 1e-3],
        "ticksuffix": " s",
        "showgrid": True,
        "zeroline": False,
    }


def _row_axis(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "tickmode": "array",
        "tickvals": list(range(len(labels))),
        "ticktext": list(labels),
        "autorange": "reversed",
        "automargin": True,
        "showgrid": False,
        "zeroline": False,
    }


def _rows_height(rows: int, per_row: int = 28, extra: int = 150) -> int:
    return max(280, min(2400, extra + per_row * rows))


def marker_decorations(model: RunModel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Phases as shaded bands and marks as dashed vertical lines, each named at the top."""
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for index, marker in enumerate(sorted(model.markers, key=lambda m: m.start)[:MARKER_LIMIT]):
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


def _phase_band(start: float, end: float) -> dict[str, Any]:
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


def _mark_line(at: float) -> dict[str, Any]:
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


def _bar_trace(
    segments: Sequence[Segment], name: str, colour: str, y: float | None = None
) -> go.Bar:
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


# ---------------------------------------------------------------------------------------------
# Figures


def timeline_figure(model: RunModel, budget: int = SEGMENT_BUDGET) -> FigureSpec | None:
    """One row per thread (or per folded group of threads), coloured by state over time; lock
    holds as a thin strip, cut-off threads marked where they stopped, markers on top."""
    rows = select_threads(model).rows
    if not rows:
        return None
    span = run_end(model)
    drawn = timeline_segments(rows, span, budget)
    segments, bin_s = drawn.segments, drawn.bin_s
    labels = [esc(row_label(r)) for r in rows]
    who = {t.tid: thread_label(t) for t in model.threads}
    figure = go.Figure()
    hover: dict[int, dict[str, Any]] = {}
    present = {s.key for s in segments}
    for state in [*STATES, *sorted(present - set(STATES))]:
        mine = [s for s in segments if s.key == state]
        if not mine:
            continue
        spec: dict[str, Any] = {
            "state": STATE_NAMES.get(state, esc(state)),
            "stacks": [s.stack for s in mine],
        }
        notes = group_notes(rows, mine, bin_s)
        if state == LOCK_WAIT:
            lock_notes = lock_wait_notes(rows, mine, who)
            notes = [group or lock for group, lock in zip(notes, lock_notes, strict=True)]
        if any(notes):
            spec.update(_note_spec(notes))
        hover[len(figure.data)] = spec
        colour = STATE_COLOURS.get(state, UNKNOWN_COLOUR)
        figure.add_trace(_bar_trace(mine, STATE_NAMES.get(state, esc(state)), colour))
    notes_text = []
    holds = hold_segments(rows)
    if len(holds) > HOLD_LIMIT:
        notes_text.append(
            f"{len(holds):,} lock holds are too many to draw on this timeline; trace.json has them."
        )
    elif holds:
        hover[len(figure.data)] = {
            "state": "holds a lock",
            "rows": [segment.row for segment, _ in holds],  # the bars sit off the row's centre
            **_note_spec([esc(", ".join(names)) for _, names in holds]),
        }
        figure.add_trace(_hold_trace([segment for segment, _ in holds]))
    figure.add_traces(cut_off_traces(model, rows))
    shapes, marker_notes = marker_decorations(model)
    layout = _base_layout("Threads over time, coloured by state", _rows_height(len(rows)))
    layout.update(
        barmode="overlay",
        bargap=0.2,
        xaxis=_time_axis(span),
        yaxis=_row_axis(labels),
        shapes=shapes,
        annotations=marker_notes,
    )
    figure.update_layout(layout)
    if bin_s is not None and not drawn.exact:
        notes_text.insert(
            0,
            f"Aggregated: this run has more intervals than the page can draw, so each row shows "
            f"the state that dominated each {_fmt_s(bin_s)} bin. trace.json has every event.",
        )
    elif bin_s is not None:
        notes_text.insert(
            0,
            f"Each row of folded threads shows the state most of them were in, per "
            f"{_fmt_s(bin_s)} bin; trace.json has every thread's events.",
        )
    return FigureSpec(
        "fig-timeline", figure, labels, hover, " ".join(notes_text), bin_s is not None
    )


def group_notes(rows: Sequence[Row], segments: Sequence[Segment], bin_s: float | None) -> list[str]:
    """For bars on a folded group's row: what the bar means, since no single thread is behind
    it (empty for a single thread's bar)."""
    notes = []
    for segment in segments:
        row = rows[segment.row]
        if isinstance(row, ThreadGroup) and bin_s is not None:
            notes.append(
                f"the state most of these {len(row.threads)} threads were in, per "
                f"{_fmt_s(bin_s)} bin"
            )
        else:
            notes.append("")
    return notes


def _note_spec(notes: Sequence[str]) -> dict[str, Any]:
    """Per-bar hover lines as indices into a table of distinct, already escaped texts."""
    table = NoteTable()
    ids = [table.add(note) if note else -1 for note in notes]
    return {"notes": ids, "texts": table.texts}


def lock_wait_notes(
    rows: Sequence[Row], segments: Sequence[Segment], who: dict[int, str]
) -> list[str]:
    """For each drawn ``lock_wait`` bar, which lock(s) the thread waited for and who held them.

    Bars are merged (and, past the budget, binned), so one bar can cover several waits: the
    model's wait intervals overlapping the bar are looked up and described, distinct ones once.
    A folded group's bar gets no note: it stands for many threads' waits.
    """
    waits = [
        sorted((i for i in t.intervals if i.state == LOCK_WAIT), key=lambda i: i.start)
        if isinstance(t, ThreadTimeline)
        else []
        for t in rows
    ]
    starts = [[i.start for i in row] for row in waits]
    notes = []
    for segment in segments:
        row = waits[segment.row]
        index = bisect_left(starts[segment.row], segment.end) - 1
        found: list[str] = []
        while index >= 0 and row[index].end > segment.start:
            text = describe_wait(row[index].detail, who)
            if text not in found:
                found.append(text)
            index -= 1
        found.reverse()
        shown = [esc(text) for text in found[:HOVER_LOCKS]]
        if len(found) > HOVER_LOCKS:
            shown.append(f"… and {len(found) - HOVER_LOCKS} more")
        notes.append("<br>".join(shown))
    return notes


def hold_segments(rows: Sequence[Row]) -> list[tuple[Segment, list[str]]]:
    """Per thread, the union of its lock holds (nested and overlapping holds drawn once), each
    with the names of the locks held in it. Folded groups' rows get none (trace.json has them)."""
    result: list[tuple[Segment, list[str]]] = []
    for row, thread in enumerate(rows):
        if isinstance(thread, ThreadGroup):
            continue
        current: list[Any] = []  # [start, end, names]
        for hold in sorted(thread.holds, key=lambda i: i.start):
            name = lock_called(hold.detail or {})
            if (hold.detail or {}).get("open"):
                name += " (still held at the end)"
            if current and hold.start <= current[1] + TOUCH_S:
                current[1] = max(current[1], hold.end)
                if name not in current[2]:
                    current[2].append(name)
                continue
            if current:
                result.append((Segment(row, current[0], current[1], "hold"), current[2]))
            current = [hold.start, hold.end, [name]]
        if current:
            result.append((Segment(row, current[0], current[1], "hold"), current[2]))
    return result


def _hold_trace(segments: Sequence[Segment]) -> go.Bar:
    """A thin dark strip along the bottom of each row: readable over any state colour."""
    return go.Bar(
        orientation="h",
        name="holds a lock",
        y=[s.row + 0.3 for s in segments],
        base=[round(s.start, 7) for s in segments],
        x=[round(max(s.end - s.start, 0.0), 7) for s in segments],
        marker={"color": HOLD_COLOUR, "line": {"width": 0}},
        width=0.2,
        hovertemplate="%{hovertext}<extra></extra>",
    )


def cut_off_traces(model: RunModel, rows: Sequence[Row]) -> list[go.Scatter]:
    """A red mark where a thread was cut off: killed at interpreter exit (a daemon) or still
    running when the run was stopped. The hover says where it was and how far it got."""
    symbols = {"killed_at_exit": "x", "running_at_stop": "diamond"}
    names = {"killed_at_exit": "killed at exit", "running_at_stop": "running when stopped"}
    traces = []
    for reason in CUT_OFF:
        xs, ys, texts = [], [], []
        for row, thread in enumerate(rows):
            if isinstance(thread, ThreadGroup) or thread.end_reason != reason:
                continue
            at = thread.end_s
            if at is None:
                at = max((i.end for i in thread.intervals), default=None)
            text = thread_end_text(thread, model.markers)
            if at is None or text is None:
                continue
            xs.append(round(at, 7))
            ys.append(row)
            texts.append(f"<b>{esc(thread_label(thread))}</b><br>{esc(text)}<br>at {at:.4f} s")
        if xs:
            traces.append(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    name=names[reason],
                    marker={
                        "symbol": symbols[reason],
                        "size": 14,
                        "color": CUT_OFF_COLOUR,
                        "line": {"width": 1.5, "color": "#ffffff"},
                    },
                    hovertext=texts,
                    hovertemplate="%{hovertext}<extra></extra>",
                    cliponaxis=False,
                )
            )
    return traces


def gil_detail_figure(model: RunModel, budget: int = GIL_STRIP_BUDGET) -> FigureSpec | None:
    """Who held the GIL when, and how many threads queued for it, in a ~100 ms window."""
    if not has_gil_data(model):
        return None
    threads = ordered_threads(model)
    span = run_end(model)
    every_turn = gil_turns(model)
    xs, steps = gil_waiter_steps(model)
    ys: list[float] = [float(y) for y in steps]
    opening = _window_start(every_turn, xs, ys)
    turns, note = strip_turns(every_turn, span, opening, budget)
    figure = go.Figure()
    hover: dict[int, dict[str, Any]] = {}
    coloured, others = holder_rows(every_turn)
    for index, row in enumerate(coloured):
        mine = [t for t in turns if t.row == row]
        label = esc(thread_label(threads[row]))
        hover[len(figure.data)] = {
            "state": "holds the GIL",
            "label": label,
            "stacks": [t.stack for t in mine],
        }
        figure.add_trace(_bar_trace(mine, label, HOLDER_COLOURS[index], y=0))
    if others:
        mine = [t for t in turns if t.row in others]
        hover[len(figure.data)] = {
            "state": "holds the GIL",
            "rows": [t.row for t in mine],  # the bars sit on the strip, not on a thread's row
            "stacks": [t.stack for t in mine],
        }
        figure.add_trace(_bar_trace(mine, f"{len(others)} other threads", OTHER_HOLDERS_COLOUR, 0))
    # The waiters curve is one SVG path however many points it has, so it keeps the timeline's
    # resolution rather than the strip's.
    if len(xs) > 2 * SEGMENT_BUDGET:
        xs, ys, note = _binned_waiters(model, span, SEGMENT_BUDGET, note)
    if xs:
        figure.add_trace(_waiters_trace(xs, ys, span))
    _gil_detail_layout(figure, span, opening, max(ys, default=0))
    labels = [esc(thread_label(t)) for t in threads]
    return FigureSpec("fig-gil-detail", figure, labels, hover, note, bool(note))


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
        f"{_fmt_s(bin_s)} bin. trace.json has every turn."
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
    extra = f" The waiters curve is the mean per {_fmt_s(bin_s)} bin."
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
        line={"shape": "hv", "color": STATE_COLOURS[GIL_WAIT], "width": 1.5},
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
    layout = _base_layout("GIL holder and waiting threads, 100 ms window", 440)
    axis = _time_axis(span)
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


def gil_overview_figure(model: RunModel) -> FigureSpec | None:
    """Run-scale GIL utilisation and mean waiters per bin: the shape of the whole run."""
    if not has_gil_data(model):
        return None
    span = run_end(model)
    if span <= 0:
        return None
    bins = OVERVIEW_BINS
    bin_s = span / bins
    xs = [round((b + 0.5) * bin_s, 7) for b in range(bins)]
    held = binned_turn_seconds(gil_turns(model), bins, span)
    waiting = binned_state_seconds(model, GIL_WAIT, bins, span)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=[round(h / bin_s, 4) for h in held],
            name="GIL held (share of time)",
            mode="lines",
            line={"color": STATE_COLOURS[RUNNING], "width": 2},
            hovertemplate="%{y:.0%} held around %{x:.3f} s<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=[round(w / bin_s, 4) for w in waiting],
            name="mean threads waiting for the GIL",
            mode="lines",
            line={"color": STATE_COLOURS[GIL_WAIT], "width": 2},
            yaxis="y2",
            hovertemplate="%{y:.2f} waiting around %{x:.3f} s<extra></extra>",
        )
    )
    layout = _base_layout(f"GIL over the whole run ({_fmt_s(bin_s)} bins)", 320)
    layout.update(
        xaxis=_time_axis(span),
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


def parallelism_figure(model: RunModel) -> FigureSpec | None:
    """CPU-seconds per wall-second over time against one core and the machine's cores."""
    series = model.parallelism
    if series is None or not series.t:
        return None
    span = max(run_end(model), series.t[-1] + series.bin_s)
    xs = [*series.t, series.t[-1] + series.bin_s]
    ys = [*series.values, series.values[-1]]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            name="CPU parallelism",
            mode="lines",
            line={"shape": "hv", "color": "#0072B2", "width": 2},
            fill="tozeroy",
            fillcolor="rgba(0,114,178,0.12)",
            hovertemplate="%{y:.2f} cores busy from %{x:.3f} s<extra></extra>",
        )
    )
    _reference_line(figure, span, float(model.cores), f"{model.cores} cores (this machine)", "dash")
    _reference_line(figure, span, 1.0, "1.0 = one core's worth", "dot")
    mean = model.metrics.get("parallelism")
    if mean is not None:
        _reference_line(figure, span, float(mean), f"run mean {float(mean):.2f}", "dashdot")
    shapes, notes = marker_decorations(model)
    top = max([float(model.cores), 1.0, *series.values]) * 1.15
    layout = _base_layout(f"CPU parallelism over time ({_fmt_s(series.bin_s)} bins)", 340)
    layout.update(
        xaxis=_time_axis(span),
        yaxis={"title": {"text": "cores busy (CPU-s per s)"}, "range": [0, top]},
        shapes=shapes,
        annotations=notes,
    )
    figure.update_layout(layout)
    return FigureSpec("fig-parallelism", figure)


def _reference_line(figure: go.Figure, span: float, level: float, name: str, dash: str) -> None:
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


def breakdown_figure(model: RunModel) -> FigureSpec | None:
    """Seconds per state for each thread, stacked, so totals and mixes compare at a glance."""
    rows = select_threads(model).rows
    if not rows:
        return None
    labels = [esc(row_label(r)) for r in rows]
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
        name = STATE_NAMES.get(state, esc(state))
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
                marker={"color": STATE_COLOURS.get(state, UNKNOWN_COLOUR)},
                hovertext=texts,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    title = "Seconds per state, per thread"
    if any(size > 1 for size in sizes):
        title += " (rows of folded threads: mean per thread)"
    layout = _base_layout(title, _rows_height(len(rows), 26))
    layout.update(
        barmode="stack",
        xaxis={"title": {"text": "seconds"}, "ticksuffix": " s", "rangemode": "tozero"},
        yaxis=_row_axis(labels),
    )
    figure.update_layout(layout)
    return FigureSpec("fig-breakdown", figure, labels)


def lock_wait_figure(model: RunModel) -> FigureSpec | None:
    """The locks threads waited longest for, worst first: where waiting time went."""
    rows = sorted(
        (row for row in model.locks if float(row.get("wait_s") or 0) > 0),
        key=lambda row: -float(row["wait_s"]),
    )[:TOP_LOCKS]
    if not rows:
        return None
    labels = [esc(lock_label(row)) for row in rows]
    waits = [round(float(row["wait_s"]), 7) for row in rows]
    figure = go.Figure(
        go.Bar(
            orientation="h",
            name="total wait",
            y=list(range(len(rows))),
            x=waits,
            marker={"color": STATE_COLOURS[LOCK_WAIT]},
            text=[fmt_seconds(w) for w in waits],
            textposition="auto",
            hovertext=[_lock_hover(row) for row in rows],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    title = "Locks by total time threads waited for them"
    if len(model.locks) > len(rows):
        title += f" (worst {len(rows)})"
    layout = _base_layout(title, _rows_height(len(rows), 30, 140))
    layout.update(
        showlegend=False,
        xaxis={"title": {"text": "total wait (s)"}, "ticksuffix": " s", "rangemode": "tozero"},
        yaxis=_row_axis(labels),
    )
    figure.update_layout(layout)
    return FigureSpec("fig-locks", figure, labels)


def lock_label(row: dict[str, Any]) -> str:
    """A lock's name plus where it was made: two locks may share a name, never a site."""
    site = str(row.get("site") or "")
    path, colon, line = site.rpartition(":")
    if not colon:  # no line number
        path, line = site, ""
    short = path.replace("\\", "/").rsplit("/", 1)[-1] + (f":{line}" if colon else "")
    return f"{lock_called(row)} ({short})" if short else lock_called(row)


def _lock_hover(row: dict[str, Any]) -> str:
    lines = [
        f"<b>{esc(lock_called(row))}</b> ({esc(row.get('kind') or 'lock')})",
        esc(row.get("site") or "site not recorded"),
        f"{int(row.get('contended') or 0)} of {int(row.get('acquisitions') or 0)} "
        "acquisitions waited",
        f"total wait {fmt_seconds(row.get('wait_s'))}, mean {fmt_seconds(row.get('mean_wait_s'))}",
        f"p95 {fmt_seconds(row.get('p95_wait_s'))}, max {fmt_seconds(row.get('max_wait_s'))}",
        f"held {fmt_seconds(row.get('hold_s'))} in total, "
        f"longest {fmt_seconds(row.get('max_hold_s'))}",
    ]
    return "<br>".join(lines)


def _fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def all_figures(model: RunModel, budget: int = SEGMENT_BUDGET) -> list[FigureSpec]:
    """The report's figures in page order; figures without data are left out."""
    candidates = [
        timeline_figure(model, budget),
        gil_detail_figure(model, min(budget, GIL_STRIP_BUDGET)),
        gil_overview_figure(model),
        lock_wait_figure(model),
        parallelism_figure(model),
        breakdown_figure(model),
    ]
    return [spec for spec in candidates if spec is not None]
