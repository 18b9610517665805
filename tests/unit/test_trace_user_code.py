"""trace.json starts at the user's code: the calls of the tracer's bootstrap, of runpy and the exec
that runs the program are left out of the function timeline; every other event is kept as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tracer.model import functions
from tracer.model.functions import is_wrapper_call, load_function_trace

BOOT = "/opt/site-packages/tracer/bootstrap.py"


def _x(name: str, ts: float, dur: float, tid: int = 1) -> dict[str, Any]:
    return {"pid": 1, "tid": tid, "ts": ts, "ph": "X", "cat": "fee", "dur": dur, "name": name}


def _events() -> list[dict[str, Any]]:
    """A main thread as VizTracer writes it (in the order calls return): bootstrap -> run_module
    -> _run_module_code -> _run_code -> exec -> <module> -> the user's own exec, plus a worker
    thread and runpy's import of the package, which is the user's code and stays."""
    return [
        {"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "MainThread"}},
        _x("posix.getcwd", 1.0, 0.5),
        _x("_find_and_load (<frozen importlib._bootstrap>:1165)", 3.0, 2.0),
        _x("builtins.__import__", 2.9, 2.2),
        _x("_get_module_details (<frozen runpy>:105)", 2.5, 3.0),
        _x("compute (/home/me/app/job.py:3)", 11.0, 2.0, tid=2),
        _x("EventLog.write (/opt/site-packages/tracer/inprocess.py:40)", 14.0, 0.2, tid=2),
        _x("builtins.exec", 21.0, 1.0),  # the user's own exec, inside <module>
        _x("<module> (/home/me/app/job.py:1)", 20.0, 10.0),
        _x("builtins.exec", 19.0, 12.0),  # runpy's exec of the program
        _x("_run_code (<frozen runpy>:65)", 18.0, 14.0),
        _x("_run_module_code (<frozen runpy>:91)", 17.0, 16.0),
        _x("run_module (<frozen runpy>:201)", 2.0, 32.0),
        _x(f"_Target._run_user_code ({BOOT}:76)", 0.5, 34.0),
        _x("threading.enumerate", 36.0, 0.5),
        _x(f"_wait_for_non_daemon_threads ({BOOT}:86)", 35.0, 2.0),
    ]


WRAPPERS = {"_get_module_details (<frozen runpy>:105)", "_run_code (<frozen runpy>:65)",
            "_run_module_code (<frozen runpy>:91)", "run_module (<frozen runpy>:201)",
            f"_Target._run_user_code ({BOOT}:76)", f"_wait_for_non_daemon_threads ({BOOT}:86)",
            "EventLog.write (/opt/site-packages/tracer/inprocess.py:40)"}


def _write(tmp_path: Path, events: list[dict[str, Any]]) -> Path:
    path = tmp_path / "viztracer.json"
    path.write_bytes(orjson.dumps({"traceEvents": events, "viztracer_metadata": {}}))
    return path


def _expected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input minus metadata, wrappers and the exec at 19.0 (no clock: times unchanged)."""
    return [e for e in events if e["ph"] != "M" and e["name"] not in WRAPPERS
            and not (e["name"] == "builtins.exec" and e["ts"] == 19.0)]


def test_wrapper_calls_are_named_by_file() -> None:
    assert is_wrapper_call("run_module (<frozen runpy>:201)")
    assert is_wrapper_call("_run_code (/usr/lib/python3.10/runpy.py:86)")
    assert is_wrapper_call(f"_Target._run_user_code ({BOOT}:76)")
    assert is_wrapper_call("EventLog.write (/x/tracer/inprocess.py:40)")
    assert not is_wrapper_call("<module> (/home/me/runpy_demo.py:1)")
    assert not is_wrapper_call("_find_and_load (<frozen importlib._bootstrap>:1165)")
    assert not is_wrapper_call("acquire (/x/tracer/instrument/locks.py:505)")  # under user code
    assert not is_wrapper_call("builtins.exec")


def test_the_main_thread_starts_at_the_users_module(tmp_path: Path) -> None:
    events = _events()
    trace = load_function_trace(_write(tmp_path, events), [], 0)
    kept = trace.events()
    assert kept == _expected(events)
    main = sorted((e for e in kept if e["tid"] == 1 and e["dur"] > 5), key=lambda e: e["ts"])
    assert main[0]["name"] == "<module> (/home/me/app/job.py:1)"
    assert [e["ts"] for e in kept if e["name"] == "builtins.exec"] == [21.0]  # the user's own
    # still counted: VizTracer recorded (and paid for) them
    assert trace.entries == len(events) - 1
    assert trace.total_calls == len(events) - 1


def test_other_events_keep_their_bytes(tmp_path: Path) -> None:
    events = _events()
    trace = load_function_trace(_write(tmp_path, events), [], 0)
    assert b"".join(trace.chunks) == orjson.dumps(_expected(events))


def test_an_exec_in_an_earlier_batch_is_still_dropped(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """runpy's exec returns before _run_code does, so a batch boundary can fall between them."""
    monkeypatch.setattr(functions, "BATCH_BYTES", 200)  # a batch of an event or two
    events = _events()
    trace = load_function_trace(_write(tmp_path, events), [], 0)
    assert len(trace.chunks) > 3
    assert trace.events() == _expected(events)
    assert all(chunk != b"[]" for chunk in trace.chunks)


def test_a_trace_without_runpy_is_untouched(tmp_path: Path) -> None:
    """Attach and API runs have no runpy frames: every exec stays."""
    events = [_x("builtins.exec", 1.0, 5.0), _x("<module> (/a.py:1)", 1.5, 4.0),
              _x("main (/a.py:9)", 7.0, 1.0)]
    trace = load_function_trace(_write(tmp_path, events), [], 0)
    assert trace.events() == events


def test_a_wrapper_still_open_at_stop_is_left_out(tmp_path: Path) -> None:
    """VizTracer writes the calls still on the stack when it stopped as begin events."""
    events = [_x("main (/a.py:9)", 7.0, 1.0),
              {"pid": 1, "tid": 1, "ts": 9.0, "ph": "B", "cat": "fee",
               "name": "InProcessRecording.finish (/x/tracer/inprocess.py:200)"},
              {"pid": 1, "tid": 1, "ts": 9.5, "ph": "B", "cat": "fee", "name": "user (/a.py:3)"}]
    trace = load_function_trace(_write(tmp_path, events), [], 0)
    assert trace.events() == [events[0], events[2]]
