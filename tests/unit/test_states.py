"""Pure interval functions: state totals, merging, overlaying a finer source."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tracer.model.schema import Interval
from tracer.model.states import merge_adjacent, overlay, state_seconds


def _spans(intervals: list[Interval]) -> list[tuple[float, float, str]]:
    return [(round(i.start, 6), round(i.end, 6), i.state) for i in intervals]


def test_state_seconds_and_merge() -> None:
    intervals = [Interval(0, 1, "running"), Interval(1, 1.5, "running"), Interval(2, 3, "blocked")]
    assert state_seconds(intervals) == {"running": 1.5, "blocked": 1.0}
    assert _spans(merge_adjacent(intervals)) == [(0, 1.5, "running"), (2, 3, "blocked")]


def test_overlay_refines_blocked_but_never_hides_running() -> None:
    base = [Interval(0, 1, "running"), Interval(1, 3, "blocked")]
    waits = [Interval(0.5, 2, "lock_wait", {"lock": 1})]
    result = overlay(base, waits, frozenset({"blocked"}))
    assert _spans(result) == [(0, 1, "running"), (1, 2, "lock_wait"), (2, 3, "blocked")]
    assert result[1].detail == {"lock": 1}


def test_overlay_fills_unknown_time() -> None:
    result = overlay([Interval(0, 1, "running")], [Interval(1, 2, "lock_wait")], frozenset())
    assert _spans(result) == [(0, 1, "running"), (1, 2, "lock_wait")]


_interval_lists = st.lists(
    st.tuples(st.integers(0, 50), st.integers(1, 10), st.sampled_from(["a", "b", "c"])),
    max_size=12,
).map(lambda items: merge_adjacent(_disjoint(items)))


def _disjoint(items: list[tuple[int, int, str]]) -> list[Interval]:
    out: list[Interval] = []
    end = 0.0
    for start, length, state in sorted(items):
        s = max(float(start), end)
        out.append(Interval(s, s + length, state))
        end = s + length
    return out


@given(_interval_lists, _interval_lists)
def test_overlay_never_overlaps_and_keeps_unreplaced_time(base: list[Interval],
                                                          top: list[Interval]) -> None:
    result = overlay(base, top, frozenset({"b"}))
    assert all(x.end <= y.start + 1e-9 for x, y in zip(result, result[1:]))
    kept = state_seconds(i for i in base if i.state != "b")
    got = state_seconds(result)
    for state, seconds in kept.items():
        assert got.get(state, 0) >= seconds - 1e-6
