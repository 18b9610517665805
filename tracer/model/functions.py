"""VizTracer's function timeline, moved onto the shared clock and relative to t0, and counted.

The report does not draw individual calls (a browser cannot draw a million of them); they go to
``trace.json`` untouched apart from the time shift, next to our state tracks. What the report does
use is how many calls each thread made: VizTracer's cost is per recorded call, so the counts are
what turns the cost measured at start-up into the time it added to this run.

A long run has millions of events, so the file is read in batches of whole events and each batch
is kept as the JSON bytes ``trace.json`` will carry (about 130 bytes an event), never as one
Python dict per event for the whole trace (about 600 bytes each: a 5-million-event trace took
5.6 GB that way).

The calls that wrap the user's program are left out of ``trace.json`` (they are still counted, as
VizTracer recorded and paid for them): the tracer's bootstrap (``tracer/bootstrap.py``,
``tracer/inprocess.py``), runpy, and the ``exec`` through which runpy runs the user's code, so the
user's ``<module>`` is the top of the main thread rather than six frames down.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from tracer.clock import LinearClockMap
from tracer.model.rawfiles import read_json

# One batch of the file at a time: ~60,000 events, a few tens of MB as Python objects.
BATCH_BYTES = 8 << 20
_EVENTS_START = re.compile(rb'^\s*\{\s*"traceEvents"\s*:\s*\[')
# Between two events of VizTracer's compact JSON. It cannot occur inside a string (a quote there
# is escaped), only between objects; a split that lands inside a nested list of objects fails to
# parse, and the file is then read whole.
_BETWEEN_EVENTS = b'},{"'
# The files whose calls wrap the user's program (file as VizTracer names it, after "qualname (").
_WRAPPER_FILES = ("<frozen runpy>",)
_WRAPPER_SUFFIXES = ("/runpy.py", "/tracer/bootstrap.py", "/tracer/inprocess.py")
# runpy's function that calls exec(code) on the user's program, and exec as VizTracer names it
# (a C function: ``module.name``; older releases wrote its repr).
_RUN_CODE = "_run_code ("
_EXEC_NAMES = frozenset({"builtins.exec", "<built-in function exec>"})


@dataclass
class ThreadCalls:
    """Calls VizTracer recorded on one thread: Python functions and C functions (builtins and
    methods), which cost it different amounts."""

    python: int = 0
    c: int = 0

    @property
    def total(self) -> int:
        return self.python + self.c


@dataclass
class FunctionTrace:
    # The shifted events as JSON arrays, one per batch, ready to splice into trace.json.
    chunks: list[bytes] = field(default_factory=list)
    thread_names: dict[int, str] = field(default_factory=dict)
    overflow: bool = False
    entries: int = 0  # events VizTracer kept (calls, instants, counters), as it counts them
    calls: dict[int, ThreadCalls] = field(default_factory=dict)  # by OS thread id
    # Seconds from t0 at which the earliest kept call returned. VizTracer writes a call into its
    # circular buffer when it returns, so after an overflow the calls that returned before this
    # were dropped: [0, kept_from_s) is the part of the run it lost.
    kept_from_s: float | None = None

    @property
    def total_calls(self) -> int:
        return sum(calls.total for calls in self.calls.values())

    def events(self) -> list[dict[str, Any]]:
        """Every kept event as a dict (for small traces and tests: a big one is large)."""
        return [event for chunk in self.chunks for event in orjson.loads(chunk)]


def is_python_call(name: str) -> bool:
    """VizTracer names a Python function ``qualname (file:line)`` and a C one ``module.name``."""
    return name.endswith(")") and " (" in name


def is_wrapper_call(name: str) -> bool:
    """A call of the tracer's bootstrap or of runpy, which wrap the user's program."""
    if not (name.endswith(")") and " (" in name):
        return False
    where = name[name.rfind(" (") + 2:-1]
    file = where[:where.rfind(":")] if ":" in where else where
    return file in _WRAPPER_FILES or file.endswith(_WRAPPER_SUFFIXES)


@dataclass(slots=True)
class _ExecCall:
    """An ``exec`` call seen while reading: dropped later if runpy's ``_run_code`` made it."""

    chunk: int  # the batch (index into FunctionTrace.chunks) that holds it
    tid: int
    ts: float
    dur: float


class _NotSplittable(Exception):
    """The file is not VizTracer's compact layout: read it whole instead."""


def _batches(handle: IO[bytes]) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """(events, metadata) for each batch of whole events; the metadata comes with the last."""
    buffer = handle.read(BATCH_BYTES)
    start = _EVENTS_START.match(buffer)
    if start is None:
        raise _NotSplittable
    buffer = buffer[start.end():]
    while True:
        more = handle.read(BATCH_BYTES)
        if not more:
            try:
                document = orjson.loads(b'{"traceEvents":[' + buffer)
            except orjson.JSONDecodeError as exc:
                raise _NotSplittable from exc
            yield document.get("traceEvents", []), document.get("viztracer_metadata", {})
            return
        buffer += more
        cut = buffer.rfind(_BETWEEN_EVENTS)
        if cut < 0:
            if len(buffer) > 2 * BATCH_BYTES:
                raise _NotSplittable  # not the compact layout (spaces between events)
            continue
        try:
            events = orjson.loads(b"[" + buffer[:cut + 1] + b"]")
        except orjson.JSONDecodeError as exc:
            raise _NotSplittable from exc
        buffer = buffer[cut + 2:]
        yield events, {}


def _whole(path: Path) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    raw = read_json(path)
    if isinstance(raw, dict):
        yield raw.get("traceEvents", []), raw.get("viztracer_metadata", {})
    elif isinstance(raw, list):
        yield raw, {}


class _Reader:
    """Shifts and counts events batch by batch (a tight loop: a long trace has millions)."""

    def __init__(self, clock: LinearClockMap | None, t0_ns: int) -> None:
        # monotonic ns = offset + scale * VizTracer us; without clock pairs, VizTracer's clock is
        # taken as monotonic already
        offset_ns, scale = (clock.offset_ns, clock.scale) if clock else (0.0, 1000.0)
        self.base_us = (offset_ns - t0_ns) / 1000
        self.us_per_us = scale / 1000
        self.trace = FunctionTrace()
        self.earliest_return_us: float | None = None
        self.overflow = False
        self.wrappers: list[Any] = []  # this batch's wrapper calls (few: a dozen in a run)
        self.execs: list[_ExecCall] = []
        self.run_code: list[tuple[int, float, float]] = []  # (tid, ts, end) of runpy's _run_code

    def read(self, batches: Iterator[tuple[list[Any], dict[str, Any]]]) -> FunctionTrace:
        for events, meta in batches:
            self.overflow = self.overflow or bool(meta.get("overflow"))
            # Only the first batch holds metadata to leave out, and the last the wrapper calls
            # (VizTracer writes a call when it returns); the rest are dumped as they are (a
            # filtered copy of every batch cost a third more peak memory, measured).
            if self._batch(events) or self.wrappers:
                drop = {id(e) for e in self.wrappers}
                kept = [e for e in events if _carried(e) and id(e) not in drop]
            else:
                kept = events
            self.trace.entries += len(kept) + len(self.wrappers)
            self.wrappers.clear()
            if kept:
                self.trace.chunks.append(orjson.dumps(kept))
            else:
                self.trace.chunks.append(b"[]")  # keeps _ExecCall.chunk an index into chunks
            del events, kept  # before the next batch is parsed
        self._drop_user_code_exec()
        self.trace.chunks = [chunk for chunk in self.trace.chunks if chunk != b"[]"]
        return self.trace

    def _drop_user_code_exec(self) -> None:
        """Leave out the outermost ``exec`` inside each runpy ``_run_code``: the one that runs the
        user's program (an ``exec`` of the user's own is inside it). It returned before
        ``_run_code`` did, so it may sit in an earlier batch: that one batch is parsed again."""
        doomed: dict[int, list[_ExecCall]] = {}
        for tid, start, end in self.run_code:
            inside = [call for call in self.execs if call.tid == tid and call.ts >= start
                      and call.ts + call.dur <= end]
            if inside:
                outer = max(inside, key=lambda call: call.dur)
                doomed.setdefault(outer.chunk, []).append(outer)
        for index, calls in doomed.items():
            marks = {(call.tid, call.ts, call.dur) for call in calls}
            events = orjson.loads(self.trace.chunks[index])
            kept = [e for e in events if not (e.get("name") in _EXEC_NAMES and e.get("ph") == "X"
                                              and (e.get("tid", 0), e.get("ts"), e.get("dur"))
                                              in marks)]
            self.trace.chunks[index] = orjson.dumps(kept) if kept else b"[]"

    def _batch(self, events: list[Any]) -> bool:
        """Shift one batch in place and count its calls; True when it holds events that
        trace.json does not carry (metadata)."""
        base, rate = self.base_us, self.us_per_us
        python: dict[int, int] = {}
        native: dict[int, int] = {}
        earliest = self.earliest_return_us
        left_out = False
        for event in events:
            if not _carried(event):
                left_out = True
                if isinstance(event, dict) and event.get("name") == "thread_name":
                    self.trace.thread_names[int(event.get("tid", 0))] = str(
                        event.get("args", {}).get("name", ""))
                continue
            ts = event.get("ts")
            if ts is None:
                continue
            ts = event["ts"] = round(base + rate * ts, 3)
            dur = event.get("dur")
            if dur is not None:
                dur = event["dur"] = round(dur * rate, 3)
            phase = event.get("ph")
            if phase != "X":
                # a call still open when VizTracer stopped (rare: the few frames on the stack)
                if phase in ("B", "E") and is_wrapper_call(str(event.get("name", ""))):
                    self.wrappers.append(event)
                continue
            tid = event.get("tid", 0)
            name = event.get("name", "")
            if name.endswith(")") and " (" in name:  # is_python_call, inlined
                python[tid] = python.get(tid, 0) + 1
                # cheap tests first (substrings): the exact one parses the file out of the name
                if ("runpy" in name or "tracer/bootstrap.py:" in name
                        or "tracer/inprocess.py:" in name) and is_wrapper_call(name):
                    self.wrappers.append(event)
                    if name.startswith(_RUN_CODE):
                        self.run_code.append((tid, ts, ts + (dur or 0.0)))
            else:
                native[tid] = native.get(tid, 0) + 1
                if name in _EXEC_NAMES:
                    self.execs.append(_ExecCall(len(self.trace.chunks), tid, ts, dur or 0.0))
            returned = ts + (dur or 0.0)
            if earliest is None or returned < earliest:
                earliest = returned
        self.earliest_return_us = earliest
        for tid in python.keys() | native.keys():
            counts = self.trace.calls.setdefault(int(tid), ThreadCalls())
            counts.python += python.get(tid, 0)
            counts.c += native.get(tid, 0)
        return left_out


def _carried(event: Any) -> bool:
    """What trace.json carries: every event but VizTracer's metadata (ours replaces it)."""
    return isinstance(event, dict) and event.get("ph") != "M"


def load_function_trace(path: Path, clock_pairs: list[list[float]], t0_ns: int,
                        buffer_entries: int | None = None) -> FunctionTrace:
    """``buffer_entries`` is the buffer size the run asked for: a trace that filled it exactly
    overflowed, whatever the file's metadata says (VizTracer's own test)."""
    if not path.exists():
        return FunctionTrace()
    pairs = [(float(f), int(m)) for f, m in clock_pairs] if clock_pairs else []
    clock = LinearClockMap.from_pairs(pairs, unit_ns=1000.0) if pairs else None
    try:
        with path.open("rb") as handle:
            reader = _Reader(clock, t0_ns)
            trace = reader.read(_batches(handle))
    except _NotSplittable:
        reader = _Reader(clock, t0_ns)
        trace = reader.read(_whole(path))
    trace.overflow = reader.overflow or (bool(buffer_entries)
                                         and trace.entries >= int(buffer_entries or 0))
    if reader.earliest_return_us is not None:
        trace.kept_from_s = round(reader.earliest_return_us / 1e6, 6)
    return trace
