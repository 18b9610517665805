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

from tracer.instrument import faults

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
    """Never raises into the program: a marker that cannot be written is counted (see
    :mod:`tracer.instrument.faults`) and the program goes on."""
    global _sink
    if not _sink_path:
        return
    try:
        line = json.dumps(record, separators=(",", ":"), default=faults.json_default) + "\n"
        with _sink_lock:
            if _sink is None:
                _sink = open(_sink_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            _sink.write(line)
    except Exception as exc:
        faults.note("marker_lost", exc)
        return
    try:
        _log_to_viztracer(record)
    except Exception as exc:
        faults.note("marker_viztracer", exc)


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
            "name": _name(name),
            "t_ns": time.monotonic_ns(),
            "tid": threading.get_native_id(),
            "fields": _plain_fields(fields),
        }
    )


@contextmanager
def phase(name: str, **fields: Any) -> Iterator[None]:
    """Record the start and end of a named phase of the program."""
    _write(
        {
            "kind": "phase_start",
            "name": _name(name),
            "t_ns": time.monotonic_ns(),
            "tid": threading.get_native_id(),
            "fields": _plain_fields(fields),
        }
    )
    try:
        yield
    finally:
        _write(
            {
                "kind": "phase_end",
                "name": _name(name),
                "t_ns": time.monotonic_ns(),
                "tid": threading.get_native_id(),
                "fields": {},
            }
        )


def _name(name: Any) -> str:
    """``str(name)``, as before; a name whose ``str()`` raises is a counted placeholder."""
    try:
        text = str(name)
        if isinstance(text, str):
            return str.__str__(text)
    except Exception as exc:
        faults.note("marker_name", exc)
    return faults.PLACEHOLDER


def _plain_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in fields.items()}


def _plain(value: Any) -> Any:
    """A JSON value: numbers, strings, booleans and None as they are, anything else as its
    ``repr`` (or a counted placeholder when even that raises)."""
    if type(value) in (int, float, str, bool, type(None)):
        return value
    if isinstance(value, (int, float, str)):  # a subclass: its plain value, not its repr
        for plain in (bool, int, float, str):
            if isinstance(value, plain):
                try:
                    return plain(value)
                except Exception:
                    break
    try:
        text = repr(value)
        if isinstance(text, str):
            return str.__str__(text)
    except Exception as exc:
        faults.note("marker_field", exc)
    return faults.PLACEHOLDER
