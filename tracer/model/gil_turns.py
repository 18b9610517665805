"""What two GIL samples prove about the turns a thread took between them, which no sample saw.

A thread seen waiting for the GIL in two samples 1 ms apart may have got the GIL in between, run
for a few microseconds (an echo round trip: take the GIL, send, drop it, block in ``recv``, come
back) and waited again: two waits, not one. No sample sees such a turn, but three counters do:

- the GIL word's ``switch_number`` grows by one each time ``take_gil`` gives the GIL to a thread
  other than ``last_holder``: its growth ``D`` between two samples is the number of holder
  changes, i.e. the length of the chain ``a -> x1 -> ... -> b`` of holders, from the holder ``a``
  at the first sample to ``b`` at the second, no two neighbours equal;
- a thread whose ``schedstat`` did not change between the samples never ran, so it is in no
  chain; one that ran may be in it any number of times;
- a GIL wait is a request that found the GIL held: the thread sleeps on the GIL's condition
  variable and must be woken to end it, so a thread ends at most as many waits between two samples
  as ``schedstat``'s count of times it was scheduled grew. And take_gil burns no CPU while it
  waits: a thread on a CPU for most of the stretch was not waiting through it.

So the turns a waiter ``g`` (neither ``a`` nor ``b``) took between the samples are at most
``D // 2`` (no two of its turns are neighbours in the chain), and at least what the chain cannot
do without it: with one other thread ``h`` that ran (a CPU-bound thread that holds the GIL at
both samples, the convoy), the chain alternates ``h, g, h, g, ..., h`` and ``g`` took exactly
``D // 2`` turns; with two others it needs ``g`` once when the parity of ``D`` does not fit their
alternation; with three or more it may not need ``g`` at all. Each turn ends one wait and the
wait seen at the second sample is a new one, so the samples then show ``1 + new waits`` waits,
``new waits`` between ``1`` (one turn proven) and ``min(turns, wakes)``.

Where the bounds differ, the estimate shares the chain's entries among the threads that could
take them in proportion to how often each was woken (a GIL turn costs the sleeping thread a
wake-up): with a thread holding the GIL at both samples, it gets every other entry and the rest
is shared. The estimate stays inside the bounds; the bounds are what a reader may rely on.

Everything here is pure: counters in, bounds out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

# A thread on a CPU for more than this share of the stretch between two samples cannot have been
# waiting for the GIL all along: a waiter sleeps, and each wake-up costs it a few microseconds.
BUSY_SHARE = 0.5


class ThreadCounters(NamedTuple):
    """One thread in one sample: its code and the ``schedstat`` totals the sampler read."""

    tid: int
    code: str  # R, G, H or B (tracer.recorders.gil_sampler.CODES)
    rq_ns: int | None  # run-queue wait
    runs: int | None  # times scheduled (None: a recording made before the field was written)
    cpu_ns: int | None  # on-CPU time


@dataclass(frozen=True)
class Taker:
    """A thread that ran between two samples, as a possible holder in the chain between them."""

    tid: int
    entries: float | None  # the turns its codes imply it took (None: they say nothing)
    weight: int  # its wake-ups, at least 1: how the entries nobody is known to have are shared


@dataclass(frozen=True)
class Ran:
    """Which threads ran between two samples (``takers`` lists them while there are few)."""

    count: int
    takers: tuple[Taker, ...] | None  # None: more than RAN_SET_LIMIT threads
    wakes: int  # the sum of their weights

    @property
    def tids(self) -> frozenset[int] | None:
        return None if self.takers is None else frozenset(t.tid for t in self.takers)

    def others(self, g: int, endpoints: frozenset[int]) -> tuple[int, frozenset[int] | None]:
        """How many threads other than ``g`` could have held the GIL in between (those that ran,
        and the holders at the two samples), and which, while there are few."""
        tids = self.tids
        if tids is None:
            return self.count + len(endpoints), None
        group = (tids | endpoints) - {g}
        return len(group), group


RAN_SET_LIMIT = 4
UNKNOWN_HOLDER = -1  # a holder address no thread is known by: some thread, but not the waiter


def ran_between(before: dict[int, ThreadCounters], after: dict[int, ThreadCounters]) -> Ran:
    """The threads whose counters say (or cannot rule out) that they ran between two samples."""
    takers: list[Taker] = []
    wakes = 0
    for tid, now in after.items():
        then = before.get(tid)
        if then is not None and then.runs == now.runs and then.cpu_ns == now.cpu_ns \
                and then.runs is not None and then.code != "R" and now.code != "R":
            continue  # asleep at both, never scheduled in between: the common case, made quick
        mine = weight(then, now)
        if mine:
            takers.append(Taker(tid, implied_entries(then, now), mine))
            wakes += mine
    for tid in before.keys() - after.keys():  # gone by the second sample: it ran to exit
        takers.append(Taker(tid, None, 1))
        wakes += 1
    return Ran(len(takers), tuple(takers) if len(takers) <= RAN_SET_LIMIT else None, wakes)


def implied_entries(then: ThreadCounters | None, now: ThreadCounters) -> float | None:
    """The GIL turns a thread's codes at two samples imply it took in between, for the estimate.

    Waiting at the first and asleep elsewhere at the second: it got the GIL to leave the wait
    (at least one). Asleep elsewhere at both, woken in between: back in a blocking call, which
    takes a turn of Python code (one, unless the wake-up was spurious). Asleep elsewhere, then
    waiting after a single wake-up: the wake-up ended the call and the GIL was held when it
    asked (none, unless it found the GIL free once first). Anything else says nothing."""
    if then is None or then.runs is None or now.runs is None:
        return None
    woke = now.runs - then.runs
    if then.code == "G" and now.code in ("B", "H"):
        return 1.0
    if then.code == "B" and now.code == "B" and woke >= 1:
        return 1.0
    if then.code == "B" and now.code == "G" and woke <= 1:
        return 0.0
    return None


def weight(then: ThreadCounters | None, now: ThreadCounters | None) -> int:
    """A thread's weight in :attr:`Ran.wakes`: its wake-ups between two samples, at least 1 if it
    ran, 0 if it did not."""
    if now is None:
        return 1 if then is not None else 0
    woke = _woke(then, now)
    return 0 if woke is None else max(woke, 1)


def _woke(then: ThreadCounters | None, now: ThreadCounters) -> int | None:
    """How many times the thread was scheduled in between (0 if it ran without being switched),
    or None if it did not run at all."""
    if then is None:
        return 0  # new since the first sample: it ran
    if now.runs is not None and then.runs is not None and now.cpu_ns is not None and (
        then.cpu_ns is not None
    ):
        # A thread on a CPU can show unchanged totals: the kernel updates its on-CPU time at
        # scheduler ticks. Only one asleep at both samples with nothing changed did not run.
        if now.runs == then.runs and now.cpu_ns == then.cpu_ns and "R" not in (now.code,
                                                                               then.code):
            return None
        return max(now.runs - then.runs, 0)
    # An older recording (no counters): only an unchanged sleeping state says it did not run.
    if now.code == then.code and now.code != "R" and now.rq_ns == then.rq_ns:
        return None
    return 0


@dataclass(frozen=True)
class Turns:
    """Between two samples in which a thread waited for the GIL: the waits it ended, as proven
    (``low``), as possible (``high``; None: nothing bounds it) and as estimated (``estimate``, a
    fraction the caller rounds)."""

    low: int
    high: int | None
    estimate: float
    turns_low: int  # GIL turns the chain proves the thread took


def waiter_turns(*, switches: int | None, g: int, g_known: bool, a: int | None, b: int | None,
                 ran: Ran, wakes: int | None, cpu_ns: int | None, busy: bool = False,
                 hog_wakes: int = 0) -> Turns:
    """What the counters prove about a thread ``g`` that waited at two samples.

    ``switches`` is the growth of ``switch_number`` (None: unusable), ``a``/``b`` the holders at
    the samples (None: unknown), ``g_known`` whether ``g``'s thread state is known (else the
    holders cannot be told from it), ``wakes`` and ``cpu_ns`` the growth of its ``schedstat``
    (None: not recorded), ``busy`` whether it was on a CPU for most of the stretch (which only
    counters read while it slept can say), ``hog_wakes`` the weight :func:`ran_between` gave
    ``a`` when ``a`` is also ``b`` (0 if it did not run).
    """
    if wakes is not None and cpu_ns is not None and wakes == 0 and cpu_ns == 0:
        return Turns(0, 0, 0.0, 0)  # it never ran: the same wait throughout
    endpoints = frozenset(UNKNOWN_HOLDER if x is None else x for x in (a, b))
    clear = g_known and g not in endpoints and switches is not None and switches >= 0
    if clear:
        assert switches is not None
        turns_high: int | None = switches // 2
        turns_low = _turns_low(switches, g, a, b, ran, endpoints)
    else:  # g may be a holder at a sample: it can have taken one more turn
        turns_high = (switches + 1) // 2 if switches is not None and switches >= 0 else None
        turns_low = 0
    if busy:
        turns_low = max(turns_low, 1)
    if turns_high is not None and turns_high < turns_low:  # counters read at slightly different
        turns_high = turns_low  # instants disagree by one; trust the proof
    high = _least(turns_high, wakes)
    low = min(1 if turns_low else 0, high if high is not None else 1)
    estimate = _estimate(switches, g, a, b, ran, wakes, hog_wakes, turns_low, turns_high)
    estimate = min(estimate, high) if high is not None else estimate
    return Turns(low, high, max(estimate, float(low)), turns_low)


def _turns_low(switches: int, g: int, a: int | None, b: int | None, ran: Ran,
               endpoints: frozenset[int]) -> int:
    """The fewest turns ``g`` can have taken in a chain of ``switches`` holder changes from ``a``
    to ``b`` when only the threads that ran (and ``a``, ``b``) could hold the GIL."""
    if switches < 2 or a is None or b is None:
        return 0  # an unknown holder may stand for several threads
    count, group = ran.others(g, endpoints)
    if count <= 1:
        return switches // 2  # h, g, h, g, ..., h: every other holder was g
    if count == 2 and group is not None:
        # Two others alternate x, y, x, ...: from a back to a takes an even number of changes,
        # from a to the other an odd one; otherwise g (or nobody we know of) fills one place.
        fits = (switches % 2 == 0) == (a == b)
        return 0 if fits else 1
    return 0


def _estimate(switches: int | None, g: int, a: int | None, b: int | None, ran: Ran,
              wakes: int | None, hog_wakes: int, low: int, high: int | None) -> float:
    """``g``'s expected share of the chain's entries, inside ``[low, high]``.

    With a thread holding the GIL at both samples (the hog), the chain most likely alternates
    with it, so the others share ``ceil(D / 2)`` entries; else every one of the ``D - 1``
    entries between the two holders is shared. Threads whose codes imply their turns
    (:func:`implied_entries`) take those; the rest go to ``g`` and the threads whose codes say
    nothing, in proportion to their wake-ups."""
    if switches is None or switches < 2:
        return float(low)
    mine = max(wakes or 0, 1)
    hog = a if a is not None and a == b and a != g else None
    entries = float((switches + 1) // 2 if hog is not None else switches - 1)
    if ran.takers is None:
        others = ran.wakes - mine - (hog_wakes if hog is not None else 0)
    else:
        fixed, others = 0.0, 0
        endpoints = {a, b} if hog is None else set()
        for taker in ran.takers:
            if taker.tid in (g, hog):
                continue
            if taker.entries is not None and taker.tid not in endpoints:
                fixed += taker.entries
            else:
                others += taker.weight
        entries = max(entries - fixed, 0.0)
    share = entries * mine / (mine + max(others, 0))
    upper = high if high is not None else math.inf
    return min(max(share, float(low)), float(upper))


def _least(x: int | None, y: int | None) -> int | None:
    if x is None:
        return y
    if y is None:
        return x
    return min(x, y)


def hidden_waits_high(*, switches: int | None, wakes: int | None, ended_one: bool) -> int | None:
    """Most waits a thread can have begun and ended between two samples that show no wait
    continuing across them: each costs it a turn (at most every other holder change) and a
    wake-up; ``ended_one`` when one of those was the end of a wait seen at the first sample."""
    turns = (switches + 1) // 2 if switches is not None and switches >= 0 else None
    most = _least(turns, wakes)
    if most is None:
        return None
    return max(most - (1 if ended_one else 0), 0)
