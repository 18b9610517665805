"""A recording's GIL events as columns (numpy arrays), not one Python object each.

Why: a minute of 64 threads is ~5 million events; as :class:`GilEvent` objects they held ~800 MB
and took longer to sort and group than to read. As columns they are 28 bytes each, sorted and
grouped by numpy, and each thread's events become Python values only while it is walked
(:func:`tracer.model.gil_exact.reconstruct_columns`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np


class Ev(str, Enum):
    """What one recorded event says a thread did."""

    WAIT = "wait"
    MUTEX_WAIT = "mutex_wait"
    NO_SLEEP = "no_sleep"
    WAKE = "wake"
    HANDOFF_WAIT = "handoff_wait"
    HANDOFF_WAKE = "handoff_wake"
    SWITCH_OUT = "switch_out"
    PREEMPTED = "preempted"
    SWITCH_IN = "switch_in"
    START = "start"
    EXIT = "exit"


# Every kind, in the order of their codes (tracer/model/_perfscan.c numbers the first nine alike)
EV_ORDER: tuple[Ev, ...] = tuple(Ev)


class GilEvent(NamedTuple):
    """One thing a thread did, at ``t_ns`` on CLOCK_MONOTONIC. A named tuple, not a dataclass:
    the Python reading and the tests make many of them, and a frozen dataclass took 1.8 us each
    to build (the C reader writes :data:`RECORD` rows instead)."""

    t_ns: int
    pid: int
    tid: int
    kind: Ev


# What tracer/model/_perfscan.c writes per event (native byte order, as it is the same machine)
RECORD = np.dtype([("t_ns", "=i8"), ("line", "=i8"), ("pid", "=i4"), ("tid", "=i4"),
                   ("kind", "=i4"), ("unused", "=i4")])
_CODE = {kind: code for code, kind in enumerate(EV_ORDER)}


@dataclass(frozen=True)
class EventColumns:
    """Events in perf's order: ``kind`` is an index into :data:`EV_ORDER`, ``line`` the event's
    place in the recording (perf's order, which breaks ties between events of one instant)."""

    t_ns: np.ndarray
    line: np.ndarray
    pid: np.ndarray
    tid: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def from_records(cls, records: np.ndarray) -> EventColumns:
        return cls(records["t_ns"], records["line"], records["pid"], records["tid"],
                   records["kind"].astype(np.int8))

    @classmethod
    def from_events(cls, events: Iterable[GilEvent],
                    lines: list[int] | None = None) -> EventColumns:
        """Columns of ``events``, placed in the recording by ``lines`` (default: their order)."""
        listed = list(events)
        return cls(np.array([e.t_ns for e in listed], dtype=np.int64),
                   np.array(lines, dtype=np.int64) if lines is not None
                   else np.arange(len(listed), dtype=np.int64),
                   np.array([e.pid for e in listed], dtype=np.int32),
                   np.array([e.tid for e in listed], dtype=np.int32),
                   np.array([_CODE[e.kind] for e in listed], dtype=np.int8))

    @classmethod
    def joined(cls, parts: list[EventColumns]) -> EventColumns:
        if not parts:
            return cls.from_events(())
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in ("t_ns", "line", "pid", "tid", "kind")))

    def of_process(self, pid: int) -> EventColumns:
        keep = self.pid == pid
        return EventColumns(self.t_ns[keep], self.line[keep], self.pid[keep], self.tid[keep],
                            self.kind[keep])

    def pids(self) -> list[int]:
        """The processes, in the order of their first event in the recording."""
        found, first = np.unique(self.pid[np.argsort(self.line, kind="stable")],
                                 return_index=True)
        return [int(pid) for pid in found[np.argsort(first, kind="stable")]]

    def events(self) -> Iterator[GilEvent]:
        kinds = EV_ORDER
        for t, pid, tid, kind in zip(self.t_ns.tolist(), self.pid.tolist(), self.tid.tolist(),
                                     self.kind.tolist()):
            yield GilEvent(t, pid, tid, kinds[kind])

    def by_thread(self) -> Iterator[tuple[int, list[int], list[Ev]]]:
        """:meth:`thread_arrays` as Python values: each thread's event times and kinds."""
        kinds = EV_ORDER
        for tid, times, codes in self.thread_arrays():
            yield tid, times.tolist(), [kinds[k] for k in codes.tolist()]

    def thread_arrays(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Per thread, in the order of its first event (after sorting by time, perf's order
        breaking ties): its tid, its event times (int64 ns) and kind codes, in time order."""
        if not len(self):
            return
        in_time = np.lexsort((self.line, self.t_ns))
        tids = self.tid[in_time]
        grouped = np.argsort(tids, kind="stable")  # by thread, each still in time order
        sorted_tids = tids[grouped]
        starts = np.flatnonzero(np.r_[True, sorted_tids[1:] != sorted_tids[:-1]])
        ends = np.r_[starts[1:], len(sorted_tids)]
        # grouped[start] is the thread's first event in time: threads in the order they appear
        for n in np.argsort(grouped[starts], kind="stable").tolist():
            mine = in_time[grouped[starts[n]:ends[n]]]
            yield int(sorted_tids[starts[n]]), self.t_ns[mine], self.kind[mine]
