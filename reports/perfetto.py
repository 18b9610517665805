"""trace.json: every event, in Chrome trace-event JSON, for Perfetto and VizTracer's viewer.

The HTML report aggregates past a drawing budget; this file never does. It carries VizTracer's
function events (moved to their thread's track, below), and adds our own tracks next to them:
per-thread state slices, the GIL holder's turns, counters for CPU parallelism and GIL waiters, and
the run markers. Timestamps are microseconds from the model's t0, the same clock as the function
events.

Every track lives in its thread's own process, so a user who expands the program's process sees
each thread's functions with its states right under them. Perfetto's JSON importer orders a
process's thread tracks by tid and ignores ``thread_sort_index`` (checked in the Perfetto UI that
vizviewer ships, v52), so tracks get synthetic tids that sort as they should: thread ``t``'s
function slices move to tid ``t * TRACK_STRIDE`` (:func:`function_tid`), its states to the next
tid, its lock lanes to the ones after; the GIL holder's turns and the run's phases take tids 1 and
2, above every thread. Track names carry the real tid ("worker (tid 7200)"), and the viewer
shows the synthetic one after it. The counters (CPU parallelism, GIL waiters) are the process's
own tracks, which Perfetto draws after its threads.

Lock waits and holds get a track of their own under each thread's state track ("locks: <thread>"),
and each hand-off (a holder releases, a waiter acquires) is a flow arrow from the holder's hold
slice to the waiter's wait slice. Slices on one track must nest or be disjoint for the viewer to
stack them, so a hold that overlaps another without nesting (hand-over-hand locking) moves to a
second lane ("locks: <thread> (2)"). A wait for a signal (Event, Condition, Barrier, queue) is
on the same track, named "wait for a signal on <name>" (category ``signal_wait``) beside the
contended "wait <lock>" (``lock_wait``): it has no holder and no hand-off.

Pool work items and asyncio steps are slices on the real threads (:mod:`reports.perfetto_tasks`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from reports.format import MISSING
from reports.intervals import merge_intervals
from reports.perfetto_tasks import task_events
from reports.perfetto_tracks import (
    GIL_TID,
    LANES_PER_THREAD,
    PHASES_TID,
    TRACK_STRIDE,
    function_tid,
    lock_tid,
    state_tid,
)
from reports.threads import thread_label
from reports.view import ReportView, as_view
from reports.vocabulary import wait_kind_words
from tracer.model.schema import (
    LOCK_WAIT,
    SIGNAL_WAIT,
    HoldDetail,
    Interval,
    LockStats,
    RunModel,
    ThreadTimeline,
    WaitDetail,
)
from tracer.runfolder import atomic_write_pieces

# "pid":P,"tid":T as VizTracer writes every event (and orjson keeps its key order)
_EVENT_IDS = re.compile(rb'"pid":(-?\d+),"tid":(-?\d+)')
US = 1e6
# One Chrome trace event: its keys vary by phase ("X", "M", "C", "i", "s", "f"), and the format
# is JSON the viewer reads, so a dict is its honest type.
TraceEvent = dict[str, Any]


def write_trace(
    source: RunModel | ReportView, out: Path,
    function_events: Iterable[TraceEvent] | None = None, function_chunks: Iterable[bytes] = (),
) -> None:
    """Write ``{"traceEvents": [...], "displayTimeUnit": "ms"}`` atomically to ``out``.

    ``source`` is the pipeline's view (or a model). ``function_chunks`` are function events
    already serialised, each a JSON array (what :class:`tracer.model.functions.FunctionTrace`
    keeps): they are spliced in as they are, so millions of VizTracer events never become Python
    objects again, nor one giant buffer."""
    view = as_view(source)
    head = _metadata(view)
    head.extend(_on_function_tracks(function_events or ()))
    tail = _own_events(view)
    arrays = [orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY),
              *(_chunk_on_function_tracks(chunk) for chunk in function_chunks),
              orjson.dumps(tail, option=orjson.OPT_SERIALIZE_NUMPY)]
    atomic_write_pieces(out, _trace_pieces(arrays))


def _on_function_track(event: TraceEvent) -> TraceEvent | None:
    """A function event on its thread's track; VizTracer's own names of processes and threads
    are left out (ours replace them, as :mod:`tracer.model.functions` does for its chunks)."""
    if event.get("ph") == "M" and event.get("name") in ("process_name", "thread_name"):
        return None
    if "tid" not in event:
        return event
    return {**event, "tid": function_tid(int(event["tid"]))}


def _on_function_tracks(events: Iterable[TraceEvent]) -> Iterator[TraceEvent]:
    for event in events:
        moved = _on_function_track(event)
        if moved is not None:
            yield moved


def _chunk_on_function_tracks(chunk: bytes) -> bytes:
    """A serialised batch of function events with each event's tid moved, without parsing it
    (one regular-expression pass: a long trace has millions of events)."""
    return _EVENT_IDS.sub(
        lambda m: b'"pid":%s,"tid":%d' % (m[1], function_tid(int(m[2]))), chunk)


def _trace_pieces(arrays: list[bytes]) -> Iterator[bytes]:
    """The JSON arrays' items as one ``traceEvents`` array."""
    yield b'{"traceEvents":['
    first = True
    for array in arrays:
        items = array[1:-1]
        if not items:
            continue
        if not first:
            yield b","
        yield items
        first = False
    yield b'],"displayTimeUnit":"ms"}'


def trace_events(
    source: RunModel | ReportView, function_events: Iterable[TraceEvent] | None = None
) -> list[TraceEvent]:
    """All events: metadata first, then function events, state slices, GIL, counters, markers."""
    view = as_view(source)
    events = _metadata(view)
    events.extend(_on_function_tracks(function_events or ()))
    events.extend(_own_events(view))
    return events


def _own_events(view: ReportView) -> list[TraceEvent]:
    """Our tracks, after the metadata and the function events."""
    model = view.model
    events = _state_slices(view.threads)
    events.extend(_gil_holder_slices(view))
    events.extend(_lock_events(view))
    events.extend(task_events(view))
    events.extend(_parallelism_counter(model))
    events.extend(_gil_waiters_counter(view))
    events.extend(_marker_events(model))
    return events


def _us(seconds: float) -> float:
    """Seconds to microseconds, rounded to the nanosecond so the file stays compact."""
    return round(seconds * US, 3)


def _meta(name: str, pid: int, tid: int, args: TraceEvent) -> TraceEvent:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": args}


def _target_pid(model: RunModel) -> int:
    """The program's own process: the main thread's (an attach may have none: the first)."""
    main = next((t.pid for t in model.threads if t.is_main), None)
    return main if main is not None else min((t.pid for t in model.threads), default=0)


def _metadata(view: ReportView) -> list[TraceEvent]:
    """Process and thread names plus sort indices (for viewers that read them; Perfetto orders by
    tid, which the synthetic tids already follow)."""
    model = view.model
    events = []
    pids = sorted({t.pid for t in model.threads} | {p.pid for p in model.processes})
    target = _target_pid(model)
    # The Processes table's commands: a fork of the target shows the program, not our bootstrap
    commands = {row.pid: row.command for row in view.processes.rows
                if row.command != MISSING} if view.processes else {}
    for index, pid in enumerate(pids):
        own = model.target.name if pid == target or not commands.get(pid) else commands[pid]
        name = f"{own} (pid {pid})"
        events.append(_meta("process_name", pid, 0, {"name": name}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": index}))
    for pid in sorted({view.threads[turn.row].pid for turn in view.gil_turns}):
        events.append(_meta("thread_name", pid, GIL_TID, {"name": "GIL holder"}))
        events.append(_meta("thread_sort_index", pid, GIL_TID, {"sort_index": -2}))
    if any(m.kind == "phase" for m in model.markers):
        events.append(_meta("thread_name", target, PHASES_TID, {"name": "phases"}))
        events.append(_meta("thread_sort_index", target, PHASES_TID, {"sort_index": -1}))
    for row, thread in enumerate(view.threads):
        label = thread_label(thread)
        for tid, name, sort in ((function_tid(thread.tid), label, row * TRACK_STRIDE),
                                (state_tid(thread.tid), f"states: {label}",
                                 row * TRACK_STRIDE + 1)):
            events.append(_meta("thread_name", thread.pid, tid, {"name": name}))
            events.append(_meta("thread_sort_index", thread.pid, tid, {"sort_index": sort}))
    return events


def _state_slices(threads: Sequence[ThreadTimeline]) -> list[TraceEvent]:
    """One complete event per merged interval, on the thread's own state track."""
    events = []
    for thread in threads:
        tid = state_tid(thread.tid)
        for interval in merge_intervals(thread.intervals):
            events.append(
                {
                    "ph": "X",
                    "name": interval.state,
                    "cat": "thread_state",
                    "pid": thread.pid,
                    "tid": tid,
                    "ts": _us(interval.start),
                    "dur": _us(interval.duration),
                    "args": {"thread": thread.name, "tid": thread.tid},
                }
            )
    return events


def _gil_holder_slices(view: ReportView) -> list[TraceEvent]:
    """One slice per holding turn, named by the holder, on its process's 'GIL holder' track."""
    threads = view.threads
    return [
        {
            "ph": "X",
            "name": threads[turn.row].name,
            "cat": "gil",
            "pid": threads[turn.row].pid,
            "tid": GIL_TID,
            "ts": _us(turn.start),
            "dur": _us(turn.end - turn.start),
            "args": {"tid": threads[turn.row].tid},
        }
        for turn in view.gil_turns
    ]


def _counter(name: str, pid: int, at: float, args: dict[str, float]) -> TraceEvent:
    return {"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": _us(at), "args": args}


def _parallelism_counter(model: RunModel) -> list[TraceEvent]:
    series = model.parallelism
    if series is None or not series.t:
        return []
    pid = _target_pid(model)
    events = [
        _counter("CPU parallelism", pid, t, {"cores busy": round(float(v), 4)})
        for t, v in zip(series.t, series.values, strict=False)
    ]
    # Close the last bin so the final value spans its width rather than ending at a point.
    events.append(_counter("CPU parallelism", pid, series.t[-1] + series.bin_s,
                           {"cores busy": 0.0}))
    return events


def _gil_waiters_counter(view: ReportView) -> list[TraceEvent]:
    waiters = view.gil_waiters
    pid = _target_pid(view.model)
    return [_counter("GIL waiters", pid, x, {"threads waiting": y})
            for x, y in zip(waiters.times, waiters.counts, strict=True)]


def _marker_events(model: RunModel) -> list[TraceEvent]:
    """Marks as instant events (on their thread when known); phases also as slices."""
    tids = {t.tid: t.pid for t in model.threads}
    target = _target_pid(model)
    events = []
    for marker in model.markers:
        args = {"kind": marker.kind, **marker.fields}
        instant: TraceEvent = {
            "ph": "i",
            "name": marker.name,
            "cat": "marker",
            "ts": _us(marker.start),
            "args": args,
        }
        if marker.tid is not None and marker.tid in tids:  # on the thread's state track
            instant.update(pid=tids[marker.tid], tid=state_tid(marker.tid), s="t")
        else:
            instant.update(pid=target, tid=0, s="g")
        events.append(instant)
        if marker.kind == "phase" and marker.end is not None:
            events.append(
                {
                    "ph": "X",
                    "name": marker.name,
                    "cat": "phase",
                    "pid": target,
                    "tid": PHASES_TID,
                    "ts": _us(marker.start),
                    "dur": _us(max(0.0, marker.end - marker.start)),
                    "args": args,
                }
            )
    return events


# ---------------------------------------------------------------------------------------------
# Lock waits, holds and hand-offs


@dataclass
class LockSlice:
    """A wait or hold as written to the trace, with the exact ts/dur emitted (flows bind inside)."""

    thread: ThreadTimeline
    row: int  # the thread's row (ordered_threads), which names its tracks
    interval: Interval
    what: str  # wait (contention) | signal (a wait for a signal) | hold
    lane: int = 0
    ts: float = 0.0
    dur: float = 0.0

    @property
    def detail(self) -> WaitDetail | HoldDetail:
        detail = self.interval.detail
        return detail if isinstance(detail, (WaitDetail, HoldDetail)) else UNKNOWN_LOCK


# What a wait or hold says when its interval does not name the lock (no real lock has id -1,
# so no hand-off binds to it).
UNKNOWN_LOCK = WaitDetail(lock=-1, pid=-1, name="a lock (not recorded which)", kind="lock",
                          holder=None, ok=True)


def place_in_lanes(slices: list[LockSlice]) -> int:
    """Give each slice the first lane where it nests inside, or follows, what is already there.

    Returns the number of lanes used. Ties start longest first, so an outer hold is placed before
    the wait it contains.
    """
    lanes: list[list[float]] = []  # per lane, the ends of the slices still open (a stack)
    eps = 1e-9
    for item in sorted(slices, key=lambda x: (x.interval.start, -x.interval.end)):
        start, end = item.interval.start, item.interval.end
        for index, stack in enumerate(lanes):
            while stack and stack[-1] <= start + eps:
                stack.pop()
            if not stack or end <= stack[-1] + eps:
                stack.append(end)
                item.lane = index
                break
        else:
            if len(lanes) >= LANES_PER_THREAD:
                item.lane = -1  # beyond any sane nesting: left out rather than mis-stacked
                continue
            lanes.append([end])
            item.lane = len(lanes) - 1
    return len(lanes)


def _lock_slices(
    threads: Sequence[ThreadTimeline],
) -> list[tuple[int, ThreadTimeline, list[LockSlice], int]]:
    """Per thread with lock activity: its row, its slices placed in lanes, and the lane count."""
    result = []
    for row, thread in enumerate(threads):
        slices = [
            LockSlice(thread, row, i, "wait" if i.state == LOCK_WAIT else "signal")
            for i in thread.intervals if i.state in (LOCK_WAIT, SIGNAL_WAIT)
        ]
        slices += [LockSlice(thread, row, i, "hold") for i in thread.holds]
        if not slices:
            continue
        lanes = place_in_lanes(slices)
        result.append((row, thread, [s for s in slices if s.lane >= 0], lanes))
    return result


def _lock_events(view: ReportView) -> list[TraceEvent]:
    """Lane metadata, one slice per wait and hold, and a flow arrow per hand-off."""
    events: list[TraceEvent] = []
    placed: list[LockSlice] = []
    for row, thread, slices, lanes in _lock_slices(view.threads):
        label = thread_label(thread)
        for lane in range(lanes):
            name = f"locks: {label}" + (f" ({lane + 1})" if lane else "")
            tid = lock_tid(thread.tid, lane)
            events.append(_meta("thread_name", thread.pid, tid, {"name": name}))
            sort = {"sort_index": row * TRACK_STRIDE + 2 + lane}
            events.append(_meta("thread_sort_index", thread.pid, tid, sort))
        for item in sorted(slices, key=lambda x: (x.interval.start, -x.interval.end)):
            item.ts, item.dur = _us(item.interval.start), _us(max(0.0, item.interval.duration))
            events.append(_lock_slice(item, lock_tid(thread.tid, item.lane), view.names))
            placed.append(item)
    events.extend(_handoff_flows(view.model.locks, placed))
    return events


def _lock_slice(item: LockSlice, tid: int, names: Mapping[int, str]) -> TraceEvent:
    detail = item.detail
    args: TraceEvent = {"lock": detail.lock, "kind": detail.kind}
    signal = item.what == "signal"
    if isinstance(detail, WaitDetail):
        if signal:  # nobody holds a signal: say which call waited instead
            args["call"] = wait_kind_words(detail.kind)
            args["signalled"] = detail.ok and not detail.unfinished
        else:
            holder = detail.holder
            args["holder"] = None if holder is None else names.get(holder, f"tid {holder}")
            args["acquired"] = detail.ok and not detail.unfinished
        if detail.unfinished:
            args["still waiting at the end"] = True
    elif detail.open:
        args["still held at the end"] = True
    return {
        "ph": "X",
        "name": f"wait for a signal on {detail.name}" if signal else f"{item.what} {detail.name}",
        "cat": SIGNAL_WAIT if signal else f"lock_{item.what}",
        "pid": item.thread.pid,
        "tid": tid,
        "ts": item.ts,
        "dur": item.dur,
        "args": args,
    }


# The release and acquire slices that flows bind to: 1 µs, nested just inside the end of the hold
# and of the wait (their real instants are those ends).
MOMENT_US = 1.0
NS_US = 0.001


def _moment(item: LockSlice, verb: str, flow: int, phase: str) -> list[TraceEvent]:
    """A tiny slice at the end of ``item`` plus the flow event bound inside it.

    Perfetto orders a flow's ends by their slices' start times, so binding to the hold and the
    wait themselves would draw an arrow from whichever began first (usually the wait). The
    release slice starts at the release and the acquire slice at the acquisition, which follow
    each other in the order of the hand-off.
    """
    detail = item.detail
    dur = MOMENT_US if item.dur >= 4 * MOMENT_US else round(item.dur / 4, 3)
    ts = round(item.ts + item.dur - dur - NS_US, 3)  # ends a nanosecond inside the parent
    tid = lock_tid(item.thread.tid, item.lane)
    pid = item.thread.pid
    name = f"{verb} {detail.name}"
    flow_event: TraceEvent = {
        "ph": phase,
        "name": "hand-off",
        "cat": "lock_handoff",
        "id": flow,
        "pid": pid,
        "tid": tid,
        "ts": round(ts + dur / 2, 3),
    }
    if phase == "f":
        flow_event["bp"] = "e"
    moment = {
        "ph": "X",
        "name": name,
        "cat": "lock_handoff",
        "pid": pid,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": {"lock": detail.lock},
    }
    return [moment, flow_event]


def _handoff_flows(locks: Sequence[LockStats], placed: list[LockSlice]) -> list[TraceEvent]:
    """Flow arrows from the releasing holder's hold slice to the woken waiter's wait slice.

    A hand-off is drawn only when both slices are in the trace: the lock recorder keeps holds
    worth drawing, so a short hold's hand-off has no slice to start from. Slices are looked up
    by (thread, lock, end in whole microseconds): a busy lock has tens of thousands of each."""
    ends: dict[tuple[str, int, int, int], list[LockSlice]] = {}
    for item in placed:
        key = (item.what, item.thread.tid, item.detail.lock, round(item.interval.end * 1e6))
        ends.setdefault(key, []).append(item)
    events: list[TraceEvent] = []
    flow = 0
    for row in locks:
        for handoff in row.handoffs:
            source = _slice_ending(ends, "hold", handoff.from_tid, row, handoff.released_s)
            target = _slice_ending(ends, "wait", handoff.to_tid, row, handoff.acquired_s)
            if source is None or target is None:
                continue
            flow += 1
            events.extend(_moment(source, "release", flow, "s"))
            events.extend(_moment(target, "acquire", flow, "f"))
    return events


def _slice_ending(ends: dict[tuple[str, int, int, int], list[LockSlice]], what: str, tid: int,
                  row: LockStats, at: float) -> LockSlice | None:
    """The slice of this lock (same process) that ends at ``at``, to within a microsecond."""
    micros = round(at * 1e6)
    for near in (micros, micros - 1, micros + 1):
        for item in ends.get((what, tid, row.id, near), []):
            if item.detail.pid != row.pid:
                continue
            if abs(item.interval.end - at) <= 1e-6:
                return item
    return None
