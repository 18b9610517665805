"""trace.json: every event, in Chrome trace-event JSON, for Perfetto and VizTracer's viewer.

The HTML report aggregates past a drawing budget; this file never does. It carries VizTracer's
function events unchanged, and adds our own tracks next to them: per-thread state slices on a
synthetic process, the GIL holder's turns, counters for CPU parallelism and GIL waiters, and the
run markers. Timestamps are microseconds from the model's t0, the same clock as the function
events.

The state tracks live in their own process with their own synthetic tids: Perfetto keys threads
by tid, so reusing the real tids under a second pid would split or merge the real threads' tracks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from reports.explain import ordered_threads, thread_label
from reports.figures import gil_turns, gil_waiter_steps, has_gil_data, merge_intervals
from tracer.model.schema import RunModel
from tracer.runfolder import atomic_write_bytes

# Synthetic ids, far above Linux's pid_max (4,194,304), so they cannot collide with real ones.
STATES_PID = 900_000_000
GIL_TID = STATES_PID + 1
PHASES_TID = STATES_PID + 2
FIRST_STATE_TID = STATES_PID + 10
STATES_PROCESS = "threadscope: thread states"
US = 1e6


def write_trace(
    model: RunModel, out: Path, function_events: Iterable[dict[str, Any]] | None = None
) -> None:
    """Write ``{"traceEvents": [...], "displayTimeUnit": "ms"}`` atomically to ``out``."""
    events = trace_events(model, function_events)
    payload = {"traceEvents": events, "displayTimeUnit": "ms"}
    atomic_write_bytes(out, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))


def trace_events(
    model: RunModel, function_events: Iterable[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """All events: metadata first, then function events, state slices, GIL, counters, markers."""
    events = _metadata(model)
    events.extend(function_events or ())
    events.extend(_state_slices(model))
    events.extend(_gil_holder_slices(model))
    events.extend(_parallelism_counter(model))
    events.extend(_gil_waiters_counter(model))
    events.extend(_marker_events(model))
    return events


def _us(seconds: float) -> float:
    """Seconds to microseconds, rounded to the nanosecond so the file stays compact."""
    return round(seconds * US, 3)


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "ts": 0, "args": args}


def _state_tid(row: int) -> int:
    return FIRST_STATE_TID + row


def _metadata(model: RunModel) -> list[dict[str, Any]]:
    """Process and thread names plus sort indices: real threads first, our tracks right after."""
    events = []
    names = {p.get("pid"): p.get("name") for p in model.processes if isinstance(p, dict)}
    pids = sorted({t.pid for t in model.threads})
    for index, pid in enumerate(pids):
        name = names.get(pid) or f"{model.target.name} (pid {pid})"
        events.append(_meta("process_name", pid, 0, {"name": name}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": index}))
    events.append(_meta("process_name", STATES_PID, 0, {"name": STATES_PROCESS}))
    events.append(_meta("process_sort_index", STATES_PID, 0, {"sort_index": len(pids)}))
    if has_gil_data(model):
        events.append(_meta("thread_name", STATES_PID, GIL_TID, {"name": "GIL holder"}))
        events.append(_meta("thread_sort_index", STATES_PID, GIL_TID, {"sort_index": -2}))
    if any(m.kind == "phase" for m in model.markers):
        events.append(_meta("thread_name", STATES_PID, PHASES_TID, {"name": "phases"}))
        events.append(_meta("thread_sort_index", STATES_PID, PHASES_TID, {"sort_index": -1}))
    for row, thread in enumerate(ordered_threads(model)):
        label = thread_label(thread)
        events.append(_meta("thread_name", thread.pid, thread.tid, {"name": thread.name}))
        events.append(_meta("thread_sort_index", thread.pid, thread.tid, {"sort_index": row}))
        events.append(_meta("thread_name", STATES_PID, _state_tid(row), {"name": label}))
        events.append(_meta("thread_sort_index", STATES_PID, _state_tid(row), {"sort_index": row}))
    return events


def _state_slices(model: RunModel) -> list[dict[str, Any]]:
    """One complete event per merged interval, on the thread's own state track."""
    events = []
    for row, thread in enumerate(ordered_threads(model)):
        for interval in merge_intervals(thread.intervals):
            events.append(
                {
                    "ph": "X",
                    "name": interval.state,
                    "cat": "thread_state",
                    "pid": STATES_PID,
                    "tid": _state_tid(row),
                    "ts": _us(interval.start),
                    "dur": _us(interval.duration),
                    "args": {"thread": thread.name, "tid": thread.tid},
                }
            )
    return events


def _gil_holder_slices(model: RunModel) -> list[dict[str, Any]]:
    """One slice per holding turn, named by the holder, on a single 'GIL holder' track."""
    threads = ordered_threads(model)
    return [
        {
            "ph": "X",
            "name": threads[turn.row].name,
            "cat": "gil",
            "pid": STATES_PID,
            "tid": GIL_TID,
            "ts": _us(turn.start),
            "dur": _us(turn.end - turn.start),
            "args": {"tid": threads[turn.row].tid},
        }
        for turn in gil_turns(model)
    ]


def _counter(name: str, at: float, args: dict[str, float]) -> dict[str, Any]:
    return {"ph": "C", "name": name, "pid": STATES_PID, "tid": 0, "ts": _us(at), "args": args}


def _parallelism_counter(model: RunModel) -> list[dict[str, Any]]:
    series = model.parallelism
    if series is None or not series.t:
        return []
    events = [
        _counter("CPU parallelism", t, {"cores busy": round(float(v), 4)})
        for t, v in zip(series.t, series.values, strict=False)
    ]
    # Close the last bin so the final value spans its width rather than ending at a point.
    events.append(_counter("CPU parallelism", series.t[-1] + series.bin_s, {"cores busy": 0.0}))
    return events


def _gil_waiters_counter(model: RunModel) -> list[dict[str, Any]]:
    xs, ys = gil_waiter_steps(model)
    return [_counter("GIL waiters", x, {"threads waiting": y}) for x, y in zip(xs, ys, strict=True)]


def _marker_events(model: RunModel) -> list[dict[str, Any]]:
    """Marks as instant events (on their thread when known); phases also as slices."""
    tids = {t.tid: t.pid for t in model.threads}
    events = []
    for marker in model.markers:
        args = {"kind": marker.kind, **marker.fields}
        instant: dict[str, Any] = {
            "ph": "i",
            "name": marker.name,
            "cat": "marker",
            "ts": _us(marker.start),
            "args": args,
        }
        if marker.tid is not None and marker.tid in tids:
            instant.update(pid=tids[marker.tid], tid=marker.tid, s="t")
        else:
            instant.update(pid=STATES_PID, tid=0, s="g")
        events.append(instant)
        if marker.kind == "phase" and marker.end is not None:
            events.append(
                {
                    "ph": "X",
                    "name": marker.name,
                    "cat": "phase",
                    "pid": STATES_PID,
                    "tid": PHASES_TID,
                    "ts": _us(marker.start),
                    "dur": _us(max(0.0, marker.end - marker.start)),
                    "args": args,
                }
            )
    return events
