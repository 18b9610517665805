"""Waits the GIL samples cannot see whole: turns between two samples, counted from the GIL word's
switch counter and the threads' context-switch counters, and the bounds every figure keeps.

Most cases run a small simulator: a known schedule of who holds the GIL, who waits and who
sleeps, sampled at 1 kHz with the counters the kernel and CPython would show. Its true waits
are known exactly, so the tests assert what the samples must prove, never timing on this box.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.model.gil_exact import gil_metrics
from tracer.model.gil_sampled import analyse_samples, load_gil_samples, tick_cost_ns, tstate_map
from tracer.model.gil_turns import ThreadCounters, Turns, ran_between, waiter_turns
from tracer.model.gil_uncertainty import sampled_figures
from tracer.model.schema import GIL_WAIT, RUNNING, Interval

US = 1_000
MS = 1_000_000
T0 = 1_000 * MS
HOG, IO, IO2, MAIN = 101, 102, 103, 100
TSTATE = {MAIN: 0xF000, HOG: 0xA000, IO: 0xB000, IO2: 0xC000}
EVENTS: list[dict[str, Any]] = [
    {"ev": "main", "t_ns": T0 - MS, "tid": MAIN, "tstate": TSTATE[MAIN]},
    *({"ev": "start", "t_ns": T0 - MS, "tid": tid, "tstate": TSTATE[tid]}
      for tid in (HOG, IO, IO2)),
]


# -- a tiny GIL world -----------------------------------------------------------------------------


@dataclass
class _Thread:
    """What a thread does in the simulation, piece by piece: (state, start, end) with state one of
    held, wait (asleep on the GIL), sleep (asleep elsewhere), native (on a CPU without the GIL)."""

    tid: int
    pieces: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, state: str, start: int, end: int) -> None:
        if end > start:
            self.pieces.append((state, start, end))

    def at(self, t: int) -> str:
        for state, start, end in self.pieces:
            if start <= t < end:
                return state
        return "sleep"

    def counters(self, t: int) -> tuple[int, int]:
        """(times scheduled, on-CPU ns) up to ``t``: every awake stretch after a sleep is one
        scheduling; held and native time is on a CPU."""
        runs, cpu, asleep = 0, 0, True
        for state, start, end in self.pieces:
            if start >= t:
                break
            awake = state in ("held", "native")
            if awake and asleep:
                runs += 1
            asleep = not awake
            if awake:
                cpu += min(end, t) - start
        return runs, cpu

    def waits(self, lo: int, hi: int) -> list[tuple[int, int]]:
        return [(s, e) for state, s, e in self.pieces if state == "wait" and s < hi and e > lo]


def _convoy(seconds: float, *, waiters: tuple[int, ...], seed: int) -> dict[int, _Thread]:
    """A CPU-bound hog and echo-like waiters: each waits for the switch interval (5 ms), holds
    the GIL for 20-60 us, sleeps 150-300 us (its I/O), and waits again; the hog holds the GIL
    whenever no waiter does. Waiters start out of phase."""
    rng = random.Random(seed)
    end = T0 + int(seconds * 1e9)
    threads = {tid: _Thread(tid) for tid in (HOG, MAIN, *waiters)}
    threads[MAIN].add("sleep", T0, end)
    turns: list[tuple[int, int, int]] = []  # (start, end, tid) of the waiters' holds
    for n, tid in enumerate(waiters):
        t = T0 + n * 1_700 * US
        while t < end:
            wait = 5 * MS + rng.randrange(0, 400 * US)
            start = t + wait
            # holds never overlap: a waiter takes the GIL only when the other let it go
            while any(s <= start < e + 10 * US for s, e, _ in turns):
                start += 20 * US
            hold = rng.randrange(20 * US, 60 * US)
            threads[tid].add("wait", t, start)
            threads[tid].add("held", start, start + hold)
            turns.append((start, start + hold, tid))
            nap = rng.randrange(150 * US, 300 * US)
            threads[tid].add("sleep", start + hold, start + hold + nap)
            t = start + hold + nap
    at = T0
    for start, stop, _ in sorted(turns):
        threads[HOG].add("held", at, start)
        threads[HOG].add("sleep", start, stop)  # dropped on request, asleep until it is back
        at = stop
    threads[HOG].add("held", at, end)
    return threads


def _samples(threads: dict[int, _Thread], seconds: float, *, period: int = MS,
             seed: int = 0, fields: int = 5) -> list[dict[str, Any]]:
    """The GIL sampler's view: every ``period`` (with up to 50 us of jitter), each thread's code
    and counters, then the holder and the count of holder changes so far."""
    rng = random.Random(seed)
    holds = sorted((s, e, tid) for tid, th in threads.items()
                   for state, s, e in th.pieces if state == "held")
    out = []
    t = T0 + rng.randrange(0, period)
    end = T0 + int(seconds * 1e9)
    while t < end:
        rows = []
        for tid, thread in threads.items():
            state = thread.at(t)
            code = {"held": "R", "native": "R", "wait": "G", "sleep": "B"}[state]
            runs, cpu = thread.counters(t)
            rows.append((tid, code, 0, runs, cpu)[:fields])
        done = [h for h in holds if h[0] <= t]
        changes = sum(1 for a, b in zip(done, done[1:]) if a[2] != b[2])
        holder = done[-1][2] if done else HOG
        locked = int(any(s <= t < e for s, e, _ in holds))
        out.append({"t_ns": t, "holder": TSTATE[holder], "locked": locked,
                    "switch_number": changes, "threads": rows})
        t += period + rng.randrange(-50 * US, 50 * US)
    return out


def _true_waits(thread: _Thread, lo: int, hi: int) -> list[int]:
    return [e - s for s, e in thread.waits(lo, hi)]


def _analyse(threads: dict[int, _Thread], seconds: float, **kwargs: Any) -> Any:
    samples = _samples(threads, seconds, **kwargs)
    return analyse_samples(samples, tstate_map(EVENTS), T0, T0 + int(seconds * 1e9))


def _figures(analysed: Any, tid: int, seconds: float) -> tuple[dict[str, Any], Any]:
    timeline = analysed.timelines[tid]
    mine = gil_metrics({tid: timeline}, seconds).threads[tid]
    figures = sampled_figures(analysed.evidence[tid], 0.0, seconds, held_s=mine.held_s,
                              wait_s=mine.wait_s, waits=mine.waits,
                              max_wait_s=mine.max_wait_s)
    return mine, figures


# -- the counters' proofs -------------------------------------------------------------------------


def _row(code: str, runs: int, cpu: int) -> ThreadCounters:
    return ThreadCounters(0, code, 0, runs, cpu)


def test_a_waiter_woken_once_across_two_holder_changes_took_exactly_one_turn() -> None:
    # The hog held at both samples, the GIL changed hands twice, and only the waiter also ran:
    # the chain was hog -> waiter -> hog, so the waiter's first wait ended and a second began.
    before = {HOG: _row("R", 10, 900 * US), IO: _row("G", 5, 100 * US)}
    after = {HOG: _row("R", 11, 1800 * US), IO: _row("G", 7, 140 * US)}
    turns = waiter_turns(switches=2, g=IO, g_known=True, a=HOG, b=HOG,
                         ran=ran_between(before, after), wakes=2, cpu_ns=40 * US)
    assert (turns.low, turns.high, turns.turns_low) == (1, 1, 1)
    assert turns.estimate == pytest.approx(1.0)


def test_no_holder_change_or_no_wake_up_means_one_wait() -> None:
    ran = ran_between({HOG: _row("R", 1, 0), IO: _row("G", 1, 0)},
                      {HOG: _row("R", 2, MS), IO: _row("G", 2, 5 * US)})
    woken_by_its_timeout = waiter_turns(switches=0, g=IO, g_known=True, a=HOG, b=HOG, ran=ran,
                                        wakes=1, cpu_ns=5 * US)
    never_ran = waiter_turns(switches=4, g=IO, g_known=True, a=HOG, b=HOG, ran=ran, wakes=0,
                             cpu_ns=0)
    for turns in (woken_by_its_timeout, never_ran):
        assert turns == Turns(0, 0, 0.0, 0)


def test_with_a_second_waiter_the_turns_are_bounded_not_proven() -> None:
    # hog -> ? -> hog: the other waiter, which also ran, may have taken the turn.
    before = {HOG: _row("R", 1, 0), IO: _row("G", 1, 0), IO2: _row("G", 1, 0)}
    after = {HOG: _row("R", 2, MS), IO: _row("G", 3, 30 * US), IO2: _row("G", 3, 30 * US)}
    turns = waiter_turns(switches=2, g=IO, g_known=True, a=HOG, b=HOG,
                         ran=ran_between(before, after), wakes=2, cpu_ns=30 * US)
    assert (turns.low, turns.high) == (0, 1)
    assert 0 < turns.estimate < 1
    # An odd number of changes cannot be two others alternating from the hog back to it.
    odd = waiter_turns(switches=3, g=IO, g_known=True, a=HOG, b=HOG,
                       ran=ran_between(before, after), wakes=2, cpu_ns=30 * US)
    assert odd.turns_low == 1 and odd.low == 1


def test_an_unknown_holder_proves_nothing() -> None:
    before, after = {IO: _row("G", 1, 0)}, {IO: _row("G", 3, 10 * US)}
    turns = waiter_turns(switches=2, g=IO, g_known=True, a=None, b=HOG,
                         ran=ran_between(before, after), wakes=2, cpu_ns=10 * US)
    assert turns.low == 0 and turns.high == 1


def test_a_thread_on_a_cpu_counts_as_having_run_even_with_unchanged_totals() -> None:
    # The kernel updates a running thread's on-CPU total at its scheduler tick only.
    ran = ran_between({HOG: _row("R", 4, MS)}, {HOG: _row("R", 4, MS)})
    assert ran.count == 1
    asleep = ran_between({IO: _row("G", 4, MS)}, {IO: _row("G", 4, MS)})
    assert asleep.count == 0


# -- whole recordings -----------------------------------------------------------------------------


def test_a_context_switch_between_two_waiting_samples_makes_two_waits() -> None:
    # The waiter is seen waiting at 1 and 2 ms; in between it got the GIL from the hog (two
    # holder changes) and was woken twice: two waits, split where the turn was.
    rows = [
        (0, [(HOG, "R", 0, 1, 0), (IO, "G", 0, 1, 0)], 0, HOG),
        (1, [(HOG, "R", 0, 1, MS), (IO, "G", 0, 1, 0)], 0, HOG),
        (2, [(HOG, "R", 0, 2, 2 * MS), (IO, "G", 0, 3, 40 * US)], 2, HOG),
        (3, [(HOG, "R", 0, 2, 3 * MS), (IO, "G", 0, 3, 40 * US)], 2, HOG),
    ]
    samples = [{"t_ns": T0 + ms * MS, "holder": TSTATE[h], "locked": 1, "switch_number": n,
                "threads": threads} for ms, threads, n, h in rows]
    analysed = analyse_samples(samples, tstate_map(EVENTS), T0, T0 + 4 * MS)
    waits = [iv for iv in analysed.timelines[IO] if iv.state == GIL_WAIT]
    assert len(waits) == 2
    assert waits[0].end <= 2e-3 <= waits[1].start + 1e-3  # the split is between the samples
    mine, figures = _figures(analysed, IO, 4e-3)
    assert mine.waits == figures.gil_waits_low == figures.gil_waits_high == 2
    assert figures.hidden_turns == 1


def test_without_counters_old_recordings_still_load_and_stay_bounded(tmp_path: Path) -> None:
    threads = _convoy(0.2, waiters=(IO,), seed=3)
    path = tmp_path / "gil_samples.jsonl"
    lines = [json.dumps({"t": s["t_ns"], "h": s["holder"], "l": s["locked"],
                         "n": s["switch_number"], "th": [list(r) for r in s["threads"]]})
             for s in _samples(threads, 0.2, fields=3)]
    path.write_text("\n".join(lines) + "\n")
    samples = load_gil_samples(path)
    assert all(len(row) == 3 for row in samples[0]["threads"])
    analysed = analyse_samples(samples, tstate_map(EVENTS), T0, T0 + 200 * MS)
    _, figures = _figures(analysed, IO, 0.2)
    truth = len(_true_waits(threads[IO], T0, T0 + 200 * MS))
    assert figures.gil_waits_low <= truth
    assert figures.gil_waits_high is None or truth <= figures.gil_waits_high
    assert tick_cost_ns(path) is None  # no end record: the typical cost is assumed


@pytest.mark.parametrize("seed", range(5))
def test_the_convoy_waiter_is_counted_and_its_longest_wait_bounded(seed: int) -> None:
    seconds = 1.0
    threads = _convoy(seconds, waiters=(IO,), seed=seed)
    analysed = _analyse(threads, seconds, seed=seed)
    mine, figures = _figures(analysed, IO, seconds)
    truth = _true_waits(threads[IO], T0, T0 + int(seconds * 1e9))
    # Every hidden turn is proven here (one other thread, the hog): the count is known.
    assert figures.gil_waits_low <= len(truth) <= (figures.gil_waits_high or len(truth))
    assert abs(mine.waits - len(truth)) <= 0.1 * len(truth)
    longest = max(truth) / 1e9
    assert figures.max_gil_wait_low_s <= longest + 1e-3  # within one sample of the truth
    assert longest <= figures.max_gil_wait_high_s
    assert figures.max_gil_wait_high_s < 3 * longest  # and the bound is of use
    # Merging the samples alone would see about one wait per 1.7 round trips, each a few
    # switch intervals long: far from this.
    assert mine.max_wait_s < 2 * longest


@pytest.mark.parametrize("seed", range(5))
def test_two_convoy_waiters_are_estimated_and_their_truth_stays_inside_the_bounds(
        seed: int) -> None:
    seconds = 1.0
    threads = _convoy(seconds, waiters=(IO, IO2), seed=seed)
    analysed = _analyse(threads, seconds, seed=seed)
    for tid in (IO, IO2):
        mine, figures = _figures(analysed, tid, seconds)
        truth = _true_waits(threads[tid], T0, T0 + int(seconds * 1e9))
        assert figures.gil_waits_low <= len(truth) <= (figures.gil_waits_high or len(truth))
        assert abs(mine.waits - len(truth)) <= 0.3 * len(truth)
        assert max(truth) / 1e9 <= figures.max_gil_wait_high_s
        assert mine.max_wait_s <= figures.max_gil_wait_high_s


@pytest.mark.parametrize("seed", range(8))
def test_sampled_shares_fall_within_their_stated_uncertainty(seed: int) -> None:
    seconds = 1.0
    threads = _convoy(seconds, waiters=(IO,), seed=seed)
    analysed = _analyse(threads, seconds, seed=seed + 100)
    for tid in (HOG, IO):
        _, figures = _figures(analysed, tid, seconds)
        held = sum(e - s for state, s, e in threads[tid].pieces if state == "held") / 1e9
        wait = sum(e - s for state, s, e in threads[tid].pieces if state == "wait") / 1e9
        assert abs(figures.gil_held_share - held / seconds) <= figures.gil_held_share_pm
        assert abs(figures.gil_wait_share - wait / seconds) <= figures.gil_wait_share_pm
        assert figures.gil_wait_share_pm < 0.05  # and says something


# -- invariants on anything ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(
    st.integers(0, 400),  # time in 10 us steps
    st.sampled_from([HOG, IO, IO2, 0xDEAD]),
    st.integers(0, 1),
    st.integers(0, 3),  # holder changes since the previous sample
    st.lists(st.tuples(st.sampled_from([HOG, IO, IO2]), st.sampled_from("RGHB"),
                       st.integers(0, 2), st.integers(0, 300)), unique_by=lambda t: t[0],
             max_size=3),
), min_size=1, max_size=40, unique_by=lambda r: r[0]))  # fmt: skip
# unique instants: the sampler reads a monotonic clock per sample, so no two share one (two at one
# instant made the hidden-turn ticks and the wait evidence disagree on which came first)
def test_counts_and_longest_waits_stay_inside_their_bounds(
    raw: list[tuple[int, int, int, int, list[tuple[int, str, int, int]]]]
) -> None:
    samples, switches = [], 0
    counters: dict[int, list[int]] = {tid: [0, 0] for tid in (HOG, IO, IO2)}
    for t, holder, locked, changes, rows in sorted(raw, key=lambda r: r[0]):
        switches += changes
        threads = []
        for tid, code, woke, cpu_us in rows:
            counters[tid][0] += woke
            counters[tid][1] += cpu_us * US
            threads.append((tid, code, 0, counters[tid][0], counters[tid][1]))
        samples.append({"t_ns": T0 + t * 10_000, "holder": TSTATE.get(holder, holder),
                        "locked": locked, "switch_number": switches, "threads": threads})
    end = T0 + 5 * MS
    analysed = analyse_samples(samples, tstate_map(EVENTS), T0, end)
    for tid, timeline in analysed.timelines.items():
        _sorted_and_disjoint(timeline)
        mine = gil_metrics({tid: timeline}, 5e-3).threads[tid]
        evidence = analysed.evidence[tid]
        for lo, hi in evidence.certain:
            assert any(a <= lo and hi <= b for a, b in evidence.possible), (lo, hi)
        for iv in timeline:
            if iv.state == GIL_WAIT:  # every wait drawn lies where one wait could have been
                assert any(a - 1e-9 <= iv.start and iv.end <= b + 1e-9
                           for a, b in evidence.possible), iv
        proven = sum(p for lo, hi, p, _ in evidence.counts if lo < 5e-3 and hi > 0)
        assert proven <= mine.waits
        most = [m for lo, hi, _, m in evidence.counts if lo < 5e-3 and hi > 0]
        if None not in most:
            assert mine.waits <= sum(m for m in most if m is not None)


def _sorted_and_disjoint(intervals: list[Interval]) -> None:
    for x, y in zip(intervals, intervals[1:]):
        assert x.end <= y.start + 1e-12
    assert all(iv.end > iv.start for iv in intervals)
    assert all(iv.state in (RUNNING, GIL_WAIT, "native", "blocked", "cpu_wait")
               for iv in intervals)
