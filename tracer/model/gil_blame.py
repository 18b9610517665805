"""Each GIL wait blamed on whoever held the GIL meanwhile, and on the code the holder ran, in time
proportional to the overlaps, done in arrays rather than one Python step per overlap.

While a thread waits for the GIL, every other thread's holds and every stack change of the holder
cut the wait into pieces; with 64 threads mostly waiting, each hold is seen by ~60 waiters, so a
10 s recording makes ~12 million (waiter piece, holder piece) overlaps. Walking them one Python
generator step at a time took 11 s of a 36 s analysis (``benchmarks/RESULTS.md``, 2026-12-02).

Here, per process, the GIL's holder and the holder's stack make one step function of time, the
*context* timeline (``context[i]`` from ``starts[i]`` to ``starts[i + 1]``; a gap in the holds is
the context "nobody, empty stack"). Each waiter's GIL waits, cut by its own stack, are pieces; for
a batch of pieces, ``searchsorted`` finds the context segments each overlaps, the overlaps are
expanded into arrays, and ``bincount`` sums their lengths per (waiter stack, context). Nothing is
sampled or dropped: every overlap is summed, as the one-step-at-a-time walk did.

Holds of one process are taken in start order, each from where the previous ones ended (two
threads' ``running`` intervals do not overlap in a model built from one GIL's events; where a
sampled source makes them touch, the earlier hold wins).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from tracer.model.schema import GIL_WAIT, RUNNING, GilBlame, ThreadTimeline
from tracer.model.stacks import EMPTY, UNKNOWN, StackTimeline, StackTrie

Key = tuple[int, int]  # (pid, tid)
# Pieces shorter than this are clock noise between two sources, not time spent anywhere.
MIN_PIECE_S = 1e-9
NOBODY = -1  # the holder "nobody held it, or the recording cannot tell who did"
# Overlaps expanded at once: ~5 arrays of 8 bytes each, so ~160 MB at most, whatever the run's
# length (a 60 s run of 64 threads has ~70 million overlaps in all).
BATCH_OVERLAPS = 4_000_000

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def gil_blame(threads: Sequence[ThreadTimeline], timelines: Mapping[Key, StackTimeline],
              trie: StackTrie) -> list[GilBlame]:
    """Seconds per (waiter, waiter's stack, holder, holder's stack), largest first."""
    by_pid: dict[int, list[ThreadTimeline]] = defaultdict(list)
    for thread in threads:
        by_pid[thread.pid].append(thread)
    totals: dict[tuple[int, int, int | None, int], float] = defaultdict(float)
    for pid, members in by_pid.items():
        context = _Contexts.of(pid, members, timelines)
        for waiter in members:
            pieces = _wait_pieces(waiter, timelines.get((pid, waiter.tid)))
            if pieces is None:
                continue
            for (stack, holder, holder_stack), seconds in context.sums(*pieces).items():
                if holder == waiter.tid:  # overlapping records of one thread: not a holder
                    holder, holder_stack = NOBODY, EMPTY
                who = None if holder == NOBODY else holder
                totals[(waiter.tid, stack, who, holder_stack)] += seconds
    blame = [GilBlame(waiter, trie.stack(waiter_stack), holder, trie.stack(holder_stack),
                      round(total, 9))
             for (waiter, waiter_stack, holder, holder_stack), total in totals.items()
             if total >= MIN_PIECE_S]
    blame.sort(key=lambda b: -b.seconds)
    return blame


def _stack_steps(timeline: StackTimeline | None) -> tuple[Floats, Ints]:
    """A stack timeline as arrays, with ``UNKNOWN`` read as the empty stack (as where.py does)."""
    if timeline is None or not timeline.times:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    stacks = np.asarray(timeline.stacks, dtype=np.int64)
    return np.asarray(timeline.times, dtype=np.float64), np.where(stacks == UNKNOWN, EMPTY, stacks)


def _cut(starts: Floats, ends: Floats, times: Floats,
         stacks: Ints) -> tuple[Floats, Floats, Ints]:
    """Disjoint sorted spans ``[starts, ends)`` cut where the stack changes: (piece starts, piece
    ends, piece stacks); before the first change the stack is empty."""
    if not len(times):
        return starts, ends, np.full(len(starts), EMPTY, dtype=np.int64)
    first = np.searchsorted(times, starts, side="right")  # first change after each start
    last = np.searchsorted(times, ends, side="left")  # changes strictly inside: first..last-1
    inside = np.maximum(last - first, 0)
    span_of = np.repeat(np.arange(len(starts)), inside + 1)
    offset = np.arange(len(span_of)) - np.repeat(np.cumsum(inside + 1) - (inside + 1), inside + 1)
    change = first[span_of] + offset - 1  # the change in force at the piece's start; -1: none
    piece_starts = np.where(offset == 0, starts[span_of], times[np.maximum(change, 0)])
    is_last = np.r_[span_of[1:] != span_of[:-1], True] if len(span_of) else np.zeros(0, bool)
    piece_ends = np.where(is_last, ends[span_of], np.r_[piece_starts[1:], 0.0][:len(span_of)])
    piece_stacks = np.where(change >= 0, stacks[np.maximum(change, 0)], EMPTY)
    return piece_starts, piece_ends, piece_stacks.astype(np.int64)


def _wait_pieces(waiter: ThreadTimeline,
                 timeline: StackTimeline | None) -> tuple[Floats, Floats, Ints] | None:
    waits = [(iv.start, iv.end) for iv in waiter.intervals
             if iv.state == GIL_WAIT and iv.end > iv.start]
    if not waits:
        return None
    spans = np.asarray(sorted(waits), dtype=np.float64)
    return _cut(spans[:, 0], spans[:, 1], *_stack_steps(timeline))


class _Contexts:
    """One process's context timeline: who held the GIL, running which stack, as a step function
    over all time (before the first hold and after the last: nobody)."""

    def __init__(self, starts: Floats, holders: Ints, stacks: Ints) -> None:
        self.starts = starts
        self.ends = np.r_[starts[1:], np.inf]
        # contexts numbered densely, so (waiter stack, context) pairs fit one bincount
        pairs = np.stack([holders, stacks], axis=1)
        self.kinds, self.code = np.unique(pairs, axis=0, return_inverse=True)
        self.code = self.code.reshape(-1)

    @classmethod
    def of(cls, pid: int, members: Sequence[ThreadTimeline],
           timelines: Mapping[Key, StackTimeline]) -> _Contexts:
        holds = sorted((iv.start, iv.end, t.tid) for t in members for iv in t.intervals
                       if iv.state == RUNNING and iv.end > iv.start)
        spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
        covered = -np.inf
        for start, end, tid in holds:  # the earlier hold wins where two overlap
            start = max(start, covered)
            if end > start:
                spans[tid].append((start, end))
                covered = end
        parts_start: list[Floats] = [np.asarray([-np.inf])]
        parts_holder: list[Ints] = [np.asarray([NOBODY], dtype=np.int64)]
        parts_stack: list[Ints] = [np.asarray([EMPTY], dtype=np.int64)]
        ends: list[Floats] = []
        for tid, held in spans.items():
            array = np.asarray(held, dtype=np.float64)
            piece_starts, _, piece_stacks = _cut(
                array[:, 0], array[:, 1], *_stack_steps(timelines.get((pid, tid))))
            parts_start.append(piece_starts)
            parts_holder.append(np.full(len(piece_starts), tid, dtype=np.int64))
            parts_stack.append(piece_stacks)
            ends.append(array[:, 1])
        # a hold's end starts "nobody" unless the next hold begins there (then that one wins:
        # a stable sort puts the hold after the gap marker at the same instant)
        gap_starts = np.concatenate(ends) if ends else np.zeros(0)
        starts = np.concatenate([*parts_start[:1], gap_starts, *parts_start[1:]])
        holders = np.concatenate([parts_holder[0], np.full(len(gap_starts), NOBODY,
                                                           dtype=np.int64), *parts_holder[1:]])
        stacks = np.concatenate([parts_stack[0], np.full(len(gap_starts), EMPTY,
                                                         dtype=np.int64), *parts_stack[1:]])
        order = np.argsort(starts, kind="stable")
        starts, holders, stacks = starts[order], holders[order], stacks[order]
        keep = np.r_[starts[1:] > starts[:-1], True]  # of several at one instant, the last
        return cls(starts[keep], holders[keep], stacks[keep])

    def sums(self, starts: Floats, ends: Floats,
             stacks: Ints) -> dict[tuple[int, int, int], float]:
        """Seconds per (piece stack, holder, holder stack) over the pieces ``[starts, ends)``."""
        first = np.searchsorted(self.starts, starts, side="right") - 1
        last = np.searchsorted(self.starts, ends, side="left")  # segments first..last-1
        counts = np.maximum(last - first, 0)
        own, inverse = np.unique(stacks, return_inverse=True)
        inverse = inverse.reshape(-1)
        width = len(self.kinds)
        total = np.zeros(len(own) * width)
        bounds = np.cumsum(counts)
        begin = 0
        while begin < len(starts):  # batches of whole pieces, each at most BATCH_OVERLAPS
            base = bounds[begin - 1] if begin else 0
            stop = max(begin + 1, int(np.searchsorted(bounds, base + BATCH_OVERLAPS, "right")))
            total += self._batch(starts[begin:stop], ends[begin:stop], first[begin:stop],
                                 counts[begin:stop], inverse[begin:stop], len(own) * width)
            begin = stop
        out: dict[tuple[int, int, int], float] = {}
        for index in np.flatnonzero(total):
            stack, kind = divmod(int(index), width)
            holder, holder_stack = self.kinds[kind]
            out[(int(own[stack]), int(holder), int(holder_stack))] = float(total[index])
        return out

    def _batch(self, starts: Floats, ends: Floats, first: Ints, counts: Ints, stack: Ints,
               size: int) -> Floats:
        piece = np.repeat(np.arange(len(starts)), counts)
        segment = first[piece] + np.arange(len(piece)) - np.repeat(np.cumsum(counts) - counts,
                                                                   counts)
        length = (np.minimum(ends[piece], self.ends[segment])
                  - np.maximum(starts[piece], self.starts[segment]))
        key = stack[piece] * len(self.kinds) + self.code[segment]
        sums = np.bincount(key, weights=np.maximum(length, 0.0), minlength=size)
        return np.asarray(sums, dtype=np.float64)
