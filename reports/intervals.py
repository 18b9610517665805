"""Interval and bin algebra for the report: merging a thread's intervals, GIL turns and waiters,
dominant key and seconds per time bin.

It lives apart from :mod:`reports.figures` because two writers share it: the figures, which
aggregate intervals to stay within a drawing budget, and the Perfetto writer
(:mod:`reports.perfetto`), which keeps every event but draws the same merged states and GIL turns.
Everything here is pure (the model in, numbers and segments out), and importing it must not import
Plotly: writing trace.json should not pay for loading the plotting library. tests/unit/
test_report_intervals.py checks that importing reports.perfetto leaves Plotly unloaded.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tracer.model.schema import GIL_WAIT, RUNNING, Interval, RunModel, ThreadTimeline

# Intervals closer than this (1 µs) count as touching when merging.
TOUCH_S = 1e-6


@dataclass(frozen=True)
class Segment:
    """One bar of a row: ``key`` is the state (timeline) or the holder's row (a GIL turn)."""

    row: int
    start: float
    end: float
    key: str
    stack: int = -1


# ---------------------------------------------------------------------------------------------
# Merging, sample lookup, aggregation per bin


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Join touching intervals of one state; clip overlaps so bars never stack on one row."""
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        start = max(interval.start, merged[-1].end) if merged else interval.start
        if interval.end <= start:
            continue
        last = merged[-1] if merged else None
        if last is not None and last.state == interval.state and start - last.end <= TOUCH_S:
            last.end = interval.end
        else:
            merged.append(Interval(start, interval.end, interval.state))
    return merged


def sample_stack(thread: ThreadTimeline, times: list[float], start: float, end: float) -> int:
    """The stack of the first sample taken inside [start, end), or -1 when none was."""
    index = bisect_left(times, start)
    if index < len(times) and times[index] < end:
        return thread.samples[index].stack
    return -1


def bin_overlaps(
    pieces: Iterable[tuple[float, float]], bin_s: float, bins: int
) -> Iterator[tuple[int, float]]:
    """(bin, seconds) for each piece and each bin it overlaps; times past the end go to the last."""
    for start, end in pieces:
        first = min(bins - 1, max(0, int(start / bin_s)))
        last = min(bins - 1, max(0, int(end / bin_s)))
        for b in range(first, last + 1):
            overlap = min(end, (b + 1) * bin_s) - max(start, b * bin_s)
            if overlap > 0:
                yield b, overlap


def dominant_per_bin(
    pieces: Iterable[tuple[float, float, str]], bin_s: float, bins: int
) -> list[tuple[float, float, str]]:
    """Reduce pieces to the key covering most of each bin, merging equal neighbouring bins."""
    cover: list[dict[str, float]] = [{} for _ in range(bins)]
    for start, end, key in pieces:
        for b, seconds in bin_overlaps([(start, end)], bin_s, bins):
            cover[b][key] = cover[b].get(key, 0.0) + seconds
    result: list[tuple[float, float, str]] = []
    for b, shares in enumerate(cover):
        if not shares:
            continue
        key = max(shares, key=lambda k: shares[k])
        start = b * bin_s
        if result and result[-1][2] == key and abs(result[-1][1] - start) < TOUCH_S:
            result[-1] = (result[-1][0], start + bin_s, key)
        else:
            result.append((start, start + bin_s, key))
    return result


def run_end(model: RunModel) -> float:
    """The time axis end: the wall time, or the last interval when the wall time is missing."""
    ends = [i.end for t in model.threads for i in t.intervals]
    return max([model.wall_s, *ends]) if ends else max(model.wall_s, 0.0)


# ---------------------------------------------------------------------------------------------
# The GIL: holding turns, waiters, seconds per bin


def has_gil_data(model: RunModel) -> bool:
    return any(i.state in (RUNNING, GIL_WAIT) for t in model.threads for i in t.intervals)


def gil_turns(threads: Sequence[ThreadTimeline]) -> list[Segment]:
    """Each holding turn (merged ``running`` intervals of one thread), overlaps clipped; a turn's
    row is its thread's index in ``threads`` (the report's thread order)."""
    turns = []
    for row, thread in enumerate(threads):
        times = [s.t for s in thread.samples]
        running = [i for i in thread.intervals if i.state == RUNNING]
        for i in merge_intervals(running):
            turns.append(
                Segment(row, i.start, i.end, str(row), sample_stack(thread, times, i.start, i.end))
            )
    turns.sort(key=lambda s: s.start)
    clipped: list[Segment] = []
    for turn in turns:
        start = max(turn.start, clipped[-1].end) if clipped else turn.start
        if turn.end > start:
            clipped.append(Segment(turn.row, start, turn.end, turn.key, turn.stack))
    return clipped


def gil_waiter_steps(model: RunModel) -> tuple[list[float], list[int]]:
    """Number of threads in ``gil_wait`` as a step function: value y[i] holds from x[i]."""
    changes: dict[float, int] = {}
    for thread in model.threads:
        for i in merge_intervals(i for i in thread.intervals if i.state == GIL_WAIT):
            changes[i.start] = changes.get(i.start, 0) + 1
            changes[i.end] = changes.get(i.end, 0) - 1
    xs: list[float] = []
    ys: list[int] = []
    level = 0
    for t in sorted(changes):
        level += changes[t]
        if ys and ys[-1] == level:
            continue
        xs.append(t)
        ys.append(level)
    return xs, ys


def binned_state_seconds(model: RunModel, state: str, bins: int, span_s: float) -> list[float]:
    """Seconds spent in ``state`` by all threads together, per time bin."""
    totals = [0.0] * bins
    pieces = ((i.start, i.end) for t in model.threads for i in t.intervals if i.state == state)
    for b, seconds in bin_overlaps(pieces, span_s / bins, bins):
        totals[b] += seconds
    return totals


def binned_turn_seconds(turns: Sequence[Segment], bins: int, span_s: float) -> list[float]:
    """Seconds the GIL was held per bin, from the de-overlapped turns (so never above 100%)."""
    totals = [0.0] * bins
    for b, seconds in bin_overlaps(((t.start, t.end) for t in turns), span_s / bins, bins):
        totals[b] += seconds
    return totals
