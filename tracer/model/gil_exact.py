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

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_events import Ev, EventColumns, GilEvent
from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    ON_CPU,
    RUNNING,
    Interval,
)

# futex(2) commands, after masking FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256).
_FUTEX_CMD_MASK = ~(128 | 256)
_FUTEX_WAITS = frozenset({0, 9})  # FUTEX_WAIT, FUTEX_WAIT_BITSET
_FUTEX_WAKES = frozenset({1, 10})  # FUTEX_WAKE, FUTEX_WAKE_BITSET
EAGAIN_RETURN = -11  # what futex WAIT returns when the word changed before it could sleep
# take_gil's loop between two futex sleeps (re-take the mutex, check the GIL, ask for a drop) ran
# 2-25 us on a CPU here (p99 ~40 us under uprobes, which slow it); a thread awake longer than this
# before its next wait did something else, i.e. it got the GIL in between.
WAIT_LOOP_BOUND_NS = 50_000

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


class _Phase(Enum):
    IDLE = "idle"  # neither waiting for the GIL nor in a hold the events bracket
    WAITING = "waiting"  # in a GIL wait, asleep or about to sleep in its futex
    WOKEN = "woken"  # in a GIL wait, woken: either it got the GIL or it will wait again
    HOLD = "hold"  # took the GIL for sure (handoff_wake); confirmed if a release follows


class _Cpu(Enum):
    UNKNOWN = "unknown"
    ON = "on"
    ASLEEP = "asleep"
    PREEMPTED = "preempted"


@dataclass(frozen=True, slots=True)
class _Hold:
    """A hold bracketed by its thread's own events: its stretches (start, end, cpu), from the
    moment it took the GIL to the release that proved it held it."""

    stretches: list[tuple[int, int, _Cpu]]
    start_known: bool  # it began when the thread took the GIL (after a wait, or a hand-off)

    @property
    def start(self) -> int:
        return self.stretches[0][0]

    @property
    def end(self) -> int:
        return self.stretches[-1][1]


@dataclass(frozen=True, slots=True)
class GilWait:
    """One GIL wait of one thread: ``[start_ns, end_ns]``; ``slept`` unless it never blocked."""

    start_ns: int
    end_ns: int
    slept: bool

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class ThreadGil:
    """What the events prove about one thread: its states and its GIL waits."""

    intervals: list[Interval] = field(default_factory=list)
    waits: list[GilWait] = field(default_factory=list)


def _cpu_state(cpu: _Cpu) -> str | None:
    """The state of a stretch in which the thread neither waits for nor provably holds the GIL."""
    return {_Cpu.ON: ON_CPU, _Cpu.ASLEEP: BLOCKED, _Cpu.PREEMPTED: CPU_WAIT}.get(cpu)


class _ThreadWalk:
    """Walks one thread's events in time order; see the module docstring for the rules."""

    def __init__(self, t0_ns: int, end_ns: int) -> None:
        self.t0_ns, self.end_ns = t0_ns, end_ns
        self.out: list[tuple[int, int, str]] = []
        self.waits: list[GilWait] = []
        self.holds: list[_Hold] = []  # holds ended by a release, proven later against others
        self.unsure: list[tuple[int, int, _Cpu]] = []  # idle stretches since the last release
        self.wants: list[tuple[int, int]] = []  # forced releases until the next request
        self.releases: list[int] = []  # times of wake/handoff_wait: releases with waiters
        self.handoff_since: int | None = None
        self.phase = _Phase.IDLE
        self.cpu = _Cpu.UNKNOWN
        self.since: int | None = None  # start of the open stretch (same phase and CPU state)
        # Stretches whose GIL state is decided later: (start, end, cpu) since ``pending_from``.
        self.pending: list[tuple[int, int, _Cpu]] = []
        self.futex_pending = False  # a GIL futex call since the last sleep that may sleep yet
        self.wait_start = 0
        self.woke = 0
        self.last_futex = 0  # the latest GIL futex call of the current wait
        self.awake_ns = 0  # CPU time since the wake-up of a woken waiter, before ``on_since``
        self.on_since: int | None = None
        self.slept = False

    # -- stretches --

    def _close(self, now: int) -> None:
        since = self.since
        self.since = now
        if since is None or now <= since:
            return
        if self.phase is _Phase.WAITING:
            self._emit(since, now, GIL_WAIT)
        elif self.phase in (_Phase.WOKEN, _Phase.HOLD):
            self.pending.append((since, now, self.cpu))
        elif self.cpu is not _Cpu.UNKNOWN:
            # Neither waiting nor in a bracketed hold: it may hold the GIL without anyone
            # knowing. A later release with waiters (wake) can still prove the last part.
            self.unsure.append((since, now, self.cpu))

    def _emit(self, start: int, end: int, state: str) -> None:
        start, end = max(start, self.t0_ns), min(end, self.end_ns)
        if end > start:
            self.out.append((start, end, state))

    def _resolve(self, held: bool | None) -> None:
        """Decide the pending stretches: ``True`` held the GIL, ``False`` still waited for it,
        ``None`` unknown (a silent release happened somewhere in them)."""
        if held is True and self.pending:
            self.holds.append(_Hold(list(self.pending), start_known=True))
            self.pending = []
            return
        for start, end, cpu in self.pending:
            if held is False:
                self._emit(start, end, GIL_WAIT)
            elif (state := _cpu_state(cpu)) is not None:
                self._emit(start, end, state)
        self.pending = []

    def _flush_unsure(self, released: bool = False) -> None:
        """The stretches since the thread was last known not to hold the GIL: a hold whose start
        is unknown if it ``released`` the GIL now, else just what the CPU did."""
        if released and self.unsure:
            self.holds.append(_Hold(self.unsure, start_known=False))
        else:
            for start, end, cpu in self.unsure:
                if (state := _cpu_state(cpu)) is not None:
                    self._emit(start, end, state)
        self.unsure = []

    def _end_wait(self, at: int) -> None:
        self.waits.append(GilWait(self.wait_start, max(at, self.wait_start), self.slept))

    # -- events --

    def step(self, now: int, kind: Ev) -> bool:
        """Apply one event (what the thread did at ``now``); False once it has exited."""
        phase = self.phase
        self._close(now)
        if kind is Ev.EXIT:
            self.finish(now)
            return False
        if kind is Ev.START:
            return True
        if kind in (Ev.SWITCH_OUT, Ev.PREEMPTED, Ev.SWITCH_IN):
            self._switch(now, kind)
            return True
        if self.cpu is not _Cpu.ON:  # a futex call runs on a CPU
            self.cpu, self.on_since = _Cpu.ON, now
        if kind is Ev.NO_SLEEP:
            self.futex_pending = False
            if phase is _Phase.WAITING:  # its wait's futex did not sleep: it is awake at once
                self.phase, self.woke, self.awake_ns = _Phase.WOKEN, now, 0
                self.on_since = now
        elif kind in (Ev.WAIT, Ev.MUTEX_WAIT):
            self.futex_pending = True
            self.last_futex = now
            if phase is _Phase.WOKEN and self._awake_ns(now) > WAIT_LOOP_BOUND_NS:
                # Too long awake for the wait loop: it got the GIL in between, and lost it again.
                self._end_wait(self.woke)
                self._resolve(held=None)
                phase = self.phase = _Phase.IDLE
            if phase is _Phase.WOKEN:  # it woke, found the GIL still taken, and waits on
                self._resolve(held=False)
                self.phase = _Phase.WAITING
            elif kind is Ev.WAIT and phase in (_Phase.IDLE, _Phase.HOLD):
                self._resolve(held=None)  # a hold that ended silently, if any
                self._flush_unsure()
                self.phase, self.wait_start, self.slept = _Phase.WAITING, now, False
                if self.handoff_since is not None:
                    self.wants.append((self.handoff_since, now))
                    self.handoff_since = None
        elif kind is Ev.HANDOFF_WAKE:
            if phase in (_Phase.WAITING, _Phase.WOKEN):
                self._resolve(held=False)
                self._end_wait(now)
            else:
                self._resolve(held=None)
                self._flush_unsure()
            self.phase = _Phase.HOLD
        elif kind in (Ev.WAKE, Ev.HANDOFF_WAIT):
            self.releases.append(now)
            if kind is Ev.HANDOFF_WAIT:  # forced to release: it wants the GIL back right away
                self.handoff_since = now
            # It released the GIL: a wait it was in ended when it woke, and it held since then.
            if phase is _Phase.WOKEN:
                self._end_wait(self.woke)
                self._resolve(held=True)
            elif phase is _Phase.WAITING:  # its futex returned without sleeping or saying so
                self._end_wait(self.last_futex)
            elif phase is _Phase.HOLD:
                self._resolve(held=True)
            else:  # it took the GIL unseen, while nobody waited: since when is unknown
                self._flush_unsure(released=True)
            self.phase = _Phase.IDLE
            self.futex_pending = kind is Ev.HANDOFF_WAIT
        return True

    def _awake_ns(self, now: int) -> int:
        return self.awake_ns + (now - self.on_since if self.on_since is not None else 0)

    def _switch(self, now: int, kind: Ev) -> None:
        if kind is Ev.SWITCH_IN:
            if self.cpu is _Cpu.ASLEEP and self.phase is _Phase.WAITING:
                self.phase, self.woke, self.awake_ns = _Phase.WOKEN, now, 0
            self.cpu, self.on_since = _Cpu.ON, now
            return
        if self.on_since is not None:
            self.awake_ns += now - self.on_since
            self.on_since = None
        if kind is Ev.PREEMPTED:
            self.cpu = _Cpu.PREEMPTED
            return
        # Asleep: in the GIL futex it just called, or in something else entirely.
        in_gil_futex = self.futex_pending
        self.futex_pending = False
        self.cpu = _Cpu.ASLEEP
        if in_gil_futex:
            if self.phase is _Phase.WAITING:
                self.slept = True
            return
        if self.phase is _Phase.WOKEN:  # it got the GIL after waking, then blocked elsewhere
            self._end_wait(self.woke)
            self._resolve(held=None)
        elif self.phase is _Phase.WAITING:  # its futex returned unseen; it got the GIL
            self._end_wait(self.last_futex)
        elif self.phase is _Phase.HOLD:
            self._resolve(held=None)
        self.phase = _Phase.IDLE

    def finish(self, now: int) -> None:
        """The thread exited (or the record ended) at ``now``."""
        self._close(now)
        if self.phase is _Phase.WAITING:
            self._end_wait(now)
        elif self.phase is _Phase.WOKEN:
            self._end_wait(self.woke)
        self._resolve(held=None)
        self._flush_unsure()
        self.phase, self.since = _Phase.IDLE, None

    def intervals(self) -> list[Interval]:
        intervals: list[Interval] = []
        for start, end, state in sorted(self.out):
            s, e = (start - self.t0_ns) / 1e9, (end - self.t0_ns) / 1e9
            last = intervals[-1] if intervals else None
            if last is not None and last.state == state and abs(last.end - s) < 1e-12:
                last.end = e
            elif last is not None and s < last.end:  # cannot happen; keep the order if it does
                continue
            else:
                intervals.append(Interval(s, e, state))
        return intervals


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
    walks: dict[int, _ThreadWalk] = {}
    for tid, times, kinds in events.by_thread():
        walk = walks[tid] = _ThreadWalk(t0_ns, end_ns)
        step = walk.step
        alive = True
        for now, kind in zip(times, kinds):  # events past the window still settle stretches
            alive = step(now, kind)
            if not alive:
                break
        if alive:
            walk.finish(max(end_ns, times[-1]))
    _prove_holds(walks)
    out: dict[int, ThreadGil] = {}
    for tid, walk in walks.items():
        waits = [w for w in walk.waits if w.end_ns > t0_ns and w.start_ns < end_ns]
        intervals = walk.intervals()
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
        self._release_times = [t for t, _ in timed]
        self._release_tids = [tid for _, tid in timed]
        # the latest release before each one that another thread made than that one's
        self._other_before: list[int] = []
        for n, tid in enumerate(self._release_tids):
            self._other_before.append(n - 1 if n and self._release_tids[n - 1] != tid
                                      else self._other_before[n - 1] if n else -1)

    def merged(self, tid: int) -> tuple[list[int], list[int]]:
        """Starts and ends of the others' merged spans, sorted."""
        keep = self._tids != tid
        starts, ends = self._starts[keep], self._ends[keep]
        if not len(starts):
            return [], []
        reach = np.maximum.accumulate(ends)
        # a span begins a new merged one when it starts past the reach of those before it
        first = np.flatnonzero(np.r_[True, starts[1:] > reach[:-1] + self._gap])
        last = np.r_[first[1:] - 1, len(starts) - 1]
        return starts[first].tolist(), reach[last].tolist()

    def last_release_before(self, tid: int, at: int) -> int | None:
        """The latest release at or before ``at`` by a thread other than ``tid``."""
        n = bisect.bisect_right(self._release_times, at) - 1
        if n >= 0 and self._release_tids[n] == tid:
            n = self._other_before[n]
        return self._release_times[n] if n >= 0 else None


def _covering(starts: list[int], ends: list[int], at: int, slack_ns: int
              ) -> tuple[int, int] | None:
    """The merged span that covers ``at`` (or starts at most ``slack_ns`` after it)."""
    i = bisect.bisect_right(starts, at + slack_ns) - 1
    if i >= 0 and ends[i] >= at:
        return starts[i], ends[i]
    return None


def _prove_holds(walks: dict[int, _ThreadWalk]) -> None:
    """Emit each thread's bracketed holds as ``running`` where other threads' waits prove them.

    A thread releases the GIL silently only when nobody waits for it, so while others wait, the
    holder keeps it: a hold is proven from its start for as long as other threads kept wanting the
    GIL (waiting for it, or forced out and about to ask again), and back from its release for as
    long as others were waiting and no other thread released it. Gaps up to the wait loop's
    bound are bridged. Whatever is not proven takes the CPU state it had (``on_cpu`` or
    ``cpu_wait``)."""
    others = _OthersWanting(
        {tid: [(w.start_ns, w.end_ns) for w in walk.waits] + walk.wants
         for tid, walk in walks.items()},
        {tid: walk.releases for tid, walk in walks.items()}, WAIT_LOOP_BOUND_NS)
    for tid, walk in walks.items():
        if not walk.holds:
            continue
        starts, ends = others.merged(tid)
        for hold in walk.holds:
            start, end = hold.start, hold.end
            ahead = (_covering(starts, ends, start, WAIT_LOOP_BOUND_NS) if hold.start_known
                     else None)
            proven_to = min(end, ahead[1]) if ahead is not None else start
            behind = _covering(starts, ends, end, 0)
            proven_from = end
            if behind is not None:
                # ...and nobody else released the GIL in between (then it was not this one's).
                last_other_release = others.last_release_before(tid, end)
                proven_from = max(start, behind[0],
                                  last_other_release if last_other_release is not None
                                  and last_other_release >= start else start)
            for s_ns, e_ns, cpu in hold.stretches:
                for lo, hi in _split(s_ns, e_ns, proven_to, proven_from):
                    proven = hi <= proven_to or lo >= proven_from
                    state = RUNNING if proven else _cpu_state(cpu)
                    if state is not None:
                        walk._emit(lo, hi, state)


def _split(start: int, end: int, *cuts: int) -> list[tuple[int, int]]:
    points = sorted({start, end, *(c for c in cuts if start < c < end)})
    return list(zip(points, points[1:]))


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
