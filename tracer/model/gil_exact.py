"""Exact GIL timelines from perf uprobes on ``take_gil``/``drop_gil`` plus context switches.

Input is the text of ``perf script -F tid,pid,time,event,trace --ns --show-switch-events
--show-task-events`` (written by :mod:`tracer.recorders.perf_gil` as ``raw/perf_gil.txt``). The
timestamps are CLOCK_MONOTONIC because the recording used ``perf record -k mono``.

What each event proves about a thread:

- ``take``  (entry of ``take_gil``): from now on it wants the GIL (``gil_wait``).
- ``taken`` (return of ``take_gil``): from now on it holds the GIL (``running``).
- ``drop``  (entry of ``drop_gil``): from now on it neither holds nor wants the GIL; it is then
  ``native`` while on a CPU and ``blocked`` while off one.
- ``switch_out`` (``sched:sched_switch`` with the thread as prev) / ``switch_in``
  (``PERF_RECORD_SWITCH IN``): off / on a CPU. A per-thread ``sched_switch`` tracepoint only fires
  in the context of the outgoing thread, so switch-in comes from perf's switch records instead.
- ``start`` / ``exit`` (``PERF_RECORD_FORK`` / ``PERF_RECORD_EXIT``): the thread's lifetime. An
  exiting thread's last context switch is never recorded (its perf events are torn down first), so
  without ``exit`` it would look ``native`` until the end of the run.

Everything here is pure: text in, values out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from tracer.errors import CorruptRecording
from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    NATIVE,
    OFF_CPU,
    ON_CPU,
    RUNNING,
    Interval,
)

KINDS = frozenset({"take", "taken", "drop", "switch_out", "switch_in", "start", "exit"})

# The probe event names, whatever group the recorder put them in. Event names must be unique
# system-wide (perf refuses a second ``take_gil`` in another group), so the recorder adds a
# session suffix: ``threadscope_12_34:take_gil_12_34``; older recordings have none.
_PROBE_KINDS = {"take_gil": "take", "take_gil__return": "taken", "take_gil_ret__return": "taken",
                "drop_gil": "drop"}
_SUFFIX = re.compile(r"_\d+_\d+$")

# ``  6536/6586    323.066705634: rest``; perf pads pid/tid on the left. The fraction is 9 digits
# with --ns and 6 without; both are read exactly (integers, never floats: a float of ~1e18 ns has
# no nanosecond precision left).
_LINE = re.compile(
    r"^\s*(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+(?P<sec>\d+)\.(?P<frac>\d{1,9}):\s*(?P<rest>.*)$"
)
_SWITCH_FIELDS = re.compile(
    r"prev_pid=(?P<prev>-?\d+) prev_prio=-?\d+ prev_state=(?P<state>\S+) ==> "
)
_TASK = re.compile(r"^PERF_RECORD_(?P<what>FORK|EXIT)\((?P<pid>-?\d+):(?P<tid>-?\d+)\)")


@dataclass(frozen=True)
class GilEvent:
    """One thing a thread did, at ``t_ns`` on CLOCK_MONOTONIC."""

    t_ns: int
    pid: int
    tid: int
    kind: str  # one of KINDS
    prev_state: str | None = None  # switch_out only: R (preempted), S, D, ... as the kernel prints


def parse_perf_script(text: str) -> list[GilEvent]:
    """Read ``perf script`` text into events, in the order perf printed them (time order).

    Lines for events this module does not use (``PERF_RECORD_SWITCH OUT`` duplicates
    ``sched_switch`` but without ``prev_state``; ``PERF_RECORD_COMM``; foreign events) are skipped.
    A line that is not ``perf script`` output at all raises :class:`CorruptRecording`.
    """
    events: list[GilEvent] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise CorruptRecording(f"perf script line {lineno} is not an event: {line[:80]!r}")
        pid, tid = int(match["pid"]), int(match["tid"])
        t_ns = int(match["sec"]) * 1_000_000_000 + int(match["frac"].ljust(9, "0"))
        event = _event_from(match["rest"], t_ns, pid, tid, lineno)
        if event is not None:
            events.append(event)
    return events


def _event_from(rest: str, t_ns: int, pid: int, tid: int, lineno: int) -> GilEvent | None:
    if rest.startswith("PERF_RECORD_SWITCH"):
        # ``PERF_RECORD_SWITCH IN`` (per-thread) or ``PERF_RECORD_SWITCH_CPU_WIDE IN ...``: the
        # record's tid is the thread coming in.
        words = rest.split()
        if len(words) > 1 and words[1] == "IN":
            return GilEvent(t_ns, pid, tid, "switch_in")
        return None
    task = _TASK.match(rest)
    if task is not None:
        # The record's own pid/tid is the parent for FORK; the parenthesis names the thread.
        kind = "start" if task["what"] == "FORK" else "exit"
        return GilEvent(t_ns, int(task["pid"]), int(task["tid"]), kind)
    name, _, payload = rest.partition(": ")
    name = name.strip().rstrip(":")
    group, _, event = name.rpartition(":")
    if not group:
        return None
    returning = event.endswith("__return")  # perf's own suffix for a return probe
    event = _SUFFIX.sub("", event.removesuffix("__return")) + ("__return" if returning else "")
    if event in _PROBE_KINDS:
        return GilEvent(t_ns, pid, tid, _PROBE_KINDS[event])
    if name == "sched:sched_switch":
        fields = _SWITCH_FIELDS.search(payload)
        if fields is None:
            raise CorruptRecording(
                f"perf script line {lineno}: sched_switch without prev_pid/state"
            )
        if int(fields["prev"]) != tid:
            return None  # not this thread going off CPU (cannot happen with per-thread events)
        return GilEvent(t_ns, pid, tid, "switch_out", fields["state"])
    return None


# GIL knowledge per thread while walking its events.
_HELD, _WAIT, _FREE, _UNKNOWN = "held", "wait", "free", "unknown"


def _state(gil: str, on_cpu: bool | None, queued: bool = False) -> str | None:
    if gil == _HELD:
        return RUNNING  # a holder preempted by the OS still holds the GIL: nobody else can run
    if gil == _WAIT:
        return GIL_WAIT
    if on_cpu is None:
        return None
    if not on_cpu and queued:
        return CPU_WAIT  # preempted (switched out still runnable): waiting for a free core
    if gil == _FREE:
        return NATIVE if on_cpu else BLOCKED
    return ON_CPU if on_cpu else OFF_CPU


def gil_timelines(
    events: Iterable[GilEvent], t0_ns: int, end_ns: int, *, pid: int | None = None
) -> dict[int, list[Interval]]:
    """Per thread id, its states as sorted, non-overlapping intervals in seconds from ``t0_ns``.

    Intervals are clipped to ``[t0_ns, end_ns]``; events before ``t0_ns`` still set the state a
    thread starts with. ``pid`` keeps only that process's threads (perf also follows children).
    Gaps remain only where nothing is known: before a thread's first event (unless that event
    proves it already held or wanted the GIL at attach) and after it exited.
    """
    if end_ns < t0_ns:
        raise ValueError(f"end_ns {end_ns} is before t0_ns {t0_ns}")
    per_thread: dict[int, list[GilEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.t_ns):  # stable: perf's order breaks ties
        if pid is None or event.pid == pid:
            per_thread[event.tid].append(event)
    return {
        tid: intervals
        for tid, evs in per_thread.items()
        if (intervals := _thread_timeline(evs, t0_ns, end_ns))
    }


def _thread_timeline(events: list[GilEvent], t0_ns: int, end_ns: int) -> list[Interval]:
    # Raw segments (start_ns, end_ns, gil, on_cpu); resolved to states at the end, because the GIL
    # state before a thread's first GIL event is only known once that event is seen.
    segments: list[tuple[int, int, str, bool | None, bool]] = []
    gil, on_cpu, queued = _UNKNOWN, None, False
    since: int | None = None  # start of the current segment; None before anything is known
    first_gil_kind: str | None = None

    def close(now: int) -> None:
        if since is not None and now > since:
            segments.append((since, now, gil, on_cpu, queued))

    for event in events:
        now = event.t_ns
        if now > end_ns:
            break
        kind = event.kind
        if kind == "exit":
            close(now)
            since = None
            break
        if kind == "start":
            continue  # the thread exists from here; its first scheduling tells the rest
        close(now)
        since = now
        if kind == "switch_out":
            on_cpu = False
            # prev_state R: switched out while still runnable, i.e. preempted for another task
            queued = (event.prev_state or "").startswith("R")
            continue
        on_cpu, queued = True, False  # any other event ran on a CPU
        if kind == "switch_in":
            continue
        if first_gil_kind is None:
            first_gil_kind = kind
        if kind == "take":
            # A take while waiting is a nested call or a missed return: the wait goes on. A take
            # while holding means a drop was missed: the hold ends here.
            gil = _WAIT
        elif kind == "taken":
            gil = _HELD
        elif kind == "drop":
            gil = _FREE
    if since is not None:
        close(end_ns)

    before_first = {"take": _FREE, "taken": _WAIT, "drop": _HELD}.get(
        first_gil_kind or "", _UNKNOWN
    )
    if before_first in (_HELD, _WAIT) and events and events[0].t_ns > t0_ns:
        # Holding or waiting at attach: the thread existed, in that GIL state, since before t0.
        segments.insert(0, (t0_ns, events[0].t_ns, before_first, None, False))
    intervals: list[Interval] = []
    for start, end, seg_gil, seg_cpu, seg_queued in segments:
        start, end = max(start, t0_ns), min(end, end_ns)
        if end <= start:
            continue
        state = _state(before_first if seg_gil == _UNKNOWN else seg_gil, seg_cpu, seg_queued)
        if state is None:
            continue
        s, e = (start - t0_ns) / 1e9, (end - t0_ns) / 1e9
        last = intervals[-1] if intervals else None
        if last is not None and last.state == state and last.end == s:
            last.end = e
        else:
            intervals.append(Interval(s, e, state))
    return intervals


def gil_metrics(timelines: dict[int, list[Interval]], wall_s: float) -> dict[str, object]:
    """Run-wide and per-thread GIL figures from :func:`gil_timelines`.

    ``gil_utilisation`` is the union of held time over the wall time (one GIL per process, so with
    a single process the union is the sum); ``mean_gil_waiters`` is the time-average number of
    threads in ``gil_wait``; ``gil_switches_per_s`` counts hand-offs, i.e. consecutive holds by
    different threads.
    """
    if wall_s <= 0:
        raise ValueError(f"wall_s must be positive, got {wall_s}")
    holds: list[tuple[float, float, int]] = []
    threads: dict[int, dict[str, float | int]] = {}
    total_wait = 0.0
    for tid, intervals in timelines.items():
        held = [iv for iv in intervals if iv.state == RUNNING]
        waits = [iv.duration for iv in intervals if iv.state == GIL_WAIT]
        holds.extend((iv.start, iv.end, tid) for iv in held)
        total_wait += sum(waits)
        threads[tid] = {
            "gil_held_s": sum(iv.duration for iv in held),
            "gil_wait_s": sum(waits),
            "gil_waits": len(waits),
            "max_gil_wait_s": max(waits, default=0.0),
        }
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
    return {
        "gil_utilisation": union / wall_s,
        "mean_gil_waiters": total_wait / wall_s,
        "gil_switches_per_s": switches / wall_s,
        "threads": threads,
    }
