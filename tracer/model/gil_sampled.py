"""Sampled GIL timelines from ``raw/gil_samples.jsonl`` (written by
:mod:`tracer.recorders.gil_sampler`), shaped like :func:`tracer.model.gil_exact.gil_timelines` so
the same :func:`tracer.model.gil_exact.gil_metrics` applies to both, with what the samples prove
about each thread's waits and how sure each figure is.

A sample says, at one instant, which ``PyThreadState`` held the GIL and, per thread, whether it was
runnable (``R``), asleep on the GIL (``G``), asleep awaiting a forced hand-off (``H``) or asleep on
anything else (``B``), plus the thread's ``schedstat`` totals. It stands for the time until the
next sample. States, as gil_exact has them:

- the thread whose thread state is the holder (while ``locked``) -> ``running``, whatever its code:
  the GIL was read after the threads, so a thread seen waiting that holds it now has just got it;
- ``R`` otherwise -> ``native`` while it is on a CPU, ``cpu_wait`` while it waits in the run
  queue (gil_exact likewise tells a preempted thread from a sleeping one). A runnable thread's
  place cannot be seen at one instant, but the kernel adds each run-queue wait to ``rq_ns`` when
  the wait ends, so a growth of ``d`` between two samples is read as a wait over the ``d`` before
  the later one;
- ``G`` -> ``gil_wait``;
- ``H`` -> ``blocked``: it sleeps inside ``drop_gil`` until another thread has taken the GIL;
  gil_exact calls that stretch (after ``drop_gil``'s entry, off CPU) blocked too;
- ``B`` -> ``blocked``.

Waits. Samples of a thread waiting for the GIL that follow each other are one wait only if it did
not get the GIL in between; :mod:`tracer.model.gil_turns` says what the GIL word's switch counter
and the threads' context-switch counters prove about that. Where a turn is proven or estimated,
the wait is split by a turn of :data:`HIDDEN_TURN_NS` in the middle of the gap (when and how long
it held the GIL is not known; the held time the samples credit stays an unbiased estimate, since
a turn no sample saw is one that a sample would have caught had it fallen there). Runnable samples
between or after waiting samples that cannot have ended the wait (the waiter woken by its 5 ms
timeout, or losing the race for the GIL, or queued for a CPU) are part of the wait. Per thread
:class:`WaitEvidence` keeps the bounds: the waits the samples prove distinct, the most the
counters allow (a wait between two samples costs its thread a wake-up and a turn, which is at
most every other holder change), the longest stretch that was certainly one wait, and the
longest one wait can have lasted (from the last thing that proves it had not begun, a sample of
the thread holding the GIL or asleep elsewhere or a proven turn, to the first that proves it had
ended).

Boundaries. A sample stands for its gap, but the counters often say where in the gap a state
changed: a long hold ends once the thread's on-CPU and run-queue time since the sample are spent
(a thread holds the GIL only on a CPU or queued for one), one begins that much before the sample
that sees it, and a runnable thread seen just before a wait queued, ran, then slept on the GIL.
This matters more than it seems: the sampler's tick takes a CPU, so a thread woken just before a
tick is queued until just after it, and plain sampling would credit its wait to its queueing.
Holds seen in one sample only stay whole: they stand for the short holds no sample saw.

Shares and their uncertainty: :mod:`tracer.model.gil_uncertainty`.

Everything here is pure: values in, values out.
"""

from __future__ import annotations

import contextlib
import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import orjson

from tracer.errors import CorruptRecording
from tracer.model.gil import GilResult
from tracer.model.gil_turns import (
    BUSY_SHARE,
    Ran,
    ThreadCounters,
    Turns,
    hidden_waits_high,
    ran_between,
    waiter_turns,
    weight,
)
from tracer.model.gil_uncertainty import WaitEvidence
from tracer.model.rawfiles import read_jsonl
from tracer.model.schema import BLOCKED, CPU_WAIT, GIL_WAIT, NATIVE, RUNNING, Interval
from tracer.model.side_by_side import Pending, split_evenly, workers_available

_CODE_STATES = {"R": NATIVE, "G": GIL_WAIT, "H": BLOCKED, "B": BLOCKED}
# How a GIL turn that no sample saw is drawn between two waiting samples: 1 us, too short to
# change any share, long enough to end one wait interval and begin the next.
HIDDEN_TURN_NS = 1_000

_make_counters = tuple.__new__  # a NamedTuple without its __new__'s argument handling: fast
# The sampler's CPU time per tick when the recording does not say: 40-120 us were measured here
# with 4-9 threads (tracer.recorders.gil_sampler), so this errs on the high side.
TYPICAL_TICK_NS = 100_000
# The end record is among the last bytes of a samples file: read only those.
_TAIL_BYTES = 4096

# (tstate address, tid, valid from ns or None: since before the record, valid until ns or None)
TstateSpan = tuple[int, int, int | None, int | None]


def load_gil_samples(path: Path) -> list[dict[str, Any]]:
    """The ticks of a ``gil_samples.jsonl``, in time order, as ``{"t_ns", "holder", "locked",
    "switch_number", "threads": [(tid, code, rq_ns or None[, runs, cpu_ns]), ...], "syscalls":
    {tid: number}}``; ``runs`` and ``cpu_ns`` (schedstat's times scheduled and on-CPU time) are
    there when the recording has them, and ``syscalls`` (only when some thread was blocked) has
    the syscall each blocked thread slept in (:mod:`tracer.model.blocked` reads it), for
    recordings that wrote it.
    A truncated last line (the controller died mid-write) is dropped; anything else malformed
    raises CorruptRecording.

    A thread whose row did not change since the previous sample (asleep, and not scheduled:
    most threads of a service, most of the time) shares that sample's row object: 64 threads at
    1 kHz make ~4 million rows a minute, and one object per row held ~200 bytes each."""
    if not path.is_file():
        raise CorruptRecording(f"{path}: no such GIL samples file")
    samples: list[dict[str, Any]] = []
    last: dict[int, tuple[Any, ...]] = {}
    for number, record in enumerate(read_jsonl(path), 1):
        if "kind" in record:
            continue  # meta / end lines
        try:
            samples.append(_sample_from(record, last))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecording(f"{path}: record {number} is not a GIL sample ({exc})") from exc
    samples.sort(key=lambda s: s["t_ns"])
    return samples


def child_gil_addresses(path: Path) -> dict[int, int]:
    """pid -> where the GIL sampler found each child process's GIL (its ``child`` lines)."""
    found: dict[int, int] = {}
    if not path.is_file():
        return found
    for record in read_jsonl(path):
        if record.get("kind") == "child":
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found[int(record["pid"])] = int(record["gil_addr"])
    return found


def sampler_machine(path: Path) -> str | None:
    """The machine (``uname -m``) the samples' syscall numbers are for, from the meta line."""
    try:
        with path.open("rb") as raw:
            record = orjson.loads(raw.readline())
    except (OSError, orjson.JSONDecodeError):
        return None
    machine = record.get("machine") if isinstance(record, dict) else None
    return str(machine) if machine else None


def tick_cost_ns(path: Path) -> int | None:
    """The sampler's mean CPU time per tick, from the file's ``end`` record (None without one)."""
    try:
        with path.open("rb") as raw:
            raw.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            tail = raw.read().splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") == "end":
            ticks, cpu = record.get("ticks"), record.get("cpu_ns")
            if isinstance(ticks, int) and ticks > 0 and isinstance(cpu, int):
                return cpu // ticks
            return None
    return None


def _sample_from(record: Mapping[str, Any],
                 last: dict[int, tuple[Any, ...]] | None = None) -> dict[str, Any]:
    """One tick; ``last`` (tid -> that thread's previous row) lets an unchanged row be shared."""
    threads: list[tuple[Any, ...]] = []
    syscalls: dict[int, int] = {}
    for entry in record["th"]:
        tid, code = entry[0], entry[1]
        if code not in _CODE_STATES:
            raise ValueError(f"unknown thread code {code!r}")
        if len(entry) > 5:
            syscalls[int(tid)] = int(entry[5])
        if len(entry) > 4:  # the counters' own type: the analysis needs no copy of it
            row: tuple[Any, ...] = _make_counters(ThreadCounters, (
                int(tid), str(code), int(entry[2]), int(entry[3]), int(entry[4])))
        else:
            row = (int(tid), str(code), int(entry[2]) if len(entry) > 2 else None)
        if last is not None:
            previous = last.get(row[0])
            if previous == row and type(previous) is type(row):
                row = previous
            else:
                last[row[0]] = row
        threads.append(row)
    sample = {
        "t_ns": int(record["t"]),
        "holder": int(record["h"]),
        "locked": int(record["l"]),
        "switch_number": int(record["n"]),
        "threads": threads,
        "pid": int(record["p"]) if record.get("p") is not None else None,  # None: the target
    }
    if syscalls:
        sample["syscalls"] = syscalls
    return sample


def tstate_map(thread_events: Iterable[Mapping[str, Any]], pid: int | None = None
               ) -> list[TstateSpan]:
    """Which thread of process ``pid`` a PyThreadState address meant, and when, from
    ``threads.jsonl`` events (a forked child's threads log there too, under their own pid, and
    its addresses may repeat the parent's; an event without a pid is the target's).

    ``start``/``main`` events carry ``tstate``, and so do ``existing`` ones when an attach read
    the threads from outside (:mod:`tracer.attached_threads`); the matching ``end`` (same tid)
    closes it.
    CPython reuses a dead thread's address for the next thread, so a later start with the same
    address also closes the earlier span. The spans of the main thread and of threads that existed
    before the record have no start.
    """
    spans: list[list[Any]] = []
    open_by_tid: dict[int, list[Any]] = {}
    open_by_tstate: dict[int, list[Any]] = {}
    for event in sorted(thread_events, key=lambda e: e.get("t_ns", 0)):
        kind, tid, t_ns = event.get("ev"), event.get("tid"), event.get("t_ns")
        if not isinstance(tid, int) or (pid is not None and event.get("pid", pid) != pid):
            continue
        if kind in ("start", "main", "existing") and isinstance(event.get("tstate"), int):
            tstate = int(event["tstate"])
            previous = open_by_tstate.get(tstate)
            if previous is not None and previous[3] is None:
                previous[3] = t_ns
            # main, and threads found running when an attach began, existed before the record
            span = [tstate, tid, None if kind in ("main", "existing") else t_ns, None]
            spans.append(span)
            open_by_tid[tid] = span
            open_by_tstate[tstate] = span
        elif kind == "end" and tid in open_by_tid:
            open_by_tid.pop(tid)[3] = t_ns
    return [(s[0], s[1], s[2], s[3]) for s in spans]


class _HolderLookup:
    """tstate address at a time -> tid, using the spans of :func:`tstate_map`."""

    def __init__(self, tstates: Iterable[TstateSpan]) -> None:
        self._by_tstate: dict[int, list[TstateSpan]] = defaultdict(list)
        for span in tstates:
            self._by_tstate[span[0]].append(span)
        self.known = {span[1] for spans in self._by_tstate.values() for span in spans}

    def tid(self, tstate: int, t_ns: int) -> int | None:
        best: TstateSpan | None = None
        for span in self._by_tstate.get(tstate, ()):
            start, until = span[2], span[3]
            if (start is None or start <= t_ns) and (until is None or t_ns < until) and (
                best is None or (start or 0) >= (best[2] or 0)
            ):
                best = span
        return best[1] if best is not None else None


def sample_states(sample: Mapping[str, Any], holder_tid: int | None) -> dict[int, str]:
    """Per tid, the state one sample shows, before run-queue waits are taken into account."""
    return {
        entry[0]: RUNNING if entry[0] == holder_tid else _CODE_STATES[entry[1]]
        for entry in sample["threads"]
    }


@dataclass
class SampledGilResult(GilResult):
    """A sampled :class:`GilResult` that also carries each thread's :class:`WaitEvidence`."""

    evidence: dict[int, WaitEvidence] = field(default_factory=dict)


@dataclass
class SampledGil:
    timelines: dict[int, list[Interval]]
    evidence: dict[int, WaitEvidence]


def sampled_gil_timelines(
    samples: list[dict[str, Any]], tstates: Iterable[TstateSpan], t0_ns: int, end_ns: int
) -> dict[int, list[Interval]]:
    """Per tid, sorted non-overlapping intervals in seconds from ``t0_ns``, clipped to
    ``[t0_ns, end_ns]``: each sample's state lasts until the next sample (the last one for the
    median sampling period). A thread absent from a sample (not yet seen, or gone) has a gap."""
    return analyse_samples(samples, tstates, t0_ns, end_ns).timelines


def analyse_samples(
    samples: list[dict[str, Any]], tstates: Iterable[TstateSpan], t0_ns: int, end_ns: int,
    tick_ns: int | None = None, with_evidence: bool = True,
) -> SampledGil:
    """:func:`sampled_gil_timelines`, and what the samples prove about each thread's waits;
    ``tick_ns`` is the sampler's CPU time per tick (:func:`tick_cost_ns`; None: not known, then
    :data:`TYPICAL_TICK_NS`). ``with_evidence=False`` skips the bounds of the wait counts (the
    timelines are the same): what an exact recording needs only to fill its on-CPU stretches,
    a quarter of the analysis."""
    if end_ns < t0_ns:
        raise ValueError(f"end_ns {end_ns} is before t0_ns {t0_ns}")
    ticks = _Ticks(samples, _HolderLookup(tstates))
    ticks.tick_s = (tick_ns if tick_ns is not None else TYPICAL_TICK_NS) / 1e9
    seen = list(ticks.threads().items())
    rows = sum(len(positions) for _, positions in seen)
    parts = 1 + workers_available() if rows >= SIDE_BY_SIDE_ROWS else 1
    groups = split_evenly(seen, lambda thread: len(thread[1]), parts)

    def analyse(group: list[tuple[int, list[int]]]) -> list[_ThreadResult]:
        return [_analyse_thread(tid, positions, ticks, t0_ns, end_ns, with_evidence)
                for tid, positions in group]

    with contextlib.ExitStack() as stack:
        others = [stack.enter_context(Pending(partial(analyse, group))) for group in groups[1:]]
        found = {tid: (intervals, evidence)
                 for part in [analyse(groups[0]) if groups else []] + [p.result() for p in others]
                 for tid, intervals, evidence in part}
    timelines: dict[int, list[Interval]] = {}
    evidence: dict[int, WaitEvidence] = {}
    for tid, _ in seen:  # the order the threads were first seen in, however they were split
        intervals, proof = found[tid]
        if intervals:
            timelines[tid] = intervals
            evidence[tid] = proof
    return SampledGil(timelines, evidence)


# (tid, its intervals, its wait evidence)
_ThreadResult = tuple[int, list[Interval], WaitEvidence]
# Fewer thread-samples than this are analysed in one process: a fork of a big process and the
# results' trip back cost ~10-50 ms, and 100,000 rows take ~0.2 s.
SIDE_BY_SIDE_ROWS = 100_000


def _analyse_thread(tid: int, positions: list[int], ticks: _Ticks, t0_ns: int, end_ns: int,
                    with_evidence: bool) -> _ThreadResult:
    thread = _ThreadSamples(tid, positions, ticks, t0_ns, with_evidence)
    ticks.forget_turns()  # keyed by thread: never asked again (~100 MB a minute of 64)
    intervals: list[Interval] = []
    for start, end, state in thread.segments():
        start, end = max(start, t0_ns), min(end, end_ns)
        if end > start:
            _append(intervals, (start - t0_ns) / 1e9, (end - t0_ns) / 1e9, state)
    return tid, intervals, thread.evidence


_NO_TURNS = Turns(0, 0, 0.0, 0)


class _Ticks:
    """The samples in time order: holders as tids, each thread's counters, and (cached) which
    threads ran between two samples."""

    def __init__(self, samples: list[dict[str, Any]], holders: _HolderLookup) -> None:
        by_time = {s["t_ns"]: s for s in sorted(samples, key=lambda s: s["t_ns"])}
        ordered = list(by_time.values())  # two samples of one instant: the later read stands
        self.known = holders.known
        self.times: list[int] = [s["t_ns"] for s in ordered]
        self.switches: list[int] = [s["switch_number"] for s in ordered]
        # last_holder whether locked or not: the chain of holders starts and ends there
        self.holder: list[int | None] = [
            holders.tid(s["holder"], s["t_ns"]) if s["holder"] else None for s in ordered]
        self.running: list[int | None] = [
            h if s["locked"] else None for h, s in zip(self.holder, ordered)]
        self.rows: list[dict[int, ThreadCounters]] = [
            {row[0]: _counters(row) for row in s["threads"]} for s in ordered]
        gaps = [b - a for a, b in zip(self.times, self.times[1:])]
        self.last_span = int(median(gaps)) if gaps else 0
        self.ends = [*self.times[1:], self.times[-1] + self.last_span] if self.times else []
        self.period_s = math.sqrt(sum(g * g for g in gaps) / len(gaps)) / 1e9 if gaps else 0.0
        self.tick_s = 0.0
        self._ran: dict[tuple[int, int], Ran] = {}
        self._turns: dict[tuple[int, int, int], Turns] = {}

    def threads(self) -> dict[int, list[int]]:
        """Per tid, the indices of the samples that saw it."""
        seen: dict[int, list[int]] = defaultdict(list)
        for index, rows in enumerate(self.rows):
            for tid in rows:
                seen[tid].append(index)
        return seen

    def end(self, index: int) -> int:
        """Where sample ``index`` stops standing for its threads: the next sample."""
        return self.ends[index]

    def turns(self, tid: int, i: int, j: int) -> Turns:
        """What the counters prove about waits ``tid`` ended between samples ``i`` and ``j``."""
        known = self._turns.get((tid, i, j))
        if known is None:
            known = self._turns[(tid, i, j)] = self._count_turns(tid, i, j)
        return known

    def forget_turns(self) -> None:
        """Drop the cached turns of the thread just analysed (threads go one at a time)."""
        self._turns.clear()

    def _count_turns(self, tid: int, i: int, j: int) -> Turns:
        before, after = self.rows[i][tid], self.rows[j][tid]
        if before.code != "R" and self.running[i] != tid and before.runs == after.runs and (
                before.runs is not None):
            return _NO_TURNS  # asleep at the first sample and never scheduled since
        ran = self._ran.get((i, j))  # after the test above: most pairs never need it
        if ran is None:
            ran = self._ran[(i, j)] = ran_between(self.rows[i], self.rows[j])
        a, b = self.holder[i], self.holder[j]
        hog = weight(self.rows[i].get(a), self.rows[j].get(a)) if a is not None and a == b else 0
        return waiter_turns(
            switches=self.switches[j] - self.switches[i], g=tid, g_known=tid in self.known,
            a=a, b=b, ran=ran, wakes=_grew(before.runs, after.runs),
            cpu_ns=_grew(before.cpu_ns, after.cpu_ns), busy=self.busy(tid, i, j), hog_wakes=hog)

    def busy(self, tid: int, i: int, j: int) -> bool:
        """On a CPU for most of the stretch between samples ``i`` and ``j``: not waiting. Only
        asleep at both can tell: the kernel brings a running thread's on-CPU total up to date at
        its scheduler tick (every 4 ms at HZ=250), so for a thread on a CPU it lags."""
        before, after = self.rows[i][tid], self.rows[j][tid]
        if before.code == "R" or after.code == "R" or tid in (self.running[i], self.running[j]):
            return False
        if not _grew(before.runs, after.runs):
            return False  # asleep at both and never woken: it cannot have run
        cpu = _grew(before.cpu_ns, after.cpu_ns)
        return cpu is not None and cpu > BUSY_SHARE * (self.times[j] - self.times[i])


def _counters(row: tuple[Any, ...]) -> ThreadCounters:
    if isinstance(row, ThreadCounters):
        return row
    if len(row) > 4:
        return _make_counters(ThreadCounters, row[:5])
    return _make_counters(ThreadCounters, (row[0], row[1], row[2], None, None))


def _grew(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else max(after - before, 0)


class _ThreadSamples:
    """One thread through the samples that saw it: per-sample states, the waits they show (split
    where the counters prove or suggest a turn), and the evidence behind the counts and bounds."""

    def __init__(self, tid: int, positions: list[int], ticks: _Ticks, t0_ns: int,
                 with_evidence: bool = True) -> None:
        self.tid, self.at, self.ticks, self.t0 = tid, positions, ticks, t0_ns
        self.with_evidence = with_evidence
        self.rows = [ticks.rows[i][tid] for i in positions]
        self.codes = [row.code for row in self.rows]
        self.states = [RUNNING if ticks.running[i] == tid else _CODE_STATES[code]
                       for i, code in zip(positions, self.codes)]
        self.slivers: dict[int, list[int]] = {}  # position -> ns of the turns in its gap
        # position -> [(from ns, state), ...]: what the rest of its slot was, from the counters
        self.tails: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.evidence = WaitEvidence(ticks.period_s, ticks.tick_s)
        self._waits()
        if with_evidence:
            self._runs()
        self._place_boundaries()

    def _s(self, t_ns: int) -> float:
        return (t_ns - self.t0) / 1e9

    def _waiting(self, k: int) -> bool:
        return self.codes[k] == "G" and self.states[k] != RUNNING

    def _runnable(self, k: int) -> bool:
        return self.codes[k] == "R" and self.states[k] != RUNNING

    def _waits(self) -> None:
        """Link the waiting samples into waits, split them, and record the evidence."""
        ticks, at, ev = self.ticks, self.at, self.evidence
        points = [k for k in range(len(at)) if self._waiting(k)]
        linked: set[int] = set()  # positions k whose gap to k + 1 belongs to a linked span
        owed = 0.0  # rounding carried between spans, so estimates add up to their fractions
        cluster: list[Any] | None = None  # [first position, last position, proven, most]
        certain_from: int | None = None
        for p, q in zip(points, points[1:]):
            if at[q] - at[p] != q - p or not all(self._runnable(k) for k in range(p + 1, q)):
                # asleep elsewhere or holding in between, or not seen at all for a while
                self._close_cluster(cluster)
                self._close_certain(certain_from, p)
                cluster = certain_from = None
                continue
            turns = ticks.turns(self.tid, at[p], at[q])
            owed += turns.estimate
            split = math.floor(owed + 0.5)
            split = max(turns.low, split if turns.high is None else min(split, turns.high))
            owed -= split
            if cluster is None:
                cluster = [p, q, 1, 1]
            cluster[1] = q
            cluster[2] += turns.low
            cluster[3] = None if cluster[3] is None or turns.high is None else (
                cluster[3] + turns.high)
            linked.update(range(p, q))
            if split == 0:
                for k in range(p + 1, q):  # woken inside take_gil, not out of it
                    self.states[k] = GIL_WAIT
            else:
                extra = split if q == p + 1 else split - 1  # runnable samples split once
                if extra:
                    start, end = ticks.times[at[p]], ticks.end(at[p])
                    self.slivers[p] = [start + (end - start) * (n + 1) // (extra + 1)
                                       for n in range(extra)]
                    ev.hidden_turns.extend(self._s(t) for t in self.slivers[p])
            if certain_from is None:
                certain_from = p
            if turns.high != 0:
                self._close_certain(certain_from, p)
                certain_from = q
        self._close_cluster(cluster)
        self._close_certain(certain_from, points[-1] if points else None)
        for p in points:  # a wait seen in one sample only
            if p not in linked and (p == 0 or p - 1 not in linked):
                ev.counts.append((self._s(ticks.times[at[p]]), self._s(ticks.end(at[p])), 1, 1))
                ev.certain.append((self._s(ticks.times[at[p]]),) * 2)
        for p in points:
            if p not in linked:  # runnable samples inside a span were settled with it
                self._still_waiting_after(p)
        if self.with_evidence:  # bounds only: the states above do not depend on them
            self._hidden(linked)
            self._possible()

    def _still_waiting_after(self, p: int) -> None:
        """Runnable samples after a wait that cannot have ended it belong to it: the waiter was
        woken (by the holder's drop, or its timeout) and is queued for a CPU or re-checking."""
        k = p + 1
        while (k < len(self.at) and self.at[k] == self.at[k - 1] + 1 and self._runnable(k)
               and self.states[k] == NATIVE
               and self.ticks.turns(self.tid, self.at[p], self.at[k]).high == 0):
            self.states[k] = GIL_WAIT
            k += 1

    def _place_boundaries(self) -> None:
        """Where in a gap a thread's state changed, from its counters: a thread holds the GIL
        only while on a CPU or queued for one, so a hold seen at a sample lasted at most its
        on-CPU and run-queue time since (or before) it; a runnable thread seen before a wait
        (woken at most once in between) queued, ran, then slept on the GIL. Without this, each
        sample would stand for its whole gap, and the sampler itself biases that: its tick takes
        a CPU, so a thread woken just before it is queued until just after it."""
        ticks, at, states = self.ticks, self.at, self.states
        for k in range(len(at) - 1):
            i, j = at[k], at[k + 1]
            now, then = states[k], states[k + 1]
            if i + 1 != j or (now != RUNNING and then != RUNNING and (
                    now != NATIVE or then != GIL_WAIT)):
                continue
            before, after = self.rows[k], self.rows[k + 1]
            ran, queued = _grew(before.cpu_ns, after.cpu_ns), _grew(before.rq_ns, after.rq_ns)
            woke = _grew(before.runs, after.runs)
            if ran is None or queued is None or woke is None:
                continue
            start, end = ticks.times[i], ticks.times[j]
            # A hold seen in one sample only is kept whole: it stands for the holds as short
            # that no sample saw (module docstring), so only long holds get their ends placed.
            if states[k] == RUNNING and states[k + 1] != RUNNING and self._held_before(k):
                if start + ran + queued < end:
                    self.tails[k].append((start + ran + queued, states[k + 1]))
            elif states[k] != RUNNING and states[k + 1] == RUNNING and self._held_after(k + 1):
                if end - ran > start and not self.tails.get(k):
                    self.tails[k].append((end - ran, RUNNING))
            elif self._runnable(k) and states[k] == NATIVE and self._waiting(k + 1) and woke <= 1:
                self._queued_then_waited(k, start, end, ran, queued)

    def _held_before(self, k: int) -> bool:
        return k > 0 and self.at[k - 1] + 1 == self.at[k] and self.states[k - 1] == RUNNING

    def _held_after(self, k: int) -> bool:
        return (k + 1 < len(self.at) and self.at[k] + 1 == self.at[k + 1]
                and self.states[k + 1] == RUNNING)

    def _queued_then_waited(self, k: int, start: int, end: int, ran: int, queued: int) -> None:
        """A runnable sample followed by a wait: the queueing that ended after the sample began
        in the previous gap's time that its counters leave unaccounted (it was woken then), as
        far as that goes; then the thread ran, then it waited."""
        ticks, at = self.ticks, self.at
        earlier = 0
        if k > 0 and at[k - 1] + 1 == at[k]:
            prev = ticks.rows[at[k - 1]][self.tid]
            now = ticks.rows[at[k]][self.tid]
            used = (_grew(prev.cpu_ns, now.cpu_ns) or 0) + (_grew(prev.rq_ns, now.rq_ns) or 0)
            earlier = min(queued, max(0, start - ticks.times[at[k - 1]] - used))
        begin = start + ran + queued - earlier
        if begin >= end:
            return
        if earlier:
            self.tails[k - 1].append((start - earlier, CPU_WAIT))
        tail = self.tails[k]
        if queued > earlier:
            tail.append((start, CPU_WAIT))
        tail.append((start + queued - earlier, NATIVE))
        tail.append((begin, GIL_WAIT))

    def _close_cluster(self, cluster: list[Any] | None) -> None:
        if cluster is not None:
            first, last, proven, most = cluster
            start, end = self.ticks.times[self.at[first]], self.ticks.end(self.at[last])
            self.evidence.counts.append((self._s(start), self._s(end), proven, most))

    def _close_certain(self, first: int | None, last: int | None) -> None:
        if first is not None and last is not None and last >= first:
            t = self.ticks.times
            self.evidence.certain.append((self._s(t[self.at[first]]), self._s(t[self.at[last]])))

    def _hidden(self, linked: set[int]) -> None:
        """Waits that may have begun and ended between two samples without any sample seeing
        them: they count towards the most waits, never towards the proven ones."""
        ticks, at, rows, switches = self.ticks, self.at, self.rows, self.ticks.switches
        for k in range(len(at) - 1):
            before, after = rows[k], rows[k + 1]
            if k in linked or (before.runs is not None and before.runs == after.runs
                               and before.code != "R" and after.code != "R"):
                continue  # asleep, and not woken: no wait began or ended
            i, j = at[k], at[k + 1]
            ended = self._waiting(k) and not self._runnable(k + 1)
            most = hidden_waits_high(switches=switches[j] - switches[i],
                                     wakes=_grew(before.runs, after.runs), ended_one=ended)
            if most != 0:
                self.evidence.counts.append((self._s(ticks.times[i]), self._s(ticks.times[j]), 0,
                                             most))

    def _possible(self) -> None:
        """The longest any one wait can have lasted: the stretches between two things that prove
        the thread was not waiting (a sample of it holding the GIL or asleep elsewhere, a gap in
        which it was busy on a CPU or provably took the GIL), wherever it could have waited."""
        ticks, at, n = self.ticks, self.at, len(self.at)
        if not n:
            return
        times = ticks.times
        states, codes = self.states, self.codes
        proves = [state == RUNNING or code in ("B", "H") for state, code in zip(states, codes)]
        left, left_k, has_wait = times[at[0]] - ticks.last_span, 0, False
        for k in range(n):
            if proves[k]:
                if has_wait or left_k != k - 1 or k == 0 or not self._nothing_between(k - 1, k):
                    self._close_possible(left, at[left_k], times[at[k]], at[k], has_wait)
                left, left_k, has_wait = times[at[k]], k, False
                continue
            has_wait = has_wait or (codes[k] == "G")
            if k + 1 < n and not proves[k + 1] and not (
                    codes[k + 1] == "R" and states[k + 1] == GIL_WAIT) and self._cut(at[k],
                                                                                    at[k + 1]):
                self._close_possible(left, at[left_k], times[at[k + 1]], at[k + 1], has_wait)
                left, left_k, has_wait = times[at[k]], k, False
        self._close_possible(left, at[left_k], ticks.end(at[-1]), at[-1], has_wait)

    def _nothing_between(self, k: int, q: int) -> bool:
        """Between two adjacent samples that prove no wait, none can have fit: the thread slept
        throughout, or nobody else took the GIL."""
        if self.at[k] + 1 != self.at[q]:
            return False
        before, after = self.rows[k], self.rows[q]
        if before.runs is not None and before.runs == after.runs and "R" not in (before.code,
                                                                                 after.code):
            return True
        return self.ticks.switches[self.at[q]] == self.ticks.switches[self.at[k]]

    def _bridged(self, k: int) -> bool:
        """A runnable sample found to be inside a wait (it decided so already: no cut into it)."""
        return self.codes[k] == "R" and self.states[k] == GIL_WAIT

    def _not_waiting(self, k: int) -> bool:
        """A sample that proves the thread was not in a GIL wait at that instant."""
        return self.states[k] == RUNNING or self.codes[k] in ("B", "H")

    def _cut(self, i: int, j: int) -> bool:
        """No single wait lasted from sample ``i`` to sample ``j``."""
        return self.ticks.busy(self.tid, i, j) or self.ticks.turns(self.tid, i, j).turns_low > 0

    def _close_possible(self, start: int, start_i: int, end: int, end_i: int,
                        has_wait: bool) -> None:
        """Keep ``[start, end]`` if a wait can have been in it: one was seen, or the thread ran
        while another thread took the GIL."""
        if not has_wait:
            ticks = self.ticks
            before, after = ticks.rows[start_i].get(self.tid), ticks.rows[end_i].get(self.tid)
            if not weight(before, after) or ticks.switches[end_i] - ticks.switches[start_i] < 1:
                return
        self.evidence.possible.append((self._s(start), self._s(end)))

    def _runs(self) -> None:
        """Runs of consecutive samples in one state, for the quantisation error of shares."""
        ev, ticks = self.evidence, self.ticks
        ev.sample_times = array("d", [self._s(ticks.times[i]) for i in self.at])
        k = 0
        while k < len(self.at):
            state, first = self.states[k], k
            while (k + 1 < len(self.at) and self.states[k + 1] == state
                   and self.at[k + 1] == self.at[k] + 1):
                k += 1
            if state in (RUNNING, GIL_WAIT):
                runs = ev.held_runs if state == RUNNING else ev.wait_runs
                runs.append((self._s(ticks.times[self.at[first]]), self._s(ticks.end(self.at[k])),
                             k - first + 1))
            k += 1

    def segments(self) -> list[tuple[int, int, str]]:
        """(start, end, state) in ns: per-sample states with run-queue waits cut out of native
        stretches, the beginnings of waits found in runnable slots, and the estimated turns cut
        into waits."""
        slots, firsts = self._slots()
        out: list[tuple[int, int, str]] = []
        starts = [slot[0] for slot in slots]
        n, last = 0, len(starts) - 1
        for start, end, state in _split_run_queue_waits(slots):
            # Slots are disjoint and in order, and run-queue splitting cuts only inside a slot,
            # so a segment belongs to the slot that began at or before it.
            while n < last and starts[n + 1] <= start:
                n += 1
            k = firsts[n]
            tail = self.tails.get(k)
            if tail:
                cut = tail[0][0]
                if start < cut:
                    out.append((start, min(end, cut), state))
                if end >= slots[n][1]:  # the slot's last segment: then its tail
                    stops = [t for t, _ in tail[1:]] + [end]
                    out.extend((t, e, st) for (t, st), e in zip(tail, stops) if e > t)
                continue
            turns = self.slivers.get(k) if start == starts[n] else None
            if state != GIL_WAIT or not turns:
                out.append((start, end, state))
                continue
            at = start
            for middle in turns:
                lo = max(at, middle - HIDDEN_TURN_NS // 2)
                hi = min(end, middle + HIDDEN_TURN_NS // 2)
                if lo > at:
                    out.append((at, lo, GIL_WAIT))
                out.append((lo, hi, RUNNING))
                at = hi
            if at < end:
                out.append((at, end, GIL_WAIT))
        return out

    def _slots(self) -> tuple[list[_Slot], list[int]]:
        """One slot per sample, and the position each begins with; neighbours in one state that
        nothing cuts (not native, no turn or boundary placed in them, run-queue total unchanged)
        are one slot, which saves most of the work on threads that sleep for long stretches."""
        times, ends = self.ticks.times, self.ticks.ends
        slots: list[_Slot] = []
        firsts: list[int] = []
        for k, (i, state, row) in enumerate(zip(self.at, self.states, self.rows)):
            plain = state != NATIVE and k not in self.tails and k not in self.slivers
            if plain and slots and firsts[-1] not in self.tails and (
                    firsts[-1] not in self.slivers):
                start, end, previous, rq = slots[-1]
                if previous == state and end == times[i] and rq == row.rq_ns:
                    slots[-1] = (start, ends[i], state, rq)
                    continue
            slots.append((times[i], ends[i], state, row.rq_ns))
            firsts.append(k)
        return slots, firsts

# One thread in one sample: [start_ns, end_ns) in ``state``; ``rq_ns`` its run-queue total.
_Slot = tuple[int, int, str, int | None]


def _split_run_queue_waits(slots: list[_Slot]) -> list[tuple[int, int, str]]:
    """Slots as (start, end, state), with ``native`` stretches cut where the thread was in the run
    queue: a growth ``d`` of ``rq_ns`` seen at sample time ``t`` is a wait over ``[t - d, t]``."""
    waits = _run_queue_waits(slots)
    out: list[tuple[int, int, str]] = []
    w = 0  # waits are disjoint and sorted, and so are slots: one sweep
    for start, end, state, _ in slots:
        if state != NATIVE:
            out.append((start, end, state))
            continue
        while w < len(waits) and waits[w][1] <= start:
            w += 1
        at, k = start, w
        while k < len(waits) and waits[k][0] < end:
            wait_start, wait_end = max(waits[k][0], start), min(waits[k][1], end)
            if wait_start > at:
                out.append((at, wait_start, NATIVE))
            out.append((max(wait_start, at), wait_end, CPU_WAIT))
            at = wait_end
            k += 1
        if at < end:
            out.append((at, end, NATIVE))
    return out


def _run_queue_waits(slots: list[_Slot]) -> list[tuple[int, int]]:
    """Disjoint, sorted [start, end) ns in which the thread waited for a CPU."""
    waits: list[tuple[int, int]] = []
    for before, after in zip(slots, slots[1:]):
        if before[3] is None or after[3] is None or after[3] <= before[3]:
            continue
        start, end = after[0] - (after[3] - before[3]), after[0]
        while waits and waits[-1][1] >= start:  # a long wait swallows the ones it overlaps
            start = min(start, waits.pop()[0])
        waits.append((start, end))
    return waits


def _append(intervals: list[Interval], start: float, end: float, state: str) -> None:
    last = intervals[-1] if intervals else None
    if last is not None and last.state == state and last.end == start:
        last.end = end
    else:
        intervals.append(Interval(start, end, state))


def sampled_switches(samples: list[dict[str, Any]], t0_ns: int, end_ns: int) -> int:
    """Holder changes in ``[t0_ns, end_ns]``: the growth of ``switch_number`` between the first
    and last sample inside the window. ``take_gil`` counts a grant only when the new holder is not
    ``last_holder``, so this is the number of hand-offs between different threads, which
    :func:`tracer.model.gil_exact.gil_metrics` reports from intervals."""
    inside = [s["switch_number"] for s in sorted(samples, key=lambda s: s["t_ns"])
              if t0_ns <= s["t_ns"] <= end_ns]
    if len(inside) < 2:
        return 0
    return max(inside[-1] - inside[0], 0)
