"""Exact GIL waits and hand-offs from the kernel's futex tracepoint plus context switches.

Input is the text of ``perf script -F tid,pid,time,event,trace --ns --show-switch-events
--show-task-events`` (written by :mod:`tracer.recorders.perf_gil` as ``raw/perf_gil.txt``): the
target's ``futex`` calls on the GIL's own futex words (filtered in the kernel by address, see
:class:`tracer.instrument.gil_probe.FutexWords`), the ``futex`` calls that returned at once
(``EAGAIN``), each thread's context switches and its start and exit. Timestamps are
CLOCK_MONOTONIC (``perf record -k mono``).

Why futex events and not probes on ``take_gil``/``drop_gil``: a uprobe costs microseconds per hit
and those functions run on every GIL release, contended or not, so code that releases the GIL
often (sqlite, hashing small chunks, many small socket calls) ran 3-14x slower under them. A
thread only calls ``futex`` on the GIL when it must sleep for it or wake a sleeper, so these events
cost in proportion to real contention, and the kernel drops all the others before they are
recorded. What each event proves:

- ``wait`` (WAIT on the GIL's condition variable): the thread asked for the GIL and found it held
  by another thread: a GIL wait starts (or goes on: a waiter wakes every switch interval).
- ``mutex_wait`` (WAIT on the GIL's mutex): blocked inside the GIL's own bookkeeping; within a
  wait it is part of that wait.
- ``no_sleep`` (a ``futex`` that returned ``EAGAIN``): the thread's last futex call did not sleep.
- ``wake`` (WAKE on the condition variable): the thread released the GIL while others waited.
- ``handoff_wait`` (WAIT on ``switch_cond``): the thread was asked to drop the GIL and waits until
  another thread has taken it (it no longer holds it).
- ``handoff_wake`` (WAKE on ``switch_cond``): the thread has just taken the GIL from a holder
  that was asked to drop it.
- ``switch_out``/``preempted``/``switch_in``: off a CPU (asleep, or still runnable) / on one again.

From these, per thread: every GIL wait with its exact start and end (the end is the moment the
waiter woke and did not wait again), and the holds that contention brackets (from the end of a wait,
or a ``handoff_wake``, to the next ``wake``/``handoff_wait`` of the same thread). A release is
silent only when nobody waits, so a hold is proven only while other threads wanted the GIL: from
its start for as long as others kept waiting, and back from its release for as long as others had
been waiting without anyone else releasing it (:func:`_prove_holds`). The rest of a bracketed
hold, and a hold that ended without a release event, is ``on_cpu`` here (holding the GIL, or
running native code after a silent release): :mod:`tracer.model.gil` fills it from the GIL
sampler when it ran.

One ambiguity remains: a woken waiter that takes the GIL, holds it for a moment, releases it while
nobody waits and asks for it again looks like a waiter that woke and found the GIL taken again.
CPython's wait loop runs a few microseconds between two sleeps, so a woken waiter that spent more
than :data:`WAIT_LOOP_BOUND_NS` on a CPU before its next wait is read as two waits; shorter holds of
that kind stay inside one wait.

Everything here is pure: text in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_events import Ev, EventColumns, GilEvent
from tracer.model.gil_walk import (
    CPU_FALLBACK,
    WAIT_LOOP_BOUND_NS,
    WALK_STATES,
    GilWait,
    WalkOutput,
    walk_thread,
)
from tracer.model.schema import GIL_WAIT, RUNNING, Interval

# futex(2) commands, after masking FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256).
_FUTEX_CMD_MASK = ~(128 | 256)
_FUTEX_WAITS = frozenset({0, 9})  # FUTEX_WAIT, FUTEX_WAIT_BITSET
_FUTEX_WAKES = frozenset({1, 10})  # FUTEX_WAKE, FUTEX_WAKE_BITSET
EAGAIN_RETURN = -11  # what futex WAIT returns when the word changed before it could sleep

# ``  6536/6586    323.066705634: rest``; perf pads pid/tid on the left. The fraction is 9 digits
# with --ns and 6 without; both are read exactly (integers, never floats: a float of ~1e18 ns has
# no nanosecond precision left).
_LINE = re.compile(
    r"^\s*(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+(?P<sec>\d+)\.(?P<frac>\d{1,9}):\s*(?P<rest>.*)$"
)
_FUTEX_ENTER = re.compile(r"uaddr: (?P<uaddr>0x[0-9a-f]+), op: (?P<op>0x[0-9a-f]+)")
_TASK = re.compile(r"^PERF_RECORD_(?P<what>FORK|EXIT)\((?P<pid>-?\d+):(?P<tid>-?\d+)\)")
_UPROBE_NAMES = ("take_gil", "drop_gil")


class UprobeRecording(CorruptRecording):
    """A ``perf_gil.txt`` from a threadscope that probed take_gil/drop_gil: no longer read."""


class FutexClassifier:
    """Turns a futex call on one of the GIL's words into an :class:`Ev`."""

    def __init__(self, words: FutexWords) -> None:
        self._cond = frozenset(words.cond)
        self._switch = frozenset(words.switch)
        self._mutex = words.mutex

    def kind(self, uaddr: int, op: int) -> Ev | None:
        cmd = op & _FUTEX_CMD_MASK
        wait, wake = cmd in _FUTEX_WAITS, cmd in _FUTEX_WAKES
        if uaddr in self._cond:
            return Ev.WAIT if wait else Ev.WAKE if wake else None
        if uaddr in self._switch:
            return Ev.HANDOFF_WAIT if wait else Ev.HANDOFF_WAKE if wake else None
        if uaddr == self._mutex and wait:
            return Ev.MUTEX_WAIT
        return None


def parse_perf_script(lines: Iterable[str], words: FutexWords) -> list[GilEvent]:
    """Read ``perf script`` text (an iterable of lines) into events, in perf's (time) order.

    Lines for events this module does not use (``PERF_RECORD_COMM``, futex calls on other words,
    futex returns other than ``EAGAIN``) are skipped. A line that is not ``perf script`` output at
    all raises :class:`CorruptRecording`, and so does a recording made with the uprobes of older
    threadscope versions, which this model no longer reads.

    The three lines that make nearly all of a recording (a switch, a GIL futex call, a futex
    return) are read by splitting, not by the regular expressions, which took most of the time
    (a 64-thread 10 s run has 650,000 lines); anything else, or anything unusual about one of
    them, goes through :func:`_parse_line`, so both read every line alike.
    """
    classify = FutexClassifier(words)
    events: list[GilEvent] = []
    append = events.append
    for lineno, line in enumerate(lines, start=1):
        parsed = read_line(line, classify, lineno)
        if parsed is not None:
            append(parsed)
    return events


def read_line(line: str, classify: FutexClassifier, lineno: int) -> GilEvent | None:
    """One line's event (None: a line the model does not use), read the fast way when it can."""
    parsed = _fast_line(line, classify)
    return _parse_line(line, classify, lineno) if parsed is _UNREAD else parsed


_UNREAD = GilEvent(-1, -1, -1, Ev.START)  # "the fast path cannot read this line"
_SWITCH = "PERF_RECORD_SWITCH"
_ENTER = "syscalls:sys_enter_futex:"
_EXIT = "syscalls:sys_exit_futex:"


def _fast_line(line: str, classify: FutexClassifier) -> GilEvent | None:
    """A switch, futex call or futex return line, or :data:`_UNREAD` for anything else."""
    parts = line.split(None, 3)
    if len(parts) < 4:
        return _UNREAD
    ids, stamp, name, rest = parts
    if name != _SWITCH and name != _ENTER and name != _EXIT:
        return _UNREAD
    pid_text, slash, tid_text = ids.partition("/")
    sec, dot, frac = stamp[:-1].partition(".")
    if (not slash or not stamp.endswith(":") or not dot or not 0 < len(frac) <= 9
            or not sec.isdigit() or not frac.isdigit()):
        return _UNREAD
    try:
        pid, tid = int(pid_text), int(tid_text)
    except ValueError:
        return _UNREAD
    if name == _SWITCH:
        words = rest.split()
        if words[0] == "IN":
            kind: Ev | None = Ev.SWITCH_IN
        elif words[0] == "OUT":
            kind = Ev.PREEMPTED if "preempt" in words[1:] else Ev.SWITCH_OUT
        else:
            return None
    elif name == _ENTER:
        fields = rest.split(", ", 2)
        if len(fields) < 2 or not fields[0].startswith("uaddr: 0x") or not fields[1].startswith(
                "op: 0x"):
            return _UNREAD
        kind = classify.kind(int(fields[0][7:], 16), int(fields[1][4:], 16))
    else:
        try:
            value = int(rest.split(None, 1)[0], 16)
        except ValueError:
            return _UNREAD
        signed = value - (1 << 64) if value >= 1 << 63 else value
        kind = Ev.NO_SLEEP if signed == EAGAIN_RETURN else None
    if kind is None:
        return None
    return GilEvent(int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")), pid, tid, kind)


def _parse_line(line: str, classify: FutexClassifier, lineno: int) -> GilEvent | None:
    """One line by the regular expressions: the reference reading of every kind of line."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    match = _LINE.match(line)
    if match is None:
        raise CorruptRecording(f"perf script line {lineno} is not an event: {line[:80]!r}")
    pid, tid = int(match["pid"]), int(match["tid"])
    t_ns = int(match["sec"]) * 1_000_000_000 + int(match["frac"].ljust(9, "0"))
    kind = _kind_of(match["rest"], classify, lineno)
    if kind is None:
        return None
    if isinstance(kind, tuple):  # FORK/EXIT name the thread in their payload
        kind, pid, tid = kind
    return GilEvent(t_ns, pid, tid, kind)


def _kind_of(rest: str, classify: FutexClassifier,
             lineno: int) -> Ev | tuple[Ev, int, int] | None:
    if rest.startswith("PERF_RECORD_SWITCH"):
        # Per-thread switch records: the record's tid is the thread switching. OUT carries
        # "preempt" when the thread was still runnable (the kernel took the CPU away).
        words = rest.split()
        if len(words) < 2:
            return None
        if words[1] == "IN":
            return Ev.SWITCH_IN
        if words[1] == "OUT":
            return Ev.PREEMPTED if "preempt" in words[2:] else Ev.SWITCH_OUT
        return None
    task = _TASK.match(rest)
    if task is not None:
        # The record's own pid/tid is the parent for FORK; the parenthesis names the thread.
        kind = Ev.START if task["what"] == "FORK" else Ev.EXIT
        return kind, int(task["pid"]), int(task["tid"])
    name, _, payload = rest.partition(": ")
    name = name.strip().rstrip(":")
    if name.endswith("sys_enter_futex"):
        fields = _FUTEX_ENTER.search(payload)
        if fields is None:
            raise CorruptRecording(f"perf script line {lineno}: sys_enter_futex without uaddr/op")
        return classify.kind(int(fields["uaddr"], 16), int(fields["op"], 16))
    if name.endswith("sys_exit_futex"):
        try:
            value = int(payload.strip().split()[0], 16)
        except (IndexError, ValueError) as exc:
            raise CorruptRecording(f"perf script line {lineno}: sys_exit_futex without a "
                                   "return value") from exc
        signed = value - (1 << 64) if value >= 1 << 63 else value
        return Ev.NO_SLEEP if signed == EAGAIN_RETURN else None
    if any(probe in name for probe in _UPROBE_NAMES):
        raise UprobeRecording(
            "raw/perf_gil.txt was recorded with take_gil/drop_gil uprobes by an older "
            "threadscope, which this version no longer reads; record the run again for exact "
            "GIL figures")
    return None



# -- per-thread reconstruction ---------------------------------------------------------------------


@dataclass
class ThreadGil:
    """What the events prove about one thread: its states and its GIL waits."""

    intervals: list[Interval] = field(default_factory=list)
    waits: list[GilWait] = field(default_factory=list)


def reconstruct(events: Iterable[GilEvent], t0_ns: int, end_ns: int, *,
                pid: int | None = None) -> dict[int, ThreadGil]:
    """Per thread id: its states (seconds from ``t0_ns``, clipped to ``[t0_ns, end_ns]``) and its
    GIL waits (ns, the ones overlapping the window). Events outside the window still count: one
    after it can settle a stretch inside it (a release proves the hold before it). ``pid`` keeps
    only that process's threads (perf also follows child processes, each with its own GIL at its
    own address). Events of one instant keep their order in ``events``."""
    columns = EventColumns.from_events(events)
    return reconstruct_columns(columns if pid is None else columns.of_process(pid), t0_ns, end_ns)


def reconstruct_columns(events: EventColumns, t0_ns: int, end_ns: int) -> dict[int, ThreadGil]:
    """:func:`reconstruct` of one process's events held as columns."""
    if end_ns < t0_ns:
        raise ValueError(f"end_ns {end_ns} is before t0_ns {t0_ns}")
    walks = {tid: walk_thread(times, kinds, t0_ns, end_ns)
             for tid, times, kinds in events.thread_arrays()}
    proven = _prove_holds(walks, t0_ns, end_ns)
    out: dict[int, ThreadGil] = {}
    for tid, walk in walks.items():
        waits = [w for w in walk.waits if w.end_ns > t0_ns and w.start_ns < end_ns]
        intervals = _intervals(walk, proven[tid], t0_ns)
        if intervals or waits:
            out[tid] = ThreadGil(intervals, waits)
    return out


class _OthersWanting:
    """For each thread, the spans in which other threads wanted the GIL (waiting for it, or
    forced out and about to ask again), merged where at most ``gap_ns`` apart, and the latest
    release by another thread before a time. Built once for all threads: asked per thread from
    every other thread's spans, it took each thread a pass over all of them (64 threads x 60 s:
    64 passes over 2 million spans)."""

    def __init__(self, wanting: dict[int, list[tuple[int, int]]],
                 releases: dict[int, list[int]], gap_ns: int) -> None:
        spans = [(start, end, tid) for tid, mine in wanting.items() for start, end in mine]
        self._starts = np.array([span[0] for span in spans], dtype=np.int64)
        self._ends = np.array([span[1] for span in spans], dtype=np.int64)
        self._tids = np.array([span[2] for span in spans], dtype=np.int64)
        order = np.lexsort((self._ends, self._starts))
        self._starts, self._ends, self._tids = (self._starts[order], self._ends[order],
                                                self._tids[order])
        self._gap = gap_ns
        timed = sorted((t, tid) for tid, times in releases.items() for t in times)
        self._release_times = np.array([t for t, _ in timed], dtype=np.int64)
        self._release_tids = np.array([tid for _, tid in timed], dtype=np.int64)
        # the latest release before each one that another thread made than that one's
        other_before: list[int] = []
        tids = self._release_tids.tolist()
        for n, tid in enumerate(tids):
            other_before.append(n - 1 if n and tids[n - 1] != tid
                                else other_before[n - 1] if n else -1)
        self._other_before = np.array(other_before, dtype=np.int64)

    def merged(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends of the others' merged spans, sorted."""
        keep = self._tids != tid
        starts, ends = self._starts[keep], self._ends[keep]
        if not len(starts):
            return starts, ends
        reach = np.maximum.accumulate(ends)
        # a span begins a new merged one when it starts past the reach of those before it
        first = np.flatnonzero(np.r_[True, starts[1:] > reach[:-1] + self._gap])
        last = np.r_[first[1:] - 1, len(starts) - 1]
        return starts[first], reach[last]

    def last_release_before(self, tid: int, at: np.ndarray) -> np.ndarray:
        """Per time in ``at``, the latest release at or before it by a thread other than
        ``tid`` (-1 where there is none)."""
        if not len(self._release_times):
            return np.full(len(at), -1, dtype=np.int64)
        n = np.searchsorted(self._release_times, at, side="right") - 1
        mine = (n >= 0) & (self._release_tids[np.maximum(n, 0)] == tid)
        n = np.where(mine, self._other_before[np.maximum(n, 0)], n)
        return np.where(n >= 0, self._release_times[np.maximum(n, 0)], -1)


def _covering(starts: np.ndarray, ends: np.ndarray, at: np.ndarray, slack_ns: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per time in ``at``: whether a merged span covers it (or starts at most ``slack_ns``
    after it), and that span's start and end."""
    i = np.searchsorted(starts, at + slack_ns, side="right") - 1
    safe = np.maximum(i, 0)
    if not len(starts):
        return np.zeros(len(at), dtype=bool), at, at
    return (i >= 0) & (ends[safe] >= at), starts[safe], ends[safe]


# Emitted by the proof, beside the walk's own states (codes into _ASSEMBLED)
_RUNNING_CODE = len(WALK_STATES)
_ASSEMBLED: tuple[str, ...] = (*WALK_STATES, RUNNING)
_FALLBACK_CODE = np.array([-1 if state is None else WALK_STATES.index(state)
                           for state in CPU_FALLBACK], dtype=np.int8)
# sorted() of (start, end, state) tuples broke ties by the state's name: so does the sort here
_NAME_RANK = np.argsort(np.argsort(np.array(_ASSEMBLED)))


@dataclass(frozen=True)
class _Proven:
    """The pieces of one thread's holds, as the proof settled them: ns and codes into
    :data:`_ASSEMBLED`, clipped to the window."""

    start: np.ndarray
    end: np.ndarray
    state: np.ndarray


def _prove_holds(walks: dict[int, WalkOutput], t0_ns: int, end_ns: int) -> dict[int, _Proven]:
    """Each thread's bracketed holds as ``running`` where other threads' waits prove them.

    A thread releases the GIL silently only when nobody waits for it, so while others wait, the
    holder keeps it: a hold is proven from its start for as long as other threads kept wanting the
    GIL (waiting for it, or forced out and about to ask again), and back from its release for as
    long as others were waiting and no other thread released it. Gaps up to the wait loop's
    bound are bridged. Whatever is not proven takes the CPU state it had (``on_cpu`` or
    ``cpu_wait``). Per thread in arrays: a minute of 64 threads has ~a million holds."""
    others = _OthersWanting(
        {tid: [(w.start_ns, w.end_ns) for w in walk.waits] + walk.wants
         for tid, walk in walks.items()},
        {tid: walk.releases for tid, walk in walks.items()}, WAIT_LOOP_BOUND_NS)
    empty = np.zeros(0, dtype=np.int64)
    proven: dict[int, _Proven] = {}
    for tid, walk in walks.items():
        holds = len(walk.hold_known)
        if not holds:
            proven[tid] = _Proven(empty, empty, np.zeros(0, dtype=np.int8))
            continue
        starts, ends = others.merged(tid)
        # each hold's stretches are together and in order: its first and last
        count = np.bincount(walk.stretch_hold, minlength=holds)
        last = np.cumsum(count) - 1
        first = last - count + 1
        start, end = walk.stretch_start[first], walk.stretch_end[last]
        ahead, _, ahead_end = _covering(starts, ends, start, WAIT_LOOP_BOUND_NS)
        proven_to = np.where(ahead & walk.hold_known, np.minimum(end, ahead_end), start)
        behind, behind_start, _ = _covering(starts, ends, end, 0)
        # ...and nobody else released the GIL in between (then it was not this one's).
        other = others.last_release_before(tid, end)
        since = np.maximum(np.maximum(start, behind_start), np.where(other >= start, other, start))
        proven_from = np.where(behind, since, end)
        proven[tid] = _settle(walk, proven_to[walk.stretch_hold],
                              proven_from[walk.stretch_hold], t0_ns, end_ns)
    return proven


def _settle(walk: WalkOutput, proven_to: np.ndarray, proven_from: np.ndarray, t0_ns: int,
            end_ns: int) -> _Proven:
    """Each stretch of a hold cut at where its proof ends and resumes: ``running`` up to
    ``proven_to`` and from ``proven_from``, its CPU state between (nothing for an unknown one)."""
    lo, hi = walk.stretch_start, walk.stretch_end
    cut_to = np.clip(proven_to, lo, hi)
    cut_from = np.maximum(cut_to, np.clip(proven_from, lo, hi))
    fallback = _FALLBACK_CODE[walk.stretch_cpu]
    running = np.full(len(lo), _RUNNING_CODE, dtype=np.int8)
    start = np.concatenate([lo, cut_to, cut_from])
    end = np.concatenate([cut_to, cut_from, hi])
    state = np.concatenate([running, fallback, running])
    start, end = np.maximum(start, t0_ns), np.minimum(end, end_ns)
    keep = (end > start) & (state >= 0)
    return _Proven(start[keep], end[keep], state[keep])


def _intervals(walk: WalkOutput, proven: _Proven, t0_ns: int) -> list[Interval]:
    """The walk's stretches and the proven pieces as sorted intervals in seconds from ``t0_ns``,
    neighbours in one state joined."""
    start = np.concatenate([walk.out_start, proven.start])
    end = np.concatenate([walk.out_end, proven.end])
    state = np.concatenate([walk.out_state, proven.state])
    if not len(start):
        return []
    order = np.lexsort((_NAME_RANK[state], end, start))
    s, e, state = (start[order] - t0_ns) / 1e9, (end[order] - t0_ns) / 1e9, state[order]
    joins = (state[1:] == state[:-1]) & (np.abs(e[:-1] - s[1:]) < 1e-12)
    if np.any((s[1:] < e[:-1]) & ~joins):  # overlaps cannot happen; if they do, keep the order
        return _intervals_one_by_one(s.tolist(), e.tolist(), state.tolist())
    first = np.flatnonzero(np.r_[True, ~joins])
    last = np.r_[first[1:] - 1, len(s) - 1]
    names = _ASSEMBLED
    return [Interval(a, b, names[code]) for a, b, code in
            zip(s[first].tolist(), e[last].tolist(), state[first].tolist())]


def _intervals_one_by_one(starts: list[float], ends: list[float], states: list[int]
                          ) -> list[Interval]:
    intervals: list[Interval] = []
    for s, e, code in zip(starts, ends, states):
        last = intervals[-1] if intervals else None
        if last is not None and last.state == _ASSEMBLED[code] and abs(last.end - s) < 1e-12:
            last.end = e
        elif last is not None and s < last.end:
            continue
        else:
            intervals.append(Interval(s, e, _ASSEMBLED[code]))
    return intervals


def gil_timelines(events: Iterable[GilEvent], t0_ns: int, end_ns: int, *,
                  pid: int | None = None) -> dict[int, list[Interval]]:
    """Per thread id, its states as sorted, non-overlapping intervals (see :func:`reconstruct`)."""
    return {tid: thread.intervals
            for tid, thread in reconstruct(events, t0_ns, end_ns, pid=pid).items()
            if thread.intervals}


@dataclass(frozen=True)
class ThreadGilFigures:
    """One thread's GIL figures, from its intervals."""

    held_s: float = 0.0
    wait_s: float = 0.0
    waits: int = 0
    max_wait_s: float = 0.0


@dataclass(frozen=True)
class GilMetrics:
    """Run-wide and per-thread GIL figures of a set of timelines."""

    utilisation: float
    mean_waiters: float
    switches_per_s: float
    threads: dict[int, ThreadGilFigures]


def gil_metrics(timelines: dict[int, list[Interval]], wall_s: float) -> GilMetrics:
    """Run-wide and per-thread GIL figures from state timelines (exact or sampled alike).

    ``utilisation`` is the union of held time over the wall time (one GIL per process, so with
    a single process the union is the sum); ``mean_waiters`` is the time-average number of
    threads in ``gil_wait``; ``switches_per_s`` counts hand-offs, i.e. consecutive holds by
    different threads.
    """
    if wall_s <= 0:
        raise ValueError(f"wall_s must be positive, got {wall_s}")
    holds: list[tuple[float, float, int]] = []
    threads: dict[int, ThreadGilFigures] = {}
    total_wait = 0.0
    for tid, intervals in timelines.items():
        held = [iv for iv in intervals if iv.state == RUNNING]
        waits = [iv.duration for iv in intervals if iv.state == GIL_WAIT]
        holds.extend((iv.start, iv.end, tid) for iv in held)
        total_wait += sum(waits)
        threads[tid] = ThreadGilFigures(sum(iv.duration for iv in held), sum(waits), len(waits),
                                        max(waits, default=0.0))
    holds.sort()
    union = 0.0
    covered_to = float("-inf")
    switches = 0
    previous_tid: int | None = None
    for start, end, tid in holds:
        if end > covered_to:
            union += end - max(start, covered_to)
            covered_to = end
        if previous_tid is not None and tid != previous_tid:
            switches += 1
        previous_tid = tid
    return GilMetrics(union / wall_s, total_wait / wall_s, switches / wall_s, threads)
