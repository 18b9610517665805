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

from tracer.model.gil_blame import MIN_PIECE_S, gil_blame
from tracer.model.schema import (
    LOCK_WAIT,
    GilBlame,
    LockBlame,
    StackSource,
    ThreadTimeline,
    WaitDetail,
    Where,
    WhereRow,
)
from tracer.model.stacks import EMPTY, UNKNOWN, StackTimeline, StackTrie

Key = tuple[int, int]  # (pid, tid)


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
                       gil_blame=gil_blame(threads, timelines, trie),
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


def _stacks_of(timelines: Mapping[Key, StackTimeline], key: Key | None, start: float,
               end: float) -> Iterator[tuple[float, float, int]]:
    """[start, end) cut by ``key``'s stack; an unknown stack (or thread) is the empty stack."""
    timeline = timelines.get(key) if key is not None else None
    if timeline is None:
        yield start, end, EMPTY
        return
    for piece_start, piece_end, stack in timeline.pieces(start, end):
        yield piece_start, piece_end, EMPTY if stack == UNKNOWN else stack


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
