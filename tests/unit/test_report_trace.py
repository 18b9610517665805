"""trace.json: valid Chrome trace-event JSON with our tracks beside VizTracer's, nothing dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.explain import thread_label, thread_state_seconds
from reports.perfetto import STATES_PID, STATES_PROCESS, write_trace
from tests.fixtures.synthetic_model import build_large_model, build_synthetic_model
from tracer.model.schema import RUNNING, RunModel

FUNCTION_EVENTS: list[dict[str, Any]] = [
    {
        "ph": "X",
        "name": "spin (gil_cpu.py:14)",
        "pid": 4242,
        "tid": 1001,
        "ts": 20000.5,
        "dur": 1400000.0,
        "cat": "FEE",
    },
    {
        "ph": "X",
        "name": "</script><script>alert(1)</script>",
        "pid": 4242,
        "tid": 1002,
        "ts": 20001.0,
        "dur": 10.0,
    },
    {"ph": "M", "name": "thread_name", "pid": 4242, "tid": 1001, "args": {"name": "worker-0"}},
    {"ph": "i", "name": "vt instant", "pid": 4242, "tid": 1000, "ts": 5.0, "s": "t"},
]


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def model() -> RunModel:
    return build_synthetic_model()


@pytest.fixture(scope="module")
def events(model: RunModel, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("trace") / "trace.json"
    write_trace(model, out, FUNCTION_EVENTS)
    document = load(out)
    assert document["displayTimeUnit"] == "ms"
    found: list[dict[str, Any]] = document["traceEvents"]
    return found


def meta(events: list[dict[str, Any]], name: str, pid: int) -> dict[int, Any]:
    return {
        e["tid"]: e["args"]
        for e in events
        if e["ph"] == "M" and e["name"] == name and e["pid"] == pid
    }


def state_tids(events: list[dict[str, Any]]) -> dict[str, int]:
    """Thread label -> synthetic tid of its state track."""
    return {args["name"]: tid for tid, args in meta(events, "thread_name", STATES_PID).items()}


def test_function_events_are_included_unchanged(events: list[dict[str, Any]]) -> None:
    for event in FUNCTION_EVENTS:
        assert event in events


def test_function_events_may_be_a_generator(model: RunModel, tmp_path: Path) -> None:
    def generate() -> Iterator[dict[str, Any]]:
        yield from FUNCTION_EVENTS

    write_trace(model, tmp_path / "trace.json", generate())
    assert FUNCTION_EVENTS[0] in load(tmp_path / "trace.json")["traceEvents"]


def test_metadata_names_processes_and_tracks(model: RunModel, events: list[dict[str, Any]]) -> None:
    assert meta(events, "process_name", STATES_PID)[0] == {"name": STATES_PROCESS}
    assert meta(events, "process_name", 4242)[0] == {"name": "python gil_cpu"}
    sort = {e["pid"]: e["args"]["sort_index"] for e in events if e["name"] == "process_sort_index"}
    assert sort[STATES_PID] == sort[4242] + 1  # state tracks right after the real process
    labels = state_tids(events)
    for thread in model.threads:
        assert thread_label(thread) in labels
    assert "GIL holder" in labels
    assert meta(events, "thread_sort_index", STATES_PID)


def test_state_slices_cover_each_thread(model: RunModel, events: list[dict[str, Any]]) -> None:
    tids = state_tids(events)
    for thread in model.threads:
        mine = [
            e
            for e in events
            if e["ph"] == "X" and e["pid"] == STATES_PID and e["tid"] == tids[thread_label(thread)]
        ]
        assert mine, thread.name
        for state, seconds in thread_state_seconds(thread).items():
            drawn = sum(e["dur"] for e in mine if e["name"] == state) / 1e6
            assert drawn == pytest.approx(seconds, abs=1e-5), (thread.name, state)
        starts = [e["ts"] for e in mine]
        assert starts == sorted(starts)


def test_gil_holder_turns_are_named_and_never_overlap(
    model: RunModel, events: list[dict[str, Any]]
) -> None:
    gil_tid = state_tids(events)["GIL holder"]
    turns = [e for e in events if e["ph"] == "X" and e["tid"] == gil_tid]
    assert len(turns) > 100
    assert {t["name"] for t in turns} <= {t.name for t in model.threads}
    for before, after in zip(turns, turns[1:], strict=False):
        assert before["ts"] + before["dur"] <= after["ts"] + 1e-3
    held = sum(t["dur"] for t in turns) / 1e6
    running = sum(i.duration for t in model.threads for i in t.intervals if i.state == RUNNING)
    assert 0 < held <= running + 1e-6


def test_counters_for_parallelism_and_gil_waiters(
    model: RunModel, events: list[dict[str, Any]]
) -> None:
    counters = [e for e in events if e["ph"] == "C"]
    parallelism = [e for e in counters if e["name"] == "CPU parallelism"]
    assert model.parallelism is not None
    assert len(parallelism) == len(model.parallelism.t) + 1
    waiters = [e["args"]["threads waiting"] for e in counters if e["name"] == "GIL waiters"]
    assert max(waiters) == 3 and waiters[-1] == 0


def test_markers_become_instant_events(model: RunModel, events: list[dict[str, Any]]) -> None:
    instants = {e["name"]: e for e in events if e["ph"] == "i" and e.get("cat") == "marker"}
    assert set(instants) == {m.name for m in model.markers}
    assert instants["start workers"]["tid"] == 1000 and instants["start workers"]["s"] == "t"
    assert instants["<img src=x onerror=alert(1)>"]["s"] == "g"
    phases = [e for e in events if e.get("cat") == "phase"]
    assert [p["name"] for p in phases] == ["threads"]


def test_every_event_has_the_fields_perfetto_needs(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert {"ph", "name", "pid", "tid"} <= event.keys(), event
        if event["ph"] in ("X", "C", "i"):
            assert isinstance(event["ts"], (int, float))
        if event["ph"] == "X":
            assert event["dur"] >= 0


def test_no_gil_tracks_without_gil_data(tmp_path: Path) -> None:
    write_trace(build_synthetic_model(gil=False), tmp_path / "trace.json")
    events = load(tmp_path / "trace.json")["traceEvents"]
    assert "GIL holder" not in state_tids(events)
    assert not [e for e in events if e["ph"] == "C" and e["name"] == "GIL waiters"]
    assert [e for e in events if e["ph"] == "X" and e["name"] == "on_cpu"]


def test_large_runs_keep_every_interval(tmp_path: Path) -> None:
    model = build_large_model(threads=8, intervals=2000)
    write_trace(model, tmp_path / "trace.json")
    events = load(tmp_path / "trace.json")["traceEvents"]
    slices = [e for e in events if e["ph"] == "X" and e.get("cat") == "thread_state"]
    assert len(slices) == 8 * 2000


def test_empty_model_writes_a_valid_trace(tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.threads, model.parallelism, model.markers = [], None, []
    write_trace(model, tmp_path / "trace.json", [])
    events = load(tmp_path / "trace.json")["traceEvents"]
    assert [e for e in events if e["ph"] == "M"]
