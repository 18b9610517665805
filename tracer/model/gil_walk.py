"""One thread's GIL events walked into what they prove: the stretches they settle, its waits, and
the holds that other threads' waits may prove later (:func:`tracer.model.gil_exact.
reconstruct_columns` does that, and assembles the intervals). The rules are in
:mod:`tracer.model.gil_exact`'s docstring.

Why a module of its own: the walk is one step per event, ~4 million steps for a minute of 64
threads, so it runs in C (``_gilwalk.c``, ~0.05 us a step against ~8 us here) where the C core
is built; :class:`_ThreadWalk` here is the reference it was written from, used without a
compiler or with ``THREADSCOPE_PURE_WALK=1``, and ``tests/unit/test_gil_walk.py`` holds the two
to the same output. Both hand back a :class:`WalkOutput` of arrays, not objects per stretch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from tracer.model.gil_events import EV_ORDER, Ev
from tracer.model.schema import BLOCKED, CPU_WAIT, GIL_WAIT, ON_CPU

# take_gil's loop between two futex sleeps (re-take the mutex, check the GIL, ask for a drop) ran
# 2-25 us on a CPU here (p99 ~40 us under uprobes, which slow it); a thread awake longer than this
# before its next wait did something else, i.e. it got the GIL in between.
WAIT_LOOP_BOUND_NS = 50_000


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


def _cpu_state(cpu: _Cpu) -> str | None:
    """The state of a stretch in which the thread neither waits for nor provably holds the GIL."""
    return {_Cpu.ON: ON_CPU, _Cpu.ASLEEP: BLOCKED, _Cpu.PREEMPTED: CPU_WAIT}.get(cpu)


class _ThreadWalk:
    """Walks one thread's events in time order; the rules are in :mod:`tracer.model.gil_exact`'s
    docstring. The reference for ``_gilwalk.c``: a change here is a change there."""

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


# What a walk emits, by code (the C core numbers them alike, checked at import)
WALK_STATES: tuple[str, ...] = (GIL_WAIT, ON_CPU, BLOCKED, CPU_WAIT)
_STATE_CODE = {state: code for code, state in enumerate(WALK_STATES)}
# The CPU state of a hold's stretch, by code; the state it takes where no wait proves the hold
CPUS: tuple[_Cpu, ...] = tuple(_Cpu)
CPU_FALLBACK: tuple[str | None, ...] = tuple(_cpu_state(cpu) for cpu in CPUS)
_CPU_CODE = {cpu: code for code, cpu in enumerate(CPUS)}


@dataclass(frozen=True)
class WalkOutput:
    """What one thread's walk found, as arrays: the stretches it settled (``out_*``, ns clipped
    to the window, ``out_state`` a code into :data:`WALK_STATES`), every wait, the stretches of
    its bracketed holds (``stretch_hold`` numbers the hold, holds in order, each's stretches
    together; ``stretch_cpu`` a code into :data:`CPUS`) with whether each hold's start is
    known, the spans it was forced out and wanted the GIL back (``wants``), and the times it
    released the GIL with others waiting (``releases``)."""

    out_start: np.ndarray
    out_end: np.ndarray
    out_state: np.ndarray
    waits: list[GilWait]
    stretch_start: np.ndarray
    stretch_end: np.ndarray
    stretch_cpu: np.ndarray
    stretch_hold: np.ndarray
    hold_known: np.ndarray
    wants: list[tuple[int, int]]
    releases: list[int]


def _load_core() -> Any:
    if os.environ.get("THREADSCOPE_PURE_WALK") == "1":
        return None
    try:
        from tracer.model import _gilwalk  # type: ignore[attr-defined]
    except ImportError:
        return None
    same = (tuple(_gilwalk.KINDS) == tuple(kind.value for kind in EV_ORDER)
            and tuple(_gilwalk.STATES) == WALK_STATES
            and tuple(_gilwalk.CPUS) == tuple(cpu.value for cpu in CPUS)
            and _gilwalk.WAIT_LOOP_BOUND_NS == WAIT_LOOP_BOUND_NS)
    return _gilwalk if same else None  # a core built from other sources is not used


_core = _load_core()
NATIVE = _core is not None


def walk_thread(times: np.ndarray, kinds: np.ndarray, t0_ns: int, end_ns: int,
                *, pure: bool = False) -> WalkOutput:
    """Walk one thread's events (``times`` int64 ns in time order, ``kinds`` codes into
    :data:`tracer.model.gil_events.EV_ORDER`) up to its exit, or to the later of ``end_ns`` and
    its last event; ``pure`` uses the Python walk even where the C core is built."""
    if _core is None or pure:
        return _python_walk(times, kinds, t0_ns, end_ns)
    out, waits, stretches, holds, wants, releases = _core.walk(
        np.ascontiguousarray(times, dtype=np.int64).tobytes(),
        np.ascontiguousarray(kinds, dtype=np.int8).tobytes(), t0_ns, end_ns)
    out_rows = np.frombuffer(out, dtype=np.int64).reshape(-1, 3)
    wait_rows = np.frombuffer(waits, dtype=np.int64).reshape(-1, 3).tolist()
    stretch_rows = np.frombuffer(stretches, dtype=np.int64).reshape(-1, 4)
    want_rows = np.frombuffer(wants, dtype=np.int64).reshape(-1, 2).tolist()
    return WalkOutput(
        out_rows[:, 0], out_rows[:, 1], out_rows[:, 2].astype(np.int8),
        [GilWait(start, end, bool(slept)) for start, end, slept in wait_rows],
        stretch_rows[:, 0], stretch_rows[:, 1], stretch_rows[:, 2].astype(np.int8),
        stretch_rows[:, 3], np.frombuffer(holds, dtype=np.int64).astype(bool),
        [(start, end) for start, end in want_rows],
        np.frombuffer(releases, dtype=np.int64).tolist())


def _python_walk(times: np.ndarray, kinds: np.ndarray, t0_ns: int, end_ns: int) -> WalkOutput:
    walk = _ThreadWalk(t0_ns, end_ns)
    step = walk.step
    alive = True
    time_list = np.asarray(times).tolist()
    for now, code in zip(time_list, np.asarray(kinds).tolist()):
        alive = step(now, EV_ORDER[code])  # events past the window still settle stretches
        if not alive:
            break
    if alive and time_list:
        walk.finish(max(end_ns, time_list[-1]))
    stretches = [(start, end, _CPU_CODE[cpu], number)
                 for number, hold in enumerate(walk.holds)
                 for start, end, cpu in hold.stretches]
    return WalkOutput(
        np.array([start for start, _, _ in walk.out], dtype=np.int64),
        np.array([end for _, end, _ in walk.out], dtype=np.int64),
        np.array([_STATE_CODE[state] for _, _, state in walk.out], dtype=np.int8),
        walk.waits,
        np.array([row[0] for row in stretches], dtype=np.int64),
        np.array([row[1] for row in stretches], dtype=np.int64),
        np.array([row[2] for row in stretches], dtype=np.int8),
        np.array([row[3] for row in stretches], dtype=np.int64),
        np.array([hold.start_known for hold in walk.holds], dtype=bool),
        walk.wants, walk.releases)
