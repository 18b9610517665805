"""Run markers: named instants and phases that a program under the tracer can leave on the timeline.

Scenarios use them to say "the threaded part starts here", and user code may too::

    with tracer.phase("load"):
        ...

Outside the tracer they cost one environment lookup at import and do nothing else, so scripts that
use them still run as plain Python.
"""

from __future__ import annotations

import _thread
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

MARKERS_ENV = "THREADSCOPE_MARKERS"

_sink_lock = _thread.allocate_lock()  # a raw lock: our own lock instrumentation must not see it
_sink: IO[str] | None = None
_sink_path = os.environ.get(MARKERS_ENV)


def set_sink(path: str | None) -> str | None:
    """Send markers to ``path`` from now on (the Python API records a block); returns the
    previous path."""
    global _sink, _sink_path
    with _sink_lock:
        previous = _sink_path
        if _sink is not None:
            _sink.close()
            _sink = None
        _sink_path = path
    return previous


def _write(record: dict[str, Any]) -> None:
    global _sink
    if not _sink_path:
        return
    with _sink_lock:
        if _sink is None:
            _sink = open(_sink_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        _sink.write(json.dumps(record, separators=(",", ":")) + "\n")
    _log_to_viztracer(record)


def _log_to_viztracer(record: dict[str, Any]) -> None:
    """Also leave the marker in VizTracer's timeline, so the two sources can be checked against
    each other (the clock-alignment test relies on it)."""
    viztracer = sys.modules.get("viztracer")  # never import it here: that would take 0.1 s
    if viztracer is None:
        return
    tracer = viztracer.get_tracer()
    if tracer is not None and getattr(tracer, "enable", False):
        tracer.log_instant(f"threadscope:{record['name']}", args={"t_ns": record["t_ns"]})


def mark(name: str, **fields: Any) -> None:
    """Record an instant named ``name`` on the calling thread."""
    _write(
        {
            "kind": "mark",
            "name": str(name),
            "t_ns": time.monotonic_ns(),
            "tid": threading.get_native_id(),
            "fields": {k: _plain(v) for k, v in fields.items()},
        }
    )


@contextmanager
def phase(name: str, **fields: Any) -> Iterator[None]:
    """Record the start and end of a named phase of the program."""
    _write(
        {
            "kind": "phase_start",
            "name": str(name),
            "t_ns": time.monotonic_ns(),
            "tid": threading.get_native_id(),
            "fields": {k: _plain(v) for k, v in fields.items()},
        }
    )
    try:
        yield
    finally:
        _write(
            {
                "kind": "phase_end",
                "name": str(name),
                "t_ns": time.monotonic_ns(),
                "tid": threading.get_native_id(),
                "fields": {},
            }
        )


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
