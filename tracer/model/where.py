"""Where the time went: each thread's states attributed to the Python stack it was running, and
each wait blamed on what the thread in the way was running.

The states (exact from perf, or sampled) say *what* a thread was doing; a stack timeline
(:mod:`tracer.model.stacks`) says *in which code*. Intersecting the two attributes every second
of every state to a stack. For a GIL wait, the GIL's holder at each moment is the thread whose
``running`` interval covers it (one GIL per process), so the same intersection with the holder's
stack says whose code kept the waiter waiting; for a lock wait (contention), the lock recorder
names the holder. A wait for a signal is attributed to code like any state, and blamed on no
one. Everything here is a pure function of the model's threads and a stack timeline per thread.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tracer.model.schema import (
    GIL_WAIT,
    LOCK_WAIT,
    RUNNING,
    GilBlame,
    Interval,
    LockBlame,
    StackSource,
    ThreadTimeline,
    WaitDetail,
    Where,
    WhereRow,
)
from tracer.model.stacks import EMPTY, UNKNOWN, StackTimeline, StackTrie

Key = tuple[int, int]  # (pid, tid)
# Pieces shorter than this are clock noise between two sources, not time spent anywhere.
MIN_PIECE_S = 1e-9


@dataclass(frozen=True)
class Attribution:
    where: Where
    gil_blame: list[GilBlame]
    lock_blame: list[LockBlame]


def attribute(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline],
              trie: StackTrie, source: StackSource, rate_hz: float | None) -> Attribution:
    """Rows of (thread, state, stack, seconds), and the GIL and lock waits blamed on holders
    (``timelines`` number their stacks in ``trie``)."""
    return Attribution(where=_where(threads, timelines, trie, source, rate_hz),
                       gil_blame=_gil_blame(threads, timelines, trie),
                       lock_blame=_lock_blame(threads, timelines, trie))


def _where(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline],
           trie: StackTrie, source: StackSource, rate_hz: float | None) -> Where:
    seconds: dict[tuple[int, str, int], float] = defaultdict(float)
    unattributed: dict[str, float] = defaultdict(float)
    for thread in threads:
        timeline = timelines.get((thread.pid, thread.tid))
        if timeline is None:
            for interval in thread.intervals:
                unattributed[interval.state] += interval.duration
            continue
        times, stacks, count = timeline.times, timeline.stacks, len(timeline.times)
        tid = thread.tid
        for interval in thread.intervals:
            # StackTimeline.pieces, inlined: this loop runs once per stack change of a trace
            state, at, end = interval.state, interval.start, interval.end
            index = bisect_right(times, at) - 1
            if index < 0:
                upto = min(end, times[0]) if count else end
                unattributed[state] += upto - at
                at, index = upto, 0
            while at < end and index < count:
                upto = times[index + 1] if index + 1 < count else end
                if upto > end:
                    upto = end
                if upto > at:
                    seconds[(tid, state, stacks[index])] += upto - at
                    at = upto
                index += 1
    rows = [WhereRow(tid, state, trie.stack(stack), round(total, 9))
            for (tid, state, stack), total in seconds.items() if total >= MIN_PIECE_S]
    rows.sort(key=lambda row: (row.tid, row.state, -row.seconds))
    return Where(source, rate_hz, rows,
                 {state: round(total, 9) for state, total in sorted(unattributed.items())
                  if total >= MIN_PIECE_S})


@dataclass(frozen=True)
class _Holds:
    """One process's GIL holds (``running`` intervals of any of its threads), sorted by start."""

    starts: list[float]
    holds: list[tuple[Interval, int]]  # (interval, tid)

    @classmethod
    def of(cls, threads: Sequence[ThreadTimeline]) -> _Holds:
        holds = sorted(((i, t.tid) for t in threads for i in t.intervals if i.state == RUNNING),
                       key=lambda hold: hold[0].start)
        return cls([hold.start for hold, _ in holds], holds)

    def during(self, start: float, end: float) -> Iterator[tuple[float, float, int | None]]:
        """[start, end) cut by who held the GIL (None: nobody did, as far as the states say)."""
        index = max(0, bisect_right(self.starts, start) - 1)
        at = start
        while at < end and index < len(self.holds):
            hold, tid = self.holds[index]
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
    """[start, end) cut by ``key``'s stack; an unknown stack (or thread) is the empty stack."""
    timeline = timelines.get(key) if key is not None else None
    if timeline is None:
        yield start, end, EMPTY
        return
    for piece_start, piece_end, stack in timeline.pieces(start, end):
        yield piece_start, piece_end, EMPTY if stack == UNKNOWN else stack


def _gil_blame(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline],
               trie: StackTrie) -> list[GilBlame]:
    by_pid: dict[int, list[ThreadTimeline]] = defaultdict(list)
    for thread in threads:
        by_pid[thread.pid].append(thread)
    totals: dict[tuple[int, int, int | None, int], float] = defaultdict(float)
    for pid, members in by_pid.items():
        holds = _Holds.of(members)
        for waiter in members:
            me = (pid, waiter.tid)
            for wait in waiter.intervals:
                if wait.state != GIL_WAIT:
                    continue
                for start, end, holder in holds.during(wait.start, wait.end):
                    if holder == waiter.tid:
                        holder = None  # overlapping records of one thread: not a holder
                    for a, b, waiter_stack in _stacks_of(timelines, me, start, end):
                        holder_key = (pid, holder) if holder is not None else None
                        for c, d, holder_stack in _stacks_of(timelines, holder_key, a, b):
                            totals[(waiter.tid, waiter_stack, holder, holder_stack)] += d - c
    blame = [GilBlame(waiter, trie.stack(waiter_stack), holder, trie.stack(holder_stack),
                      round(total, 9))
             for (waiter, waiter_stack, holder, holder_stack), total in totals.items()
             if total >= MIN_PIECE_S]
    blame.sort(key=lambda b: -b.seconds)
    return blame


def _lock_blame(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline],
                trie: StackTrie) -> list[LockBlame]:
    """Contention (``lock_wait``) only: a ``signal_wait`` (Event, Condition, queue...) has no
    holder whose code kept the waiter waiting."""
    totals: dict[tuple[int, int, int, str, int | None, int], float] = defaultdict(float)
    for waiter in threads:
        me = (waiter.pid, waiter.tid)
        for wait in waiter.intervals:
            detail = wait.detail
            if wait.state != LOCK_WAIT or not isinstance(detail, WaitDetail):
                continue
            holder_key = (waiter.pid, detail.holder) if detail.holder is not None else None
            for a, b, waiter_stack in _stacks_of(timelines, me, wait.start, wait.end):
                for c, d, holder_stack in _stacks_of(timelines, holder_key, a, b):
                    totals[(waiter.tid, waiter_stack, detail.lock, detail.name, detail.holder,
                            holder_stack)] += d - c
    blame = [LockBlame(waiter, trie.stack(waiter_stack), lock, name, holder,
                       trie.stack(holder_stack), round(total, 9))
             for (waiter, waiter_stack, lock, name, holder, holder_stack), total in totals.items()
             if total >= MIN_PIECE_S]
    blame.sort(key=lambda b: -b.seconds)
    return blame
