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


@pytest.mark.parametrize("duty", [0.2, 0.37, 0.5, 0.63, 1.0])
def test_drawn_on_cpu_time_matches_cpu_time_at_any_share_of_a_core(duty: float) -> None:
    # Ten processes sharing two cores get a fifth of one each per period: a rule "on CPU when
    # at least half the period" drew them never running while they used 0.2 CPU-s per second.
    records = [_sample(t, [(7, 7, t * duty, "R")]) for t in range(0, 1001, 5)]
    thread = analyse_cpu(records, 0, 1000 * MS).threads[(7, 7)]
    drawn = sum(i.end - i.start for i in thread.intervals if i.state == "on_cpu")
    assert thread.cpu_s == pytest.approx(duty)
    assert abs(drawn - thread.cpu_s) <= 0.005  # within one period


def test_a_process_counts_the_cpu_of_threads_it_never_listed() -> None:
    # Process 20's own stat says 300 ms (30 ticks of 10 ms); the one thread seen used 100 ms:
    # a thread that lived between two listings used the rest.
    records: list[dict[str, Any]] = [
        {"kind": "meta", "rate_hz": 200, "cores": 2, "clk_tck": 100, "boot_ns": 1_000 * MS},
        {"kind": "thread", "t": 0, "pid": 20, "tid": 20, "comm": "python", "ppid": 1,
         "start_ticks": 150},  # born at 1.5 s after boot: after the sampler started
    ]
    for t in range(0, 101, 10):
        row = _sample(t, [(20, 20, t, "R")])
        row["p"] = [[20, 3 * t // 10]]
        records.append(row)
    cpu = analyse_cpu(records, 0, 100 * MS)
    assert cpu.threads[(20, 20)].cpu_s == pytest.approx(0.1)
    assert cpu.process_cpu[20] == pytest.approx(0.3)
    assert cpu.cpu_s == pytest.approx(0.3)


def test_a_process_older_than_the_recording_counts_only_what_it_used_in_it() -> None:
    records: list[dict[str, Any]] = [
        {"kind": "meta", "rate_hz": 200, "cores": 2, "clk_tck": 100, "boot_ns": 1_000 * MS},
        {"kind": "thread", "t": 0, "pid": 30, "tid": 30, "comm": "python", "start_ticks": 5},
    ]
    for t in range(0, 101, 10):
        row = _sample(t, [(30, 30, 500 + t, "R")])
        row["p"] = [[30, 50 + t // 10]]  # 500 ms before the recording began
        records.append(row)
    assert analyse_cpu(records, 0, 100 * MS).process_cpu[30] == pytest.approx(0.1)


def test_credit_left_from_a_finished_spin_is_not_drawn_at_a_later_blip() -> None:
    # A spin whose last period was 49% on a CPU (2.45 ms of credit left, not drawn), 50 ms
    # asleep, then a 0.1 ms blip: the blip must not pay out the spin's credit as a 5 ms run.
    records, cpu = [], 0.0
    for step in range(0, 121):
        t = step * 5
        records.append(_sample(t, [(3, 3, cpu, "R")]))
        if t < 395:
            cpu += 5
        elif t == 395:
            cpu += 5 * 0.49
        elif t == 450:
            cpu += 0.1
    thread = analyse_cpu(records, 0, 600 * MS).threads[(3, 3)]
    on = [i for i in thread.intervals if i.state == "on_cpu"]
    assert on[-1].end <= 0.405
