"""Pure functions over state intervals."""

from __future__ import annotations

from collections.abc import Iterable

from tracer.model.schema import Interval


def state_seconds(intervals: Iterable[Interval]) -> dict[str, float]:
    """Seconds spent in each state, rounded to the microsecond."""
    totals: dict[str, float] = {}
    for interval in intervals:
        totals[interval.state] = totals.get(interval.state, 0.0) + interval.duration
    return {state: round(seconds, 6) for state, seconds in totals.items()}


def merge_adjacent(intervals: Iterable[Interval], gap: float = 1e-9) -> list[Interval]:
    """Join neighbours in the same state (and with the same detail) separated by at most ``gap``."""
    out: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        last = out[-1] if out else None
        if (last is not None and last.state == interval.state and last.detail == interval.detail
                and interval.start - last.end <= gap):
            last.end = max(last.end, interval.end)
        else:
            out.append(Interval(interval.start, interval.end, interval.state, interval.detail))
    return out
