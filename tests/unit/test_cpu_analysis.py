"""OS sampler readings -> on/off-CPU intervals, CPU time and parallelism (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracer.model.cpu import analyse_cpu
from tracer.model.schema import ProcessInfo

MS = 1_000_000


def _sample(t_ms: float, rows: list[tuple[int, int, float, str]]) -> dict[str, Any]:
    return {"kind": "s", "t": int(t_ms * MS),
            "r": [[pid, tid, int(cpu_ms * MS), 0, state] for pid, tid, cpu_ms, state in rows]}


def test_two_threads_taking_turns_make_parallelism_one() -> None:
    # Thread 11 runs in the first 50 ms, thread 12 in the next 50 ms.
    records = [{"kind": "meta", "rate_hz": 200, "cores": 2}]
    for step in range(0, 101, 5):
        a = min(step, 50)
        b = max(0, step - 50)
        records.append(_sample(step, [(10, 11, a, "R"), (10, 12, b, "S")]))
    cpu = analyse_cpu(records, t0_ns=0, end_ns=100 * MS)
    assert cpu.cpu_s == pytest.approx(0.1)
    first, second = cpu.threads[(10, 11)], cpu.threads[(10, 12)]
    assert first.cpu_s == pytest.approx(0.05)
    assert [(i.state, round(i.start, 3), round(i.end, 3)) for i in first.intervals] == [
        ("on_cpu", 0.0, 0.05), ("off_cpu", 0.05, 0.1)]
    assert [i.state for i in second.intervals] == ["off_cpu", "on_cpu"]
    assert cpu.parallelism is not None
    assert all(v == pytest.approx(1.0) for v in cpu.parallelism.values)
    assert cpu.cores == 2


def test_cpu_before_t0_and_after_end_is_not_counted() -> None:
    records = [_sample(t, [(1, 1, t, "R")]) for t in range(0, 201, 10)]
    cpu = analyse_cpu(records, t0_ns=50 * MS, end_ns=150 * MS)
    assert cpu.threads[(1, 1)].cpu_s == pytest.approx(0.1)
    assert cpu.threads[(1, 1)].intervals[0].start == pytest.approx(0.0)
    assert cpu.threads[(1, 1)].intervals[-1].end == pytest.approx(0.1)


def test_thread_and_process_entries_are_kept() -> None:
    records = [
        {"kind": "thread", "t": 0, "pid": 5, "tid": 5, "comm": "python", "ppid": 1,
         "cmdline": ["python", "x.py"]},
        {"kind": "thread", "t": 0, "pid": 5, "tid": 6, "comm": "worker"},
        _sample(0, [(5, 5, 0, "S"), (5, 6, 0, "R")]),
        _sample(10, [(5, 5, 0, "S"), (5, 6, 10, "R")]),
    ]
    cpu = analyse_cpu(records, 0, 10 * MS)
    assert cpu.threads[(5, 6)].comm == "worker"
    assert cpu.processes == [ProcessInfo(pid=5, ppid=1, cmdline=["python", "x.py"])]


def test_empty_recording() -> None:
    cpu = analyse_cpu([], 0, 10 * MS)
    assert cpu.cpu_s == 0
    assert cpu.threads == {}


@given(st.lists(st.tuples(st.integers(1, 20), st.floats(0, 1)), min_size=2, max_size=40),
       st.integers(1, 3))
def test_parallelism_integrates_to_cpu_time(steps: list[tuple[int, float]], threads: int) -> None:
    """Whatever the readings, the parallelism curve integrates to the CPU time in the window."""
    t, cpu_ms = 0, 0.0
    records = []
    for dt, share in steps:
        records.append(_sample(t, [(1, k, cpu_ms, "R") for k in range(threads)]))
        t += dt
        cpu_ms += dt * share
    records.append(_sample(t, [(1, k, cpu_ms, "R") for k in range(threads)]))
    result = analyse_cpu(records, 0, t * MS)
    assert result.parallelism is not None
    series = result.parallelism
    integral = sum(v * min(series.bin_s, t / 1000 - start)
                   for start, v in zip(series.t, series.values))
    # Each bin's value is rounded to 4 decimals: the integral may be off by 5e-5 per second.
    assert integral == pytest.approx(result.cpu_s, rel=1e-3, abs=5e-5 * t / 1000 + 1e-9)
    for thread in result.threads.values():
        spans = [(i.start, i.end) for i in thread.intervals]
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(spans, spans[1:]))
