"""The per-thread timeline: one row per thread (or folded group), coloured by state over time.

Scale shapes this figure: a CPU-bound run hands the GIL over every 5 ms, so a minute of recording
is tens of thousands of intervals. It draws one trace per state rather than one shape per
interval, merges adjacent intervals of the same state, and past ``SEGMENT_BUDGET`` drawn segments
shows the dominant state per time bin instead; trace.json keeps every event. Threads scale too:
the rows are the view's selection, which folds all but the most interesting threads past
``FOLD_ABOVE`` (:mod:`reports.threads`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from reports.figures.layout import (
    SEGMENT_BUDGET,
    FigureSpec,
    PlotlyDict,
    bar_trace,
    base_layout,
    esc,
    marker_decorations,
    note_spec,
    row_axis,
    rows_height,
    shorten,
    time_axis,
)
from reports.format import fmt_bin, fmt_seconds
from reports.intervals import TOUCH_S, Segment, dominant_per_bin, merge_intervals, sample_stack
from reports.prose import describe_wait, thread_end_text
from reports.threads import Row, ThreadGroup, thread_label
from reports.view import ReportView
from reports.vocabulary import (
    CUT_OFF,
    blocked_cause_phrase,
    end_reason_short,
    state_colour,
    state_name,
)
from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    SIGNAL_WAIT,
    STATES,
    BlockedDetail,
    EndReason,
    HoldDetail,
    Marker,
    ThreadTimeline,
    WaitDetail,
)

# Lock holds are drawn as a thin strip inside each thread's row. The lock recorder keeps only holds
# long enough to matter, so a few hundred is usual; past this many the strip would be noise and
# cost drawing time the states need, so it is left out (trace.json has them all).
HOLD_LIMIT = 5_000
# A hover box lists at most this many different locks for one drawn bar.
HOVER_LOCKS = 3
HOLD_COLOUR = "#3d2c5e"
CUT_OFF_COLOUR = "#b3261e"
CUT_OFF_SYMBOLS = {EndReason.KILLED_AT_EXIT: "x", EndReason.RUNNING_AT_STOP: "diamond"}


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
    """A row's full label, as the hover box says it."""
    return row.label if isinstance(row, ThreadGroup) else thread_label(row)


def row_tick(row: Row) -> str:
    """A row's tick label, one line whatever the name's length (the hover has the full one)."""
    if isinstance(row, ThreadGroup):
        return row.label
    return f"{shorten(row.name)} (tid {row.tid})"


def timeline_figure(view: ReportView, budget: int = SEGMENT_BUDGET) -> FigureSpec | None:
    """One row per thread (or per folded group of threads), coloured by state over time; lock
    holds as a thin strip, cut-off threads marked where they stopped, markers on top."""
    rows = view.selection.rows
    if not rows:
        return None
    drawn = timeline_segments(rows, view.span_s, budget)
    figure = go.Figure()
    hover = _state_traces(figure, rows, drawn, view.labels)
    notes_text = _hold_strip(figure, hover, rows)
    figure.add_traces(cut_off_traces(view.model.markers, rows))
    labels = [esc(row_label(r)) for r in rows]
    ticks = [esc(row_tick(r)) for r in rows]
    shapes, marker_notes = marker_decorations(view.model.markers)
    layout = base_layout("Threads over time, coloured by state", rows_height(len(rows)))
    layout.update(
        barmode="overlay",
        bargap=0.2,
        xaxis=time_axis(view.span_s),
        yaxis=row_axis(ticks),
        shapes=shapes,
        annotations=marker_notes,
    )
    figure.update_layout(layout)
    if drawn.bin_s is not None:
        notes_text.insert(0, _binned_note(drawn))
    return FigureSpec(
        "fig-timeline", figure, labels, hover, " ".join(notes_text), drawn.bin_s is not None
    )


def _state_traces(figure: go.Figure, rows: Sequence[Row], drawn: DrawnRows,
                  who: Mapping[int, str]) -> dict[int, PlotlyDict]:
    """One bar trace per state present; returns their hover specs by trace index."""
    segments, bin_s = drawn.segments, drawn.bin_s
    hover: dict[int, PlotlyDict] = {}
    present = {s.key for s in segments}
    for state in [*STATES, *sorted(present - set(STATES))]:
        mine = [s for s in segments if s.key == state]
        if not mine:
            continue
        name = esc(state_name(state))
        spec: PlotlyDict = {"state": name, "stacks": [s.stack for s in mine]}
        notes = group_notes(rows, mine, bin_s)
        if state in (LOCK_WAIT, SIGNAL_WAIT):  # what was waited for, and (contention) who held it
            lock_notes = lock_wait_notes(rows, mine, who, state)
            notes = [group or lock for group, lock in zip(notes, lock_notes, strict=True)]
        if state == BLOCKED:  # what it was blocked by
            causes = blocked_notes(rows, mine)
            notes = [group or cause for group, cause in zip(notes, causes, strict=True)]
        if any(notes):
            spec.update(note_spec(notes))
        hover[len(figure.data)] = spec
        figure.add_trace(bar_trace(mine, name, state_colour(state)))
    return hover


def _hold_strip(figure: go.Figure, hover: dict[int, PlotlyDict], rows: Sequence[Row]) -> list[str]:
    """The lock-hold strip, or the note saying there are too many holds to draw."""
    holds = hold_segments(rows)
    if len(holds) > HOLD_LIMIT:
        return [
            f"{len(holds):,} lock holds are too many to draw on this timeline; trace.json has them."
        ]
    if holds:
        hover[len(figure.data)] = {
            "state": "holds a lock",
            "rows": [segment.row for segment, _ in holds],  # the bars sit off the row's centre
            **note_spec([esc(", ".join(names)) for _, names in holds]),
        }
        figure.add_trace(_hold_trace([segment for segment, _ in holds]))
    return []


def _binned_note(drawn: DrawnRows) -> str:
    assert drawn.bin_s is not None
    if not drawn.exact:
        return (
            f"Aggregated: this run has more intervals than the page can draw, so each row shows "
            f"the state that dominated each {fmt_bin(drawn.bin_s)} bin. trace.json has every "
            "event."
        )
    return (
        f"Each row of folded threads shows the state most of them were in, per "
        f"{fmt_bin(drawn.bin_s)} bin; trace.json has every thread's events."
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
                f"{fmt_bin(bin_s)} bin"
            )
        else:
            notes.append("")
    return notes


def lock_wait_notes(
    rows: Sequence[Row], segments: Sequence[Segment], who: Mapping[int, str],
    state: str = LOCK_WAIT,
) -> list[str]:
    """For each drawn ``lock_wait`` bar, which lock(s) the thread waited for and who held them;
    for a ``signal_wait`` bar (``state``), which Event, Condition, Barrier or queue.

    Bars are merged (and, past the budget, binned), so one bar can cover several waits: the
    model's wait intervals overlapping the bar are looked up and described, distinct ones once.
    A folded group's bar gets no note: it stands for many threads' waits.
    """
    waits = [
        sorted((i for i in t.intervals if i.state == state), key=lambda i: i.start)
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
            detail = row[index].detail
            text = describe_wait(None if isinstance(detail, BlockedDetail) else detail, who)
            if text not in found:
                found.append(text)
            index -= 1
        found.reverse()
        shown = [esc(text) for text in found[:HOVER_LOCKS]]
        if len(found) > HOVER_LOCKS:
            shown.append(f"… and {len(found) - HOVER_LOCKS} more")
        notes.append("<br>".join(shown))
    return notes


def blocked_notes(rows: Sequence[Row], segments: Sequence[Segment]) -> list[str]:
    """For each drawn ``blocked`` bar, what the thread was blocked by ("blocked: sleeping"),
    from the model's blocked intervals under the bar; a bar over several causes names them
    biggest first with their seconds. A folded group's bar gets no note."""
    blocked = [
        sorted((i for i in t.intervals if i.state == BLOCKED), key=lambda i: i.start)
        if isinstance(t, ThreadTimeline)
        else []
        for t in rows
    ]
    starts = [[i.start for i in row] for row in blocked]
    notes = []
    for segment in segments:
        row = blocked[segment.row]
        index = bisect_left(starts[segment.row], segment.end) - 1
        seconds: dict[str, float] = {}
        while index >= 0 and row[index].end > segment.start:
            piece = row[index]
            detail = piece.detail
            cause = str(detail.cause) if isinstance(detail, BlockedDetail) else "other"
            overlap = min(piece.end, segment.end) - max(piece.start, segment.start)
            seconds[cause] = seconds.get(cause, 0.0) + max(overlap, 0.0)
            index -= 1
        ranked = sorted(seconds.items(), key=lambda item: -item[1])
        if len(ranked) == 1:
            notes.append(esc(f"blocked: {blocked_cause_phrase(ranked[0][0])}"))
        elif ranked:
            parts = [f"{blocked_cause_phrase(c)} {fmt_seconds(t)}"
                     for c, t in ranked[:HOVER_LOCKS]]
            if len(ranked) > HOVER_LOCKS:
                parts.append(f"and {len(ranked) - HOVER_LOCKS} more")
            notes.append(esc("blocked: " + "; ".join(parts)))
        else:
            notes.append("")
    return notes


def hold_segments(rows: Sequence[Row]) -> list[tuple[Segment, list[str]]]:
    """Per thread, the union of its lock holds (nested and overlapping holds drawn once), each
    with the names of the locks held in it. Folded groups' rows get none (trace.json has them)."""
    result: list[tuple[Segment, list[str]]] = []
    for row, thread in enumerate(rows):
        if isinstance(thread, ThreadGroup):
            continue
        start, end, names = 0.0, 0.0, list[str]()
        for hold in sorted(thread.holds, key=lambda i: i.start):
            name = _hold_name(hold.detail)
            if names and hold.start <= end + TOUCH_S:
                end = max(end, hold.end)
                if name not in names:
                    names.append(name)
                continue
            if names:
                result.append((Segment(row, start, end, "hold"), names))
            start, end, names = hold.start, hold.end, [name]
        if names:
            result.append((Segment(row, start, end, "hold"), names))
    return result


def _hold_name(detail: WaitDetail | HoldDetail | BlockedDetail | None) -> str:
    if not isinstance(detail, (WaitDetail, HoldDetail)):
        return "a lock"
    still_held = isinstance(detail, HoldDetail) and detail.open
    return detail.name + (" (still held at the end)" if still_held else "")


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


def cut_off_traces(markers: Sequence[Marker], rows: Sequence[Row]) -> list[go.Scatter]:
    """A red mark where a thread was cut off: killed at interpreter exit (a daemon) or still
    running when the run was stopped. The hover says where it was and how far it got."""
    traces = []
    for reason in CUT_OFF:
        xs, ys, texts = [], [], []
        for row, thread in enumerate(rows):
            if isinstance(thread, ThreadGroup) or thread.end_reason != reason:
                continue
            at = thread.end_s
            if at is None:
                at = max((i.end for i in thread.intervals), default=None)
            text = thread_end_text(thread, markers)
            if at is None or text is None:
                continue
            xs.append(round(at, 7))
            ys.append(row)
            texts.append(f"<b>{esc(thread_label(thread))}</b><br>{esc(text)}<br>at {at:.4f} s")
        if xs:
            traces.append(_cut_off_trace(reason, xs, ys, texts))
    return traces


def _cut_off_trace(
    reason: EndReason, xs: list[float], ys: list[int], texts: list[str]
) -> go.Scatter:
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        name=end_reason_short(reason),
        marker={
            "symbol": CUT_OFF_SYMBOLS[reason],
            "size": 14,
            "color": CUT_OFF_COLOUR,
            "line": {"width": 1.5, "color": "#ffffff"},
        },
        hovertext=texts,
        hovertemplate="%{hovertext}<extra></extra>",
        cliponaxis=False,
    )
