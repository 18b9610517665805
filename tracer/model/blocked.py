"""What a blocked thread was blocked by: a sleep, I/O, a poll, a child process, a lock, a signal,
a file lock, or something else.

Evidence, best first:

- the syscall the thread slept in. The GIL sampler reads every thread's ``/proc/TID/syscall`` at
  ~1 kHz and writes the syscall's number for each blocked thread
  (:mod:`tracer.recorders.gil_sampler`); the numbers are per machine (:data:`SYSCALLS`: x86_64
  and aarch64, for the calls a thread sleeps in). perf's context-switch records do not say which
  syscall a thread switched out in (``PERF_RECORD_SWITCH`` has no ``prev_state``, and the futex
  tracepoint is filtered to the GIL's own words), so an exact timeline's blocked stretches take
  the sampler's samples too, when it ran (it does by default);
- for a ``futex`` (which every lock, condition, queue and join sleeps in), the lock recorder's
  waits: a futex sample next to a recorded contention wait is ``lock``, next to a condition,
  event, barrier or queue wait ``signal``; otherwise the thread's Python stack (py-spy's
  samples) when it names a wait for a signal (``threading``'s ``wait``/``join``, ``queue``, an
  idle ``concurrent.futures`` worker on its C ``SimpleQueue``), else ``other``;
- the stack also refines a sleep: inside ``subprocess`` (``Popen.wait`` with a timeout polls
  the child between sleeps) it is ``child``, inside ``sqlite3`` (SQLite's busy handler sleeps
  between tries of its file lock) ``file_lock``.

How samples split a blocked stretch: per sample. Each sample's cause stands from the sample to
the next one (the sampler's own rule for states); the part of a stretch before its first sample
takes the cause of the sample whose span it lies in when that sample saw the thread blocked
(the sampled states' own rule), else the first sample inside (an exact stretch that began
between samples: one sleep, seen from inside), and a stretch no sample fell in takes the cause
of the sample whose span it lies in, if that sample saw the thread blocked. Time with
no such evidence is ``other``.

Everything here is pure: values in, values out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    SIGNAL_WAIT,
    BlockedCause,
    BlockedDetail,
    Interval,
    ThreadTimeline,
    WaitDetail,
)

_Cause = BlockedCause
# What the sleep of each syscall means; ``futex`` (and ``futex_waitv``) is None: its cause comes
# from the lock recorder or the stack.
_CAUSE_OF_CALL: Mapping[str, BlockedCause | None] = {
    **dict.fromkeys(("nanosleep", "clock_nanosleep"), _Cause.SLEEP),
    **dict.fromkeys(("read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
                     "pwritev", "preadv2", "pwritev2", "sendfile", "splice", "openat", "fsync",
                     "fdatasync", "accept", "accept4", "connect", "sendto", "recvfrom",
                     "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "io_getevents",
                     "io_uring_enter"), _Cause.IO),
    **dict.fromkeys(("poll", "select", "pselect6", "ppoll", "epoll_wait", "epoll_pwait",
                     "epoll_pwait2"), _Cause.POLL),
    **dict.fromkeys(("wait4", "waitid"), _Cause.CHILD),
    **dict.fromkeys(("fcntl", "flock"), _Cause.FILE_LOCK),
    **dict.fromkeys(("pause", "rt_sigsuspend", "rt_sigtimedwait"), _Cause.SIGNAL),
    "futex": None,
    "futex_waitv": None,
}
_NAMES = tuple(_CAUSE_OF_CALL)
# Syscall numbers per machine (``uname -m``), for the calls above: x86_64 from
# arch/x86/entry/syscalls/syscall_64.tbl, aarch64 from the generic table
# (include/uapi/asm-generic/unistd.h), which has no poll, select, epoll_wait or pause.
SYSCALLS: Mapping[str, Mapping[int, str]] = {
    "x86_64": {
        0: "read", 1: "write", 19: "readv", 20: "writev", 17: "pread64", 18: "pwrite64",
        295: "preadv", 296: "pwritev", 327: "preadv2", 328: "pwritev2", 40: "sendfile",
        275: "splice", 257: "openat", 74: "fsync", 75: "fdatasync", 43: "accept",
        288: "accept4", 42: "connect", 44: "sendto", 45: "recvfrom", 46: "sendmsg",
        47: "recvmsg", 307: "sendmmsg", 299: "recvmmsg", 208: "io_getevents",
        426: "io_uring_enter", 7: "poll", 23: "select", 270: "pselect6", 271: "ppoll",
        232: "epoll_wait", 281: "epoll_pwait", 441: "epoll_pwait2", 35: "nanosleep",
        230: "clock_nanosleep", 61: "wait4", 247: "waitid", 72: "fcntl", 73: "flock",
        34: "pause", 130: "rt_sigsuspend", 128: "rt_sigtimedwait", 202: "futex",
        449: "futex_waitv",
    },
    "aarch64": {
        63: "read", 64: "write", 65: "readv", 66: "writev", 67: "pread64", 68: "pwrite64",
        69: "preadv", 70: "pwritev", 286: "preadv2", 287: "pwritev2", 71: "sendfile",
        76: "splice", 56: "openat", 82: "fsync", 83: "fdatasync", 202: "accept",
        242: "accept4", 203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg",
        212: "recvmsg", 269: "sendmmsg", 243: "recvmmsg", 4: "io_getevents",
        426: "io_uring_enter", 72: "pselect6", 73: "ppoll", 22: "epoll_pwait",
        441: "epoll_pwait2", 101: "nanosleep", 115: "clock_nanosleep", 260: "wait4",
        95: "waitid", 25: "fcntl", 32: "flock", 133: "rt_sigsuspend", 137: "rt_sigtimedwait",
        98: "futex", 449: "futex_waitv",
    },
}
SYSCALLS_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# A sample stands for the time until the thread's next one; a sample older than this before a
# stretch says nothing about it (the thread was not sampled meanwhile: 50 ticks at 1 kHz).
STALE_S = 0.05
# A futex sleep this close to a recorded lock wait is that wait's (the recorder stamps a wait
# just before and after the futex call, so the interval it draws is a little shorter).
LOCK_SLACK_S = 0.001
# The lock recorder's kinds that wait for a signal rather than for a holder.
_SIGNAL_KINDS = ("condition", "event", "barrier", "queue")

# Stack frames (file suffix, function) that say a futex sleep waits to be signalled.
_SIGNAL_FRAMES = (
    ("threading.py", ("wait", "join", "_wait_for_tstate_lock")),
    ("queue.py", ("get", "put", "join")),
    ("concurrent/futures/thread.py", ("_worker",)),
    ("concurrent/futures/_base.py", ("wait", "result", "as_completed", "exception")),
    ("multiprocessing/pool.py", ("worker", "get", "wait")),
)
# How many innermost frames the signal rule looks at: the wait is called near the top.
_SIGNAL_DEPTH = 3
_SUBPROCESS_WAIT = ("wait", "_wait", "_try_wait")
_LABEL = re.compile(r"^(?P<name>.*?) \((?P<file>.*?)(?::\d+)?\)$")

# Sample codes besides a syscall number (>= 0): blocked outside a known syscall, not blocked.
BLOCKED_UNKNOWN = -1
NOT_BLOCKED = -2


def syscall_name(machine: str | None, number: int) -> str | None:
    """The name of syscall ``number`` on ``machine``, for the calls a thread sleeps in."""
    if machine is None:
        return None
    return SYSCALLS.get(SYSCALLS_ALIASES.get(machine, machine), {}).get(number)


def _frames(stack: Sequence[str]) -> list[tuple[str, str]]:
    """(file, function) of each frame label ("name (file:line)"), innermost first."""
    out = []
    for label in stack:
        match = _LABEL.match(label)
        name, file = (match["name"], match["file"]) if match else (label, "")
        out.append((file, name.rsplit(".", 1)[-1]))
    return out


def _signal_stack(frames: Sequence[tuple[str, str]]) -> bool:
    return any(file.endswith(suffix) and function in functions
               for file, function in frames[:_SIGNAL_DEPTH]
               for suffix, functions in _SIGNAL_FRAMES)


def cause_of(call: str | None, stack: Sequence[str] = (), wait_kind: str | None = None,
             contention: bool | None = None) -> BlockedCause:
    """The cause of one blocked sample: the syscall it slept in (by name, None: not known),
    the thread's Python stack then (frame labels, innermost first), and for a futex the lock
    recorder's wait next to it (its ``kind``, and whether it was contention)."""
    if call is None or call not in _CAUSE_OF_CALL:
        return _Cause.OTHER
    frames = _frames(stack)
    cause = _CAUSE_OF_CALL[call]
    if cause is _Cause.SLEEP:
        if any("sqlite3" in file or "sqlite3" in function for file, function in frames):
            return _Cause.FILE_LOCK
        if any(file.endswith("subprocess.py") and function in _SUBPROCESS_WAIT
               for file, function in frames):
            return _Cause.CHILD
        return cause
    if cause is not None:
        return cause
    if wait_kind is not None:  # a futex next to a recorded wait
        signal = (not contention) if contention is not None else wait_kind.startswith(
            _SIGNAL_KINDS)
        return _Cause.SIGNAL if signal else _Cause.LOCK
    return _Cause.SIGNAL if _signal_stack(frames) else _Cause.OTHER


@dataclass
class SyscallSamples:
    """The GIL sampler's view of each thread's sleeps: per tid, its sample times (ns, sorted)
    and per sample the syscall number it slept in, :data:`BLOCKED_UNKNOWN` (blocked, number not
    recorded) or :data:`NOT_BLOCKED`."""

    machine: str | None
    times: dict[int, list[int]] = field(default_factory=dict)
    calls: dict[int, list[int]] = field(default_factory=dict)
    numbered: bool = False  # the recording wrote syscall numbers at all


def syscall_samples(samples: Iterable[Mapping[str, Any]], machine: str | None) -> SyscallSamples:
    """From :func:`tracer.model.gil_sampled.load_gil_samples`' ticks (in time order)."""
    out = SyscallSamples(machine)
    for sample in samples:
        t_ns, numbers = sample["t_ns"], sample.get("syscalls") or {}
        out.numbered = out.numbered or bool(numbers)
        for entry in sample["threads"]:
            tid, code = entry[0], entry[1]
            if code == "R" or code == "G":
                call = NOT_BLOCKED
            else:  # B, or H: asleep awaiting the GIL's hand-off, no cause of its own
                call = numbers.get(tid, BLOCKED_UNKNOWN) if code == "B" else BLOCKED_UNKNOWN
            times = out.times.setdefault(tid, [])
            if times and times[-1] == t_ns:
                out.calls[tid][-1] = call
                continue
            times.append(t_ns)
            out.calls.setdefault(tid, []).append(call)
    return out


_StackAt = Callable[[float], Sequence[str]]


class _ThreadEvidence:
    """One thread's samples (seconds from t0), its recorded lock waits and its stacks."""

    def __init__(self, machine: str | None, times_ns: Sequence[int], calls: Sequence[int],
                 t0_ns: int, waits: Sequence[Interval], stack_at: _StackAt) -> None:
        self.machine = machine
        self.times = [(t - t0_ns) / 1e9 for t in times_ns]
        self.calls = calls
        self.waits = sorted((w for w in waits if isinstance(w.detail, WaitDetail)),
                            key=lambda w: w.start)
        self.wait_ends = [w.end for w in self.waits]
        self.stack_at = stack_at
        self._memo: dict[tuple[int, int, str | None, bool | None], BlockedCause] = {}

    def blocked(self, k: int) -> bool:
        return 0 <= k < len(self.calls) and self.calls[k] != NOT_BLOCKED

    def cause(self, k: int, a: float, b: float) -> BlockedCause:
        """The cause sample ``k`` gives the blocked piece ``[a, b)``."""
        number = self.calls[k]
        if number < 0:
            return _Cause.OTHER
        call = syscall_name(self.machine, number)
        stack = self.stack_at(self.times[k])
        kind: str | None = None
        contention: bool | None = None
        if call in ("futex", "futex_waitv"):
            end = self.times[k + 1] if k + 1 < len(self.times) else b
            wait = self._wait_near(min(a, self.times[k]), max(b, end))
            if wait is not None and isinstance(wait.detail, WaitDetail):
                kind, contention = wait.detail.kind, _contention(wait)
        key = (number, id(stack), kind, contention)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = cause_of(call, stack, kind, contention)
        return found

    def _wait_near(self, a: float, b: float) -> Interval | None:
        i = bisect.bisect_left(self.wait_ends, a - LOCK_SLACK_S)
        if i < len(self.waits) and self.waits[i].start <= b + LOCK_SLACK_S:
            return self.waits[i]
        return None


def _contention(wait: Interval) -> bool | None:
    """Whether a recorded wait was contention (a holder) rather than a wait for a signal: its
    state as the lock model classed it (None: say it from the primitive's kind)."""
    return {LOCK_WAIT: True, SIGNAL_WAIT: False}.get(wait.state)


def split_blocked(intervals: Sequence[Interval], evidence: _ThreadEvidence | None
                  ) -> list[Interval]:
    """``intervals`` with each ``blocked`` one cut where its cause changes, every piece carrying
    a :class:`BlockedDetail` (see the module docstring for how samples decide it)."""
    out: list[Interval] = []
    for interval in intervals:
        if interval.state != BLOCKED:
            out.append(interval)
            continue
        pieces = _pieces(interval.start, interval.end, evidence) if evidence is not None else [
            (interval.start, interval.end, _Cause.OTHER)]
        for a, b, cause in pieces:
            last = out[-1] if out else None
            if (last is not None and last.state == BLOCKED
                    and isinstance(last.detail, BlockedDetail)
                    and last.detail.cause is cause and last.end == a):
                last.end = b
            elif b > a:
                out.append(Interval(a, b, BLOCKED, BlockedDetail(cause)))
    return out


def _pieces(s: float, e: float, ev: _ThreadEvidence) -> list[tuple[float, float, BlockedCause]]:
    times = ev.times
    first, stop = bisect.bisect_left(times, s), bisect.bisect_left(times, e)
    if first == stop:  # no sample inside: the sample whose span it lies in, if fresh
        k = first - 1
        if k >= 0 and ev.blocked(k) and s - times[k] <= STALE_S:
            return [(s, e, ev.cause(k, s, e))]
        return [(s, e, _Cause.OTHER)]
    pieces: list[tuple[float, float, BlockedCause]] = []
    if times[first] > s:  # the head: the sample whose span it is in, else the first inside
        k = first - 1 if ev.blocked(first - 1) and s - times[first - 1] <= STALE_S else first
        fresh = ev.blocked(k)
        head = ev.cause(k, s, times[first]) if fresh else _Cause.OTHER
        pieces.append((s, times[first], head))
    for k in range(first, stop):
        a, b = times[k], times[k + 1] if k + 1 < stop else e
        if ev.blocked(k):
            pieces.append((a, b, ev.cause(k, a, b)))
        elif k + 1 < stop and ev.blocked(k + 1):  # it went to sleep after this sample
            pieces.append((a, b, ev.cause(k + 1, a, b)))
        else:
            pieces.append((a, b, _Cause.OTHER))
    return pieces


def blocked_seconds(intervals: Iterable[Interval], total_s: float) -> dict[str, float]:
    """Seconds per cause of the ``blocked`` intervals, rounded to the microsecond and summing
    to ``total_s`` (the thread's rounded blocked seconds): the rounding's remainder goes to the
    largest cause. Blocked time without a cause is ``other``."""
    sums: dict[str, float] = {}
    for interval in intervals:
        if interval.state != BLOCKED:
            continue
        detail = interval.detail
        cause = detail.cause if isinstance(detail, BlockedDetail) else _Cause.OTHER
        sums[cause] = sums.get(cause, 0.0) + interval.duration
    out = {cause: round(seconds, 6) for cause, seconds in sums.items() if round(seconds, 6) > 0}
    if not out:
        return {}
    largest = max(out, key=lambda c: out[c])
    out[largest] = round(total_s - sum(v for c, v in out.items() if c != largest), 6)
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def stack_lookup(thread: ThreadTimeline, stacks: Sequence[Sequence[str]],
                 period_s: float) -> _StackAt:
    """The thread's py-spy stack (frame labels, innermost first) at a time: its latest sample at
    or before it (py-spy writes a stack when it changes), up to one period later (a sample's
    time is the middle of its read)."""
    times = [s.t for s in thread.samples]
    empty: Sequence[str] = ()

    def at(t: float) -> Sequence[str]:
        k = bisect.bisect_right(times, t + period_s) - 1
        if k < 0:
            return empty
        index = thread.samples[k].stack
        return stacks[index] if 0 <= index < len(stacks) else empty

    return at


def apply_blocked(thread: ThreadTimeline, syscalls: SyscallSamples | None, t0_ns: int,
                  stacks: Sequence[Sequence[str]], stack_period_s: float) -> None:
    """Give each of the thread's blocked intervals its cause and set ``blocked_by``."""
    if not any(i.state == BLOCKED for i in thread.intervals):
        thread.blocked_by = {}
        return
    evidence = None
    if syscalls is not None and thread.tid in syscalls.times:
        waits = [i for i in thread.intervals if isinstance(i.detail, WaitDetail)]
        evidence = _ThreadEvidence(syscalls.machine, syscalls.times[thread.tid],
                                   syscalls.calls[thread.tid], t0_ns, waits,
                                   stack_lookup(thread, stacks, stack_period_s))
    thread.intervals = split_blocked(thread.intervals, evidence)
    thread.blocked_by = blocked_seconds(thread.intervals, thread.state_s.get(BLOCKED, 0.0))


def evidence_note(exact: bool, syscalls: SyscallSamples | None) -> str:
    """How blocked time was split by cause in this run, for the GIL source's notes."""
    if syscalls is None or not syscalls.numbered:
        why = ("the GIL sampler did not run" if syscalls is None else
               "the GIL sampler's recording has no syscall numbers (an older threadscope)")
        return f"Blocked time is not split by cause ({why}): it is all 'other'."
    machine = SYSCALLS_ALIASES.get(syscalls.machine or "", syscalls.machine)
    known = "" if machine in SYSCALLS else (
        f"; syscall numbers are not known on {syscalls.machine}, so causes are 'other'")
    how = ("perf's context switches do not say which syscall a thread slept in, so blocked "
           "stretches take the causes of the GIL sampler's samples inside them "
           "(/proc/TID/syscall); a stretch no sample saw is 'other'" if exact else
           "blocked time is split by cause per sample, from the syscall each blocked sample "
           "slept in (/proc/TID/syscall)")
    return (f"{how[0].upper()}{how[1:]}; a futex is a lock or signal wait where the lock "
            f"recorder saw one then, or where py-spy's stack names one, else 'other'{known}.")
