"""trace.json: valid Chrome trace-event JSON with our tracks beside VizTracer's, nothing dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.perfetto import (
    GIL_TID,
    LockSlice,
    function_tid,
    place_in_lanes,
    state_tid,
    write_trace,
)
from reports.threads import thread_label, thread_state_seconds
from tests.fixtures.synthetic_model import (
    HOSTILE_LOCK,
    build_deadlock_model,
    build_large_model,
    build_lock_model,
    build_synthetic_model,
)
from tracer.model.schema import LOCK_HOLD, RUNNING, Interval, RunModel

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
    """Track name -> synthetic tid, over every process ("states: <label>" is a state track)."""
    return {e["args"]["name"]: e["tid"] for e in events
            if e["ph"] == "M" and e["name"] == "thread_name"}


def test_function_events_are_included_unchanged_on_their_threads_track(
        events: list[dict[str, Any]]) -> None:
    for event in FUNCTION_EVENTS:
        if event["ph"] != "M":
            assert {**event, "tid": function_tid(event["tid"])} in events


def test_each_threads_states_are_the_track_right_after_its_functions(
        model: RunModel, events: list[dict[str, Any]]) -> None:
    """Perfetto orders a process's threads by tid: consecutive tids keep them together."""
    tids = state_tids(events)
    for thread in model.threads:
        label = thread_label(thread)
        assert tids[label] == function_tid(thread.tid)
        assert tids[f"states: {label}"] == tids[label] + 1 == state_tid(thread.tid)
    # the GIL holder's track sorts above every thread's, in the program's own process
    assert tids["GIL holder"] == GIL_TID < min(tids[thread_label(t)] for t in model.threads)
    pids = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert pids == {t.pid for t in model.threads}


def test_function_events_may_be_a_generator(model: RunModel, tmp_path: Path) -> None:
    def generate() -> Iterator[dict[str, Any]]:
        yield from FUNCTION_EVENTS

    write_trace(model, tmp_path / "trace.json", generate())
    moved = {**FUNCTION_EVENTS[0], "tid": function_tid(FUNCTION_EVENTS[0]["tid"])}
    assert moved in load(tmp_path / "trace.json")["traceEvents"]


def test_metadata_names_processes_and_tracks(model: RunModel, events: list[dict[str, Any]]) -> None:
    assert meta(events, "process_name", 4242)[0] == {"name": "gil_cpu (pid 4242)"}
    assert not [e for e in events if e["name"] == "process_name" and e["pid"] != 4242]
    labels = state_tids(events)
    for thread in model.threads:
        assert thread_label(thread) in labels
        assert f"states: {thread_label(thread)}" in labels
    assert "GIL holder" in labels
    assert meta(events, "thread_sort_index", 4242)


def test_state_slices_cover_each_thread(model: RunModel, events: list[dict[str, Any]]) -> None:
    tids = state_tids(events)
    for thread in model.threads:
        mine = [
            e
            for e in events
            if e["ph"] == "X" and e["pid"] == thread.pid
            and e["tid"] == tids[f"states: {thread_label(thread)}"]
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
    assert instants["start workers"]["tid"] == state_tid(1000)
    assert instants["start workers"]["s"] == "t"
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
    assert_valid_trace_events(events)  # no thread, no track to name


# ---------------------------------------------------------------------------------------------
# Lock tracks and hand-off flows


@pytest.fixture(scope="module")
def lock_events(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("locks") / "trace.json"
    write_trace(build_lock_model(), out, FUNCTION_EVENTS)
    found: list[dict[str, Any]] = load(out)["traceEvents"]
    return found


def assert_valid_trace_events(events: list[dict[str, Any]]) -> None:
    """What the trace-event format and Perfetto's importer need: known phases with their fields,
    slices that nest or are disjoint on each track, and flows with exactly one start and end."""
    flows: dict[tuple[str, str, int], list[str]] = {}
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for event in events:
        assert event["ph"] in {"M", "X", "C", "i", "s", "f"}, event
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int), event
        if event["ph"] != "M":
            assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0, event
        if event["ph"] == "X":
            assert event["dur"] >= 0, event
            tracks.setdefault((event["pid"], event["tid"]), []).append(
                (event["ts"], event["ts"] + event["dur"])
            )
        if event["ph"] in ("s", "f"):
            assert isinstance(event["id"], int) and event["cat"] and event["name"], event
            flows.setdefault((event["cat"], event["name"], event["id"]), []).append(event["ph"])
    for phases in flows.values():
        assert sorted(phases) == ["f", "s"]
    for slices in tracks.values():
        open_ends: list[float] = []
        for start, end in sorted(slices, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start + 1e-9:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1] + 1e-9, (start, end, open_ends)
            open_ends.append(end)


def test_traces_stay_valid_trace_event_json(
    events: list[dict[str, Any]], lock_events: list[dict[str, Any]], tmp_path: Path
) -> None:
    assert_valid_trace_events(events)
    assert_valid_trace_events(lock_events)
    write_trace(build_deadlock_model(), tmp_path / "trace.json")
    assert_valid_trace_events(load(tmp_path / "trace.json")["traceEvents"])


def test_each_thread_with_lock_activity_has_a_lock_track(lock_events: list[dict[str, Any]]) -> None:
    tids = state_tids(lock_events)
    assert set(name for name in tids if name.startswith("locks: ")) == {
        "locks: worker-0 (tid 1001)",
        "locks: worker-2 (tid 1003)",
        "locks: hasher (tid 1101)",
    }
    # Each lock track sits right after its thread's state track, by tid and by sort index.
    assert tids["locks: worker-0 (tid 1001)"] == tids["states: worker-0 (tid 1001)"] + 1
    pid = next(e["pid"] for e in lock_events if e["name"] == "process_name")
    sort = meta(lock_events, "thread_sort_index", pid)
    for label in ("worker-0 (tid 1001)", "hasher (tid 1101)"):
        assert (sort[tids[f"locks: {label}"]]["sort_index"]
                == sort[tids[f"states: {label}"]]["sort_index"] + 1)


def test_lock_waits_and_holds_become_named_slices(lock_events: list[dict[str, Any]]) -> None:
    tids = state_tids(lock_events)
    hasher = [
        e for e in lock_events if e["ph"] == "X" and e["tid"] == tids["locks: hasher (tid 1101)"]
    ]
    (wait,) = [e for e in hasher if e["cat"] == "lock_wait"]
    assert wait["name"] == f"wait {HOSTILE_LOCK}"
    assert wait["args"] == {"lock": 1, "kind": "lock", "holder": "worker-0", "acquired": True}
    assert wait["ts"] == pytest.approx(300000) and wait["dur"] == pytest.approx(100000)
    worker = [
        e for e in lock_events if e["ph"] == "X" and e["tid"] == tids["locks: worker-0 (tid 1001)"]
    ]
    assert sorted(e["name"] for e in worker if e["cat"] == "lock_hold") == [
        f"hold {HOSTILE_LOCK}",
        "hold inner",
    ]
    # A barrier is waited on for a signal, not contended: its own category, and no holder.
    assert not [e for e in lock_events if e.get("cat") == "lock_wait" and "start line" in e["name"]]
    (barrier,) = [e for e in lock_events if e.get("cat") == "signal_wait"]
    assert barrier["name"] == "wait for a signal on start line"
    assert barrier["args"] == {"lock": 2, "kind": "barrier", "call": "Barrier.wait",
                               "signalled": True}


def test_hand_offs_are_flows_from_the_release_to_the_acquisition(
    lock_events: list[dict[str, Any]],
) -> None:
    tids = state_tids(lock_events)
    starts = [e for e in lock_events if e["ph"] == "s"]
    ends = [e for e in lock_events if e["ph"] == "f"]
    assert len(starts) == len(ends) == 1
    start, end = starts[0], ends[0]
    assert start["id"] == end["id"] and end["bp"] == "e"
    assert start["tid"] == tids["locks: worker-0 (tid 1001)"]
    assert end["tid"] == tids["locks: hasher (tid 1101)"]

    def innermost(event: dict[str, Any]) -> list[dict[str, Any]]:
        """The slices enclosing a flow event on its track, innermost first."""
        around = [
            e
            for e in lock_events
            if e["ph"] == "X"
            and e["tid"] == event["tid"]
            and e["ts"] <= event["ts"] <= e["ts"] + e["dur"]
        ]
        return sorted(around, key=lambda e: e["dur"])

    release, hold = innermost(start)[:2]
    acquire, wait = innermost(end)[:2]
    assert release["name"] == f"release {HOSTILE_LOCK}" and hold["cat"] == "lock_hold"
    assert acquire["name"] == f"acquire {HOSTILE_LOCK}" and wait["cat"] == "lock_wait"
    # Perfetto draws a flow from the slice that starts first: the release must.
    assert release["ts"] < acquire["ts"]
    assert release["ts"] + release["dur"] <= hold["ts"] + hold["dur"]
    assert acquire["ts"] + acquire["dur"] <= wait["ts"] + wait["dur"]


def test_hand_offs_without_a_hold_slice_are_left_out(tmp_path: Path) -> None:
    model = build_lock_model()
    model.threads[1].holds = []
    write_trace(model, tmp_path / "trace.json")
    events = load(tmp_path / "trace.json")["traceEvents"]
    assert not [e for e in events if e["ph"] in ("s", "f")]
    assert_valid_trace_events(events)


def test_overlapping_holds_move_to_a_second_lane() -> None:
    model = build_deadlock_model()
    thread = model.threads[1]
    hand_over_hand = [
        Interval(0.0, 0.4, LOCK_HOLD, {"lock": 1, "name": "a"}),
        Interval(0.3, 0.6, LOCK_HOLD, {"lock": 2, "name": "b"}),
        Interval(0.1, 0.2, LOCK_HOLD, {"lock": 3, "name": "c"}),
    ]
    slices = [LockSlice(thread, 1, i, "hold") for i in hand_over_hand]
    assert place_in_lanes(slices) == 2
    assert [s.lane for s in slices] == [0, 1, 0]


def test_deadlocked_threads_show_their_open_hold_and_wait(tmp_path: Path) -> None:
    write_trace(build_deadlock_model(), tmp_path / "trace.json")
    events = load(tmp_path / "trace.json")["traceEvents"]
    tids = state_tids(events)
    first = [e for e in events if e["ph"] == "X" and e["tid"] == tids["locks: first (tid 3001)"]]
    assert [e["name"] for e in first] == ["hold lock_a", "wait lock_b"]
    assert first[0]["args"]["still held at the end"] is True
    assert first[1]["args"]["still waiting at the end"] is True
    assert first[1]["args"]["holder"] == "second"
