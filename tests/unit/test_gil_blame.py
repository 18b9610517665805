"""The array-based GIL blame (tracer.model.gil_blame) gives the same seconds per (waiter, stack,
holder, stack) as the one-overlap-at-a-time walk it replaced, kept here as the oracle."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.model.gil_blame import BATCH_OVERLAPS, gil_blame
from tracer.model.schema import (
    GIL_WAIT,
    NATIVE,
    RUNNING,
    Frame,
    Interval,
    ThreadTimeline,
)
from tracer.model.stacks import EMPTY, UNKNOWN, StackTimeline, StackTrie

Key = tuple[int, int]


# -- the walk this module replaced (where.py before 2026-12-02), verbatim in substance ----------

def _during(holds: list[tuple[Interval, int]], starts: list[float], start: float,
            end: float) -> Iterator[tuple[float, float, int | None]]:
    index = max(0, bisect_right(starts, start) - 1)
    at = start
    while at < end and index < len(holds):
        hold, tid = holds[index]
        index += 1
        if hold.end <= at:
            continue
        if hold.start >= end:
            break
        if hold.start > at:
            yield at, hold.start, None
            at = hold.start
        upto = min(end, hold.end)
        yield at, upto, tid
        at = upto
    if at < end:
        yield at, end, None


def _stacks_of(timelines: Mapping[Key, StackTimeline], key: Key | None, start: float,
               end: float) -> Iterator[tuple[float, float, int]]:
    timeline = timelines.get(key) if key is not None else None
    if timeline is None:
        yield start, end, EMPTY
        return
    for a, b, stack in timeline.pieces(start, end):
        yield a, b, EMPTY if stack == UNKNOWN else stack


def _oracle(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline]
            ) -> dict[tuple[int, int, int | None, int], float]:
    totals: dict[tuple[int, int, int | None, int], float] = defaultdict(float)
    by_pid: dict[int, list[ThreadTimeline]] = defaultdict(list)
    for thread in threads:
        by_pid[thread.pid].append(thread)
    for pid, members in by_pid.items():
        holds = sorted(((i, t.tid) for t in members for i in t.intervals if i.state == RUNNING),
                       key=lambda hold: hold[0].start)
        starts = [hold.start for hold, _ in holds]
        for waiter in members:
            for wait in waiter.intervals:
                if wait.state != GIL_WAIT:
                    continue
                for start, end, holder in _during(holds, starts, wait.start, wait.end):
                    if holder == waiter.tid:
                        holder = None
                    for a, b, ws in _stacks_of(timelines, (pid, waiter.tid), start, end):
                        key = (pid, holder) if holder is not None else None
                        for c, d, hs in _stacks_of(timelines, key, a, b):
                            totals[(waiter.tid, ws, holder, hs)] += d - c
    return {k: v for k, v in totals.items() if v >= 1e-9}


# -- random recordings: one GIL, so holds never overlap ------------------------------------------

_FRAMES = [Frame(f"f{i}", "prog.py", i) for i in range(4)]


@st.composite
def recordings(draw: st.DrawFn) -> tuple[list[ThreadTimeline], dict[Key, StackTimeline],
                                           StackTrie]:
    n_threads = draw(st.integers(1, 5))
    steps = draw(st.lists(st.tuples(st.integers(0, n_threads), st.integers(1, 40)),
                          min_size=1, max_size=60))
    # the GIL's turns on a grid of ms: thread k holds it (k == n_threads: nobody does), and
    # every thread not holding it waits or runs native code
    waits = draw(st.lists(st.booleans(), min_size=n_threads, max_size=n_threads))
    intervals: dict[int, list[Interval]] = defaultdict(list)
    at = 0.0
    for holder, ms in steps:
        end = at + ms / 1000
        for tid in range(n_threads):
            state = RUNNING if tid == holder else GIL_WAIT if waits[tid] else NATIVE
            intervals[tid].append(Interval(at, end, state))
        at = end
    trie = StackTrie()
    stacks = [trie.intern(tuple(_FRAMES[: depth])) for depth in range(len(_FRAMES) + 1)]
    timelines: dict[Key, StackTimeline] = {}
    for tid in range(n_threads):
        if draw(st.booleans()):
            # on the grid (where holds change too) and off it
            changes = sorted(draw(st.lists(st.integers(0, int(at * 1000)), max_size=20)))
            offsets = draw(st.lists(st.sampled_from([0.0, 0.0003]), min_size=len(changes),
                                    max_size=len(changes)))
            timeline = StackTimeline()
            for t_s in sorted({t_ms / 1000 + offset for t_ms, offset in zip(changes, offsets)}):
                timeline.step(t_s, draw(st.sampled_from(stacks)))
            timelines[(1, tid)] = timeline
    threads = [ThreadTimeline(tid, 1, f"t{tid}", 0.0, at, 0.0, intervals=intervals[tid])
               for tid in range(n_threads)]
    return threads, timelines, trie


def _as_totals(blame: list) -> dict[tuple[int, int, int | None, int], float]:
    return {(b.waiter_tid, b.waiter_stack, b.holder_tid, b.holder_stack): b.seconds
            for b in blame}


@settings(max_examples=200, deadline=None)
@given(recordings())
def test_same_seconds_as_the_walk_it_replaced(recording: tuple) -> None:
    threads, timelines, trie = recording
    expected = {(w, trie.stack(ws), h, trie.stack(hs)): round(s, 9)
                for (w, ws, h, hs), s in _oracle(threads, timelines).items()}
    got = _as_totals(gil_blame(threads, timelines, trie))
    assert got.keys() == expected.keys()
    for key, seconds in expected.items():
        assert abs(got[key] - seconds) < 1e-9


def test_batches_split_whole_pieces_and_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch smaller than one waiter's overlaps still sums every overlap."""
    import tracer.model.gil_blame as module

    threads = [ThreadTimeline(tid, 1, "", 0.0, 1.0, 0.0,
                              intervals=[Interval(i / 100, (i + 1) / 100,
                                                  RUNNING if i % 3 == tid else GIL_WAIT)
                                         for i in range(100)])
               for tid in range(3)]
    trie = StackTrie()
    whole = _as_totals(gil_blame(threads, {}, trie))
    monkeypatch.setattr(module, "BATCH_OVERLAPS", 1)
    assert _as_totals(module.gil_blame(threads, {}, trie)) == whole
    assert BATCH_OVERLAPS > 1
    # each of the three waited 2/3 of the second, a third of it on each other thread
    assert whole[(0, (), 1, ())] == round(0.33, 9)
