"""``py-spy record --format chrometrace --threads`` output as the stack samples the model reads.

py-spy writes one B/E event per frame as a thread's stack changes (outermost first), with ``ts``
in microseconds from its own start. With ``--threads`` the outermost frame of every thread is
``thread (NATIVE_TID): NAME`` (and with ``--subprocesses`` ``process PID:"CMDLINE"`` frames sit
above it); they carry the native thread id and name the model keys threads by. When it stops, py-spy
closes every slice still open at the moment it writes: those closing events say nothing about the
target (a thread that ended simply stops changing) and are left out.

Clock: ``ts`` counts from py-spy's ``Instant::now()`` when it set up its output, just after it was
spawned; :func:`align` finds that moment on CLOCK_MONOTONIC from moments both clocks saw (see
:class:`Alignment`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_THREAD = re.compile(r"thread \((\d+|0x[0-9A-Fa-f]+)\)(?:: (.*))?", re.S)
_RUNPY = ("<frozen runpy>", os.sep + "runpy.py")


@dataclass(frozen=True)
class RawFrame:
    name: str
    filename: str
    line: int


@dataclass(frozen=True)
class StackChange:
    """One thread's stack from ``ts_us`` on (outermost first), as py-spy read it."""

    ts_us: int
    pid: int
    tid: int  # native thread id (``--threads``)
    name: str
    frames: tuple[RawFrame, ...]


def stack_changes(events: Iterable[dict[str, Any]]) -> Iterator[StackChange]:
    """Each thread's stack after each group of events py-spy wrote for it at one moment."""
    stacks: dict[tuple[int, int], list[RawFrame]] = {}
    group: tuple[int, int, int] | None = None
    for event in events:
        key = (int(event.get("pid") or 0), int(event.get("tid") or 0))
        moment = (*key, int(event.get("ts") or 0))
        if group is not None and moment != group:
            yield from _settled(group, stacks)
        group = moment
        stack = stacks.setdefault(key, [])
        args = event.get("args") or {}
        if event.get("ph") == "B":
            stack.append(RawFrame(str(event.get("name", "?")), str(args.get("filename") or ""),
                                  int(args.get("line") or 0)))
        elif event.get("ph") == "E" and stack:
            stack.pop()
    if group is not None:
        yield from _settled(group, stacks)


def _settled(group: tuple[int, int, int],
             stacks: dict[tuple[int, int], list[RawFrame]]) -> Iterator[StackChange]:
    pid, pthread, ts_us = group
    stack = stacks.get((pid, pthread), [])
    # The innermost thread frame heads the stack: with --subprocesses, py-spy has been seen to
    # leave a forked child's first frames open (no E event) and begin its stack again under a
    # second process/thread header; the frames above that header are not on its stack.
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        found = _THREAD.fullmatch(frame.name) if not frame.filename else None
        if found:
            tid = int(found.group(1), 0)
            yield StackChange(ts_us, pid, tid, found.group(2) or "", tuple(stack[depth + 1:]))
            return
    # No thread frame left: py-spy closing its open slices as it wrote the file. Not a change.


class ShortNames:
    """File names shortened the way ``py-spy dump`` shows them: the path from the outermost
    package folder (one with ``__init__.py``), else the bare file name."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def __call__(self, filename: str) -> str:
        short = self._known.get(filename)
        if short is None:
            short = self._known[filename] = _shorten(filename)
        return short


def _shorten(filename: str) -> str:
    if not os.path.isabs(filename):
        return filename  # "<frozen runpy>", "<string>"
    top = os.path.dirname(filename)
    while os.path.isfile(os.path.join(top, "__init__.py")):
        parent = os.path.dirname(top)
        if parent == top:
            break
        top = parent
    return os.path.relpath(filename, top)


@dataclass
class Labeller:
    """A stack as the model stores it: ``"name (file:line)"``, innermost first, without
    threadscope's own frames anywhere and, above the user's code, without runpy's."""

    own_code: str  # threadscope's package folder, with a trailing separator
    short: ShortNames = field(default_factory=ShortNames)

    def labels(self, frames: tuple[RawFrame, ...]) -> list[str]:
        out: list[str] = []
        above_user_code = True
        for frame in frames:  # outermost first
            if frame.filename.startswith(self.own_code):
                continue
            if above_user_code and frame.filename.endswith(_RUNPY):
                continue
            above_user_code = False
            out.append(f"{frame.name} ({self.short(frame.filename)}:{frame.line})")
        out.reverse()
        return out


def to_records(changes: Iterable[StackChange], offset_ns: int,
               labeller: Labeller) -> Iterator[dict[str, Any]]:
    """One record per moment at which some thread's visible stack changed (the new stack of each
    thread that changed then; ``frames`` empty when no frame of the user's is left)."""
    last: dict[tuple[int, int], tuple[str, list[str]]] = {}
    record: dict[str, Any] | None = None
    for change in changes:
        key = (change.pid, change.tid)
        frames = labeller.labels(change.frames)
        if last.get(key) == (change.name, frames):
            continue
        last[key] = (change.name, frames)
        t_ns = offset_ns + change.ts_us * 1000
        if record is not None and record["t0"] != t_ns:
            yield record
            record = None
        if record is None:
            record = {"t0": t_ns, "t1": t_ns, "threads": []}
        record["threads"].append({"pid": change.pid, "tid": change.tid, "name": change.name,
                                  "owns_gil": None, "active": None, "frames": frames})
    if record is not None:
        yield record


@dataclass(frozen=True)
class Alignment:
    """Where py-spy's ``ts`` 0 is on CLOCK_MONOTONIC: ``offset_ns``, surely within
    ``[low_ns, high_ns]`` (bar the microseconds noted below).

    The bounds: py-spy's clock starts after the monotonic time taken just before spawning it and
    before it printed that it was sampling. A stack change py-spy shows at ``ts`` was read at or
    after the moment it happened, so a change whose monotonic time the target logged (a thread
    entering its ``run``, just after the ``start`` event of ``threads.jsonl``; the main thread
    leaving the wait for the go signal, just before the ``main`` event) bounds the offset from
    below; a stack py-spy read while a thread was still running bounds it from above by the
    thread's ``end`` event. py-spy stamps a sample as it handles it, a few microseconds after
    reading it, and the ``main`` event comes a few microseconds after the wait ends: both are
    within the bounds' stated precision. The estimate is the spawn time plus py-spy's measured
    start-up, moved into the bounds."""

    offset_ns: int
    low_ns: int
    high_ns: int
    anchors: int  # target moments used

    @property
    def uncertainty_ns(self) -> int:
        return max(self.offset_ns - self.low_ns, self.high_ns - self.offset_ns, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"offset_ns": self.offset_ns, "low_ns": self.low_ns, "high_ns": self.high_ns,
                "uncertainty_ns": self.uncertainty_ns, "anchors": self.anchors}


def align(changes: list[StackChange], thread_events: Iterable[dict[str, Any]], pid: int,
          spawn_ns: int, ready_ns: int, startup_ns: int, own_code: str) -> Alignment:
    """See :class:`Alignment`. ``thread_events``: the target's ``threads.jsonl`` (none when
    attaching); ``ready_ns``: when py-spy said it was sampling; ``startup_ns``: how long py-spy
    takes from spawn to its first line of work (measured on ``py-spy --version``)."""
    low, high, anchors = spawn_ns, max(ready_ns, spawn_ns), 0
    starts, ends, main_ns = {}, {}, None
    for event in thread_events:
        kind, t_ns = event.get("ev"), event.get("t_ns")
        if t_ns is None or event.get("tid") is None:
            continue
        if kind == "start":
            starts[int(event["tid"])] = int(t_ns)
        elif kind == "end":
            ends[int(event["tid"])] = int(t_ns)
        elif kind == "main":
            main_ns = int(t_ns)
    seen_running: dict[int, tuple[int, int]] = {}  # tid -> first, last ts with run() on it
    main_waiting = None  # ts of the first stack that shows the main thread waiting for go
    main_left = None
    for change in changes:
        if change.pid != pid:
            continue
        if _in_thread_run(change.frames, own_code):
            first, _ = seen_running.get(change.tid, (change.ts_us, change.ts_us))
            seen_running[change.tid] = (first, change.ts_us)
        if change.tid == pid and main_left is None:
            waiting = bool(change.frames) and change.frames[-1].name == "_await_go" and \
                change.frames[-1].filename.startswith(own_code)
            if waiting and main_waiting is None:
                main_waiting = change.ts_us
            elif not waiting and main_waiting is not None:
                main_left = change.ts_us
    if main_ns is not None and main_left is not None:
        low, anchors = max(low, main_ns - main_left * 1000), anchors + 1
    for tid, (first, last) in seen_running.items():
        if tid in starts:
            low, anchors = max(low, starts[tid] - first * 1000), anchors + 1
        if tid in ends:
            high, anchors = min(high, ends[tid] - last * 1000), anchors + 1
    offset = min(max(spawn_ns + startup_ns, low), high) if high >= low else (low + high) // 2
    return Alignment(offset, min(low, high), max(low, high), anchors)


def _in_thread_run(frames: tuple[RawFrame, ...], own_code: str) -> bool:
    """threading's own ``_bootstrap_inner`` is on the stack: the thread is past threadscope's
    hook, which logged its ``start`` first, and has not yet returned to it to log its ``end``."""
    return any(f.name.endswith("_bootstrap_inner") and not f.filename.startswith(own_code)
               for f in frames)
