"""VizTracer's function timeline, moved onto the shared clock and relative to t0.

The report does not draw individual calls (a browser cannot draw a million of them); they go to
``trace.json`` untouched apart from the time shift, next to our state tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer.clock import LinearClockMap
from tracer.model.rawfiles import read_json


@dataclass
class FunctionTrace:
    events: list[dict[str, Any]] = field(default_factory=list)
    thread_names: dict[int, str] = field(default_factory=dict)
    overflow: bool = False
    entries: int = 0


def load_function_trace(path: Path, clock_pairs: list[list[float]], t0_ns: int) -> FunctionTrace:
    raw = read_json(path)
    if raw is None:
        return FunctionTrace()
    events = raw.get("traceEvents", []) if isinstance(raw, dict) else raw
    meta = raw.get("viztracer_metadata", {}) if isinstance(raw, dict) else {}
    pairs = [(float(f), int(m)) for f, m in clock_pairs] if clock_pairs else []
    clock = LinearClockMap.from_pairs(pairs, unit_ns=1000.0) if pairs else None
    out: list[dict[str, Any]] = []
    names: dict[int, str] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        if event.get("ph") == "M":
            if event.get("name") == "thread_name":
                names[int(event.get("tid", 0))] = str(event.get("args", {}).get("name", ""))
            continue
        if "ts" in event:
            event = dict(event)
            mono = clock.to_ns(float(event["ts"])) if clock else int(float(event["ts"]) * 1000)
            event["ts"] = round((mono - t0_ns) / 1000, 3)
            if clock and "dur" in event:
                event["dur"] = round(float(event["dur"]) * clock.scale / 1000, 3)
        out.append(event)
    return FunctionTrace(events=out, thread_names=names, overflow=bool(meta.get("overflow")),
                         entries=len(out))
