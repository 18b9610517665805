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


def overlay(base: list[Interval], top: list[Interval], replaces: frozenset[str]) -> list[Interval]:
    """``base`` with ``top`` laid over it wherever base is in one of ``replaces`` or knows nothing.

    Used to refine a coarse state with a more specific source: an instrumented lock wait turns
    the ``blocked`` time it covers into ``lock_wait``, but never hides ``running``.
    """
    if not top:
        return list(base)
    cuts = sorted({p for i in base for p in (i.start, i.end)} | {p for i in top for p in (i.start,
                                                                                         i.end)})
    out: list[Interval] = []
    b = t = 0
    base_sorted = sorted(base, key=lambda i: i.start)
    top_sorted = sorted(top, key=lambda i: i.start)
    n_base, n_top = len(base_sorted), len(top_sorted)
    last: Interval | None = None
    for lo, hi in zip(cuts, cuts[1:]):
        if hi <= lo:
            continue
        mid = (lo + hi) / 2
        while b < n_base and base_sorted[b].end <= mid:
            b += 1
        while t < n_top and top_sorted[t].end <= mid:
            t += 1
        under = base_sorted[b] if b < n_base and base_sorted[b].start <= mid else None
        over = top_sorted[t] if t < n_top and top_sorted[t].start <= mid else None
        chosen = over if over is not None and (under is None or under.state in replaces) else under
        if chosen is None:
            continue
        # pieces come in order: join them as merge_adjacent would, without making each one
        if (last is not None and last.state == chosen.state and last.detail == chosen.detail
                and lo - last.end <= _JOIN_GAP):
            last.end = max(last.end, hi)
        else:
            last = Interval(lo, hi, chosen.state, chosen.detail)
            out.append(last)
    return out


_JOIN_GAP = 1e-9  # merge_adjacent's default
