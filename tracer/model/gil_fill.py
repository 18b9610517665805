"""Fill what the exact GIL events cannot know from the GIL sampler's view.

The exact recorder (futex events) proves every wait and every hold that contention brackets, but a
thread that holds the GIL while nobody waits for it leaves no event: it is ``on_cpu`` in the exact
timeline, holding the GIL or running native code, or ``cpu_wait`` when the OS preempted it there.
The sampler reads the GIL's holder at up to 1 kHz, so those stretches take its answer: on a CPU,
``running`` where it saw the thread hold the GIL and ``native`` where it saw it not hold it
(whatever else the sample said: the events know the thread was on a CPU); preempted, ``running``
where the sampler saw it holding the GIL (a holder preempted by the OS still holds it). One
correction: where the events prove another thread held the GIL, a sampled "holder" cannot be one,
and is ``native``. What neither source knows stays as the events have it.

Pure functions over intervals.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from tracer.model.schema import CPU_WAIT, NATIVE, ON_CPU, RUNNING, Interval
from tracer.model.states import overlay

_FILLABLE = frozenset({ON_CPU})
_PREEMPTED = frozenset({CPU_WAIT})


@dataclass(frozen=True)
class FillSummary:
    """How much of the on-CPU time the events left open, and how much the samples settled."""

    unknown_s: float  # on-CPU seconds the events could not assign (before filling)
    filled_s: float  # seconds the sampler settled as running or native (on a CPU or preempted)
    on_cpu_s: float  # running, native and on_cpu seconds after filling

    @property
    def sampled_share(self) -> float:
        """Share of the time threads held the GIL or ran without it whose GIL state came from
        samples."""
        return self.filled_s / self.on_cpu_s if self.on_cpu_s > 0 else 0.0


def fill_from_samples(exact: dict[int, list[Interval]],
                      sampled: dict[int, list[Interval]]) -> tuple[dict[int, list[Interval]],
                                                                    FillSummary]:
    """``exact`` with its ``on_cpu`` stretches settled by ``sampled`` where it can."""
    # Every thread's proven holds in one list, sorted once: each thread skips its own
    holds = sorted(((iv, tid) for tid, intervals in exact.items() for iv in intervals
                    if iv.state == RUNNING), key=lambda hold: hold[0].start)
    # the latest end among the first n holds: where the holds a piece may overlap begin
    reach = list(accumulate((hold[0].end for hold in holds), max))
    out: dict[int, list[Interval]] = {}
    unknown = filled = on_cpu = 0.0
    for tid, intervals in exact.items():
        before = _seconds(intervals, ON_CPU)
        unknown += before
        # On a CPU by the events, the sample's only news is whether it held the GIL: a sample
        # that says otherwise (waiting, or a stale "blocked" read before it woke) means native.
        top = _without_others_holds(
            [iv if iv.state in (RUNNING, NATIVE) else Interval(iv.start, iv.end, NATIVE)
             for iv in sampled.get(tid, [])], holds, reach, tid)
        merged = overlay(intervals, top, _FILLABLE) if top and before > 0 else list(intervals)
        filled += before - _seconds(merged, ON_CPU)
        running = [iv for iv in top if iv.state == RUNNING]
        if running and any(iv.state == CPU_WAIT for iv in merged):
            preempted = _seconds(merged, CPU_WAIT)
            merged = overlay(merged, running, _PREEMPTED)
            filled += preempted - _seconds(merged, CPU_WAIT)
        on_cpu += sum(_seconds(merged, state) for state in (RUNNING, NATIVE, ON_CPU))
        out[tid] = merged
    return out, FillSummary(unknown_s=unknown, filled_s=filled, on_cpu_s=on_cpu)


def _seconds(intervals: list[Interval], state: str) -> float:
    return sum(iv.duration for iv in intervals if iv.state == state)


def _without_others_holds(top: list[Interval], holds: list[tuple[Interval, int]],
                          reach: list[float], tid: int) -> list[Interval]:
    """Sampled ``running`` pieces turned ``native`` wherever a thread other than ``tid``
    provably held the GIL (``holds``: every thread's, with its tid, sorted by start; ``reach``:
    the running maximum of their ends)."""
    out: list[Interval] = []
    for piece in sorted(top, key=lambda iv: iv.start):
        if piece.state != RUNNING:
            out.append(piece)
            continue
        # the first hold that ends after the piece begins (every earlier one ends before it)
        at, j = piece.start, bisect_right(reach, piece.start)
        while j < len(holds) and holds[j][0].start < piece.end:
            other, holder = holds[j]
            j += 1
            if holder == tid:
                continue
            lo, hi = max(other.start, at), min(other.end, piece.end)
            if lo > at:
                out.append(Interval(at, lo, RUNNING))
            if hi > lo:
                out.append(Interval(lo, hi, NATIVE))
            at = max(at, hi)
        if at < piece.end:
            out.append(Interval(at, piece.end, RUNNING))
    return out
