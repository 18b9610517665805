"""Sampled GIL timelines on tiny hand-made sample lists: loading, tstate spans, states, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.errors import CorruptRecording
from tracer.model.gil_exact import gil_metrics
from tracer.model.gil_sampled import (
    child_gil_addresses,
    load_gil_samples,
    sampled_gil_timelines,
    sampled_switches,
    tstate_map,
)
from tracer.model.schema import BLOCKED, CPU_WAIT, GIL_WAIT, NATIVE, RUNNING, Interval

MS = 1_000_000  # ns
T0 = 1_000 * MS
A, B = 0xA000, 0xB000  # PyThreadState addresses
MAIN, T1, T2 = 100, 101, 102  # tids
# T1 and T2 live for the whole test window; the main thread has existed since before it.
EVENTS: list[dict[str, Any]] = [
    {"ev": "main", "t_ns": T0 - 5 * MS, "tid": MAIN, "tstate": 0xF000},
    {"ev": "start", "t_ns": T0 - 2 * MS, "tid": T1, "tstate": A},
    {"ev": "start", "t_ns": T0 - 1 * MS, "tid": T2, "tstate": B},
]


def tick(ms: float, holder: int, threads: list[tuple[int, str]] | list[tuple[int, str, int]],
         *, locked: int = 1, switches: int = 0) -> dict[str, Any]:
    rows = [(t[0], t[1], t[2] if len(t) > 2 else None) for t in threads]
    return {"t_ns": T0 + int(ms * MS), "holder": holder, "locked": locked,
            "switch_number": switches, "threads": rows}


def states(intervals: list[Interval]) -> list[tuple[float, float, str]]:
    return [(round(iv.start * 1e3, 3), round(iv.end * 1e3, 3), iv.state) for iv in intervals]


# -- load_gil_samples -----------------------------------------------------------------------------


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_load_skips_meta_and_end_and_names_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "gil_samples.jsonl", [
        json.dumps({"kind": "meta", "pid": 1}),
        json.dumps({"t": 20, "h": A, "l": 1, "n": 7, "th": [[T1, "R", 5], [T2, "G", 0]]}),
        json.dumps({"t": 10, "h": 0, "l": 0, "n": 6, "th": [[T1, "B"]]}),
        json.dumps({"kind": "child", "t": 25, "pid": 9, "gil_addr": A}),
        json.dumps({"t": 26, "p": 9, "h": 0, "l": 0, "n": 1, "th": []}),
        json.dumps({"kind": "end", "t": 30}),
    ])  # fmt: skip
    samples = load_gil_samples(path)
    assert [s["t_ns"] for s in samples] == [10, 20, 26]  # time order
    assert samples[1] == {"t_ns": 20, "holder": A, "locked": 1, "switch_number": 7,
                          "threads": [(T1, "R", 5), (T2, "G", 0)], "pid": None}
    assert samples[2]["pid"] == 9  # a child's sample carries its pid; the target's none
    assert child_gil_addresses(path) == {9: A}
    assert samples[0]["threads"] == [(T1, "B", None)]  # rq_ns is optional


def test_load_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"  # a write cut off mid-line: no newline at the end
    path.write_text(json.dumps({"t": 10, "h": A, "l": 1, "n": 1, "th": []}) + '\n{"t": 11, "h": 4')
    assert len(load_gil_samples(path)) == 1


@pytest.mark.parametrize("bad", [
    '{"t": 11, "h": 4',  # truncated, but not last
    json.dumps({"t": 10, "h": A, "l": 1, "th": []}),  # no switch number
    json.dumps({"t": 10, "h": A, "l": 1, "n": 1, "th": [[1, "Z"]]}),  # unknown code
    json.dumps([1, 2, 3]),
])  # fmt: skip
def test_load_refuses_damage_with_the_file_name(tmp_path: Path, bad: str) -> None:
    good = json.dumps({"t": 10, "h": A, "l": 1, "n": 1, "th": []})
    path = _write(tmp_path / "gil_samples.jsonl", [bad, good])
    with pytest.raises(CorruptRecording, match=r"gil_samples\.jsonl") as info:
        load_gil_samples(path)
    assert "\n" not in str(info.value)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorruptRecording, match=r"nope\.jsonl"):
        load_gil_samples(tmp_path / "nope.jsonl")


# -- tstate_map -----------------------------------------------------------------------------------


def test_tstate_spans_open_at_start_close_at_end_and_on_reuse() -> None:
    events = [
        {"ev": "main", "t_ns": 1, "tid": MAIN, "tstate": 0xF000},
        {"ev": "start", "t_ns": 10, "tid": T1, "tstate": A},
        {"ev": "end", "t_ns": 20, "tid": T1},
        {"ev": "start", "t_ns": 30, "tid": T2, "tstate": A},  # address reused
        {"ev": "start", "t_ns": 40, "tid": 103, "tstate": B},
        {"ev": "start", "t_ns": 50, "tid": 104, "tstate": B},  # 103's end was never logged
        {"ev": "start", "t_ns": 60, "tid": 105, "tstate": None},  # probe unavailable
        {"ev": "run_start", "t_ns": 5},
    ]
    assert tstate_map(events) == [
        (0xF000, MAIN, None, None),
        (A, T1, 10, 20),
        (A, T2, 30, None),
        (B, 103, 40, 50),
        (B, 104, 50, None),
    ]


def test_threads_found_by_an_attach_existed_before_the_record() -> None:
    # tracer attach reads the threads from outside: "existing" records carry their tstate.
    events = [{"ev": "main", "t_ns": 5, "tid": MAIN, "tstate": 0xF000},
              {"ev": "existing", "t_ns": 5, "tid": T1, "tstate": A},
              {"ev": "existing", "t_ns": 5, "tid": T2},  # bootstrap: existing, no tstate
              {"ev": "end", "t_ns": 90, "tid": T1}]
    assert tstate_map(events) == [(0xF000, MAIN, None, None), (A, T1, None, 90)]


def test_holder_address_means_the_thread_alive_at_that_time() -> None:
    events = [{"ev": "start", "t_ns": T0, "tid": T1, "tstate": A},
              {"ev": "end", "t_ns": T0 + 2 * MS, "tid": T1},
              {"ev": "start", "t_ns": T0 + 3 * MS, "tid": T2, "tstate": A}]
    samples = [tick(1, A, [(T1, "R")]), tick(4, A, [(T2, "R")]), tick(5, A, [(T2, "R")])]
    got = sampled_gil_timelines(samples, tstate_map(events), T0, T0 + 6 * MS)
    assert states(got[T1]) == [(1.0, 4.0, RUNNING)]
    assert states(got[T2]) == [(4.0, 6.0, RUNNING)]


# -- sampled_gil_timelines ------------------------------------------------------------------------


def test_each_code_maps_to_the_state_gil_exact_uses() -> None:
    samples = [
        tick(0, A, [(T1, "R"), (T2, "G"), (MAIN, "B")]),
        tick(1, B, [(T1, "G"), (T2, "R"), (MAIN, "B")]),  # T2 was seen before the GIL read: holder
        tick(2, B, [(T1, "H"), (T2, "G"), (MAIN, "R")]),  # T2 holds even if seen waiting
        tick(3, A, [(T1, "R"), (T2, "R"), (MAIN, "B")], locked=0),  # free: nobody runs
    ]
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 4 * MS)
    assert states(got[T1]) == [(0.0, 1.0, RUNNING), (1.0, 2.0, GIL_WAIT), (2.0, 3.0, BLOCKED),
                               (3.0, 4.0, NATIVE)]
    assert states(got[T2]) == [(0.0, 1.0, GIL_WAIT), (1.0, 3.0, RUNNING), (3.0, 4.0, NATIVE)]
    assert states(got[MAIN]) == [(0.0, 2.0, BLOCKED), (2.0, 3.0, NATIVE), (3.0, 4.0, BLOCKED)]


def test_samples_are_clipped_to_the_window_and_the_last_lasts_one_period() -> None:
    samples = [tick(ms, A, [(T1, "R")]) for ms in (-2, -1, 0.5, 1.5, 2.5)]
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 10 * MS)
    assert states(got[T1]) == [(0.0, 3.5, RUNNING)]  # from t0 (sample at -1 ms) to 2.5 + 1 ms
    clipped = sampled_gil_timelines(samples, tstate_map(EVENTS), T0 + MS, T0 + 2 * MS)
    assert states(clipped[T1]) == [(0.0, 1.0, RUNNING)]


def test_a_thread_missing_from_a_sample_has_a_gap() -> None:
    samples = [tick(0, A, [(T1, "R"), (T2, "G")]), tick(1, A, [(T1, "R")]),
               tick(2, A, [(T1, "R"), (T2, "G")]), tick(3, A, [(T1, "R"), (T2, "G")])]
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 4 * MS)
    assert states(got[T2]) == [(0.0, 1.0, GIL_WAIT), (2.0, 4.0, GIL_WAIT)]


def test_an_unknown_holder_address_makes_nobody_running() -> None:
    samples = [tick(0, 0xDEAD, [(T1, "R"), (T2, "G")]), tick(1, 0xDEAD, [(T1, "R"), (T2, "G")])]
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 2 * MS)
    assert states(got[T1]) == [(0.0, 2.0, NATIVE)]


def test_run_queue_growth_turns_native_into_cpu_wait_where_it_happened() -> None:
    # T1 runs native code without the GIL; between 2 and 3 ms its run-queue total grows by 1.5 ms:
    # it waited for a CPU over [1.5, 3.0] ms. The holder's and waiters' states are never cut.
    samples = [tick(ms, B, [(T1, "R", rq), (T2, "R", rq)])
               for ms, rq in ((0, 0), (1, 0), (2, 0), (3, int(1.5 * MS)), (4, int(1.5 * MS)))]
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 5 * MS)
    assert states(got[T1]) == [(0.0, 1.5, NATIVE), (1.5, 3.0, CPU_WAIT), (3.0, 5.0, NATIVE)]
    assert states(got[T2]) == [(0.0, 5.0, RUNNING)]


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before t0"):
        sampled_gil_timelines([], [], T0, T0 - 1)


def test_no_samples_no_timelines() -> None:
    assert sampled_gil_timelines([], tstate_map(EVENTS), T0, T0 + MS) == {}


def test_gil_metrics_applies_to_sampled_timelines() -> None:
    # Two threads alternate the GIL every 2 ms over 8 ms; the other waits meanwhile.
    samples = []
    for ms in range(8):
        holder_is_a = (ms // 2) % 2 == 0
        samples.append(tick(ms, A if holder_is_a else B,
                            [(T1, "R" if holder_is_a else "G"), (T2, "G" if holder_is_a else "R")],
                            switches=ms // 2))
    got = sampled_gil_timelines(samples, tstate_map(EVENTS), T0, T0 + 8 * MS)
    metrics = gil_metrics(got, 8e-3)
    assert metrics.utilisation == pytest.approx(1.0)
    assert metrics.mean_waiters == pytest.approx(1.0)
    assert metrics.switches_per_s == pytest.approx(3 / 8e-3)
    threads = metrics.threads
    assert isinstance(threads, dict)
    assert threads[T1].held_s == pytest.approx(4e-3)
    assert threads[T2].waits == 2
    assert sampled_switches(samples, T0, T0 + 8 * MS) == 3


def test_switches_count_inside_the_window_only() -> None:
    samples = [tick(ms, A, [], switches=10 * ms) for ms in range(6)]
    assert sampled_switches(samples, T0 + MS, T0 + 4 * MS) == 30
    assert sampled_switches(samples[:1], T0, T0 + 9 * MS) == 0
    assert sampled_switches(list(reversed(samples)), T0, T0 + 9 * MS) == 50


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.integers(0, 3000),  # time in 10 us steps
    st.sampled_from([A, B, 0xDEAD]),
    st.integers(0, 1),
    st.lists(st.tuples(st.sampled_from([MAIN, T1, T2]), st.sampled_from("RGHB"),
                       st.integers(0, 5 * MS)), unique_by=lambda t: t[0], max_size=3),
), max_size=40), st.integers(0, 3000), st.integers(0, 3000))  # fmt: skip
def test_timelines_are_sorted_disjoint_and_inside_the_window(
    raw: list[tuple[int, int, int, list[tuple[int, str, int]]]], a: int, b: int
) -> None:
    lo, hi = T0 + min(a, b) * 10_000, T0 + max(a, b) * 10_000
    samples = [{"t_ns": T0 + t * 10_000, "holder": h, "locked": locked, "switch_number": 0,
                "threads": threads} for t, h, locked, threads in raw]
    wall_s = (hi - lo) / 1e9
    for intervals in sampled_gil_timelines(samples, tstate_map(EVENTS), lo, hi).values():
        for iv in intervals:
            assert 0.0 <= iv.start < iv.end <= wall_s + 1e-12
            assert iv.state in (RUNNING, NATIVE, GIL_WAIT, BLOCKED, CPU_WAIT)
        for x, y in zip(intervals, intervals[1:]):
            assert x.end <= y.start
            assert not (x.end == y.start and x.state == y.state)
