"""Per-process figures, forks told from spawned programs, and the thread and process phases
(tracer.model.processes), and the sentences and table the report makes of them."""

from __future__ import annotations

import pytest

from reports.processes_view import process_table
from reports.prose import process_reading
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.gil_sampled import tstate_map
from tracer.model.processes import concurrency_phases, forked_children, process_figures
from tracer.model.schema import (
    Method,
    PhaseKind,
    ProcessGilFigures,
    ProcessInfo,
    RunModel,
    Series,
    ThreadTimeline,
)

TARGET = ["python", "-m", "tracer.bootstrap", "raw/bootstrap.json"]
SPAWNED = ["python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"]


def _thread(pid: int, tid: int, start: float, end: float, cpu: float,
            main: bool = False) -> ThreadTimeline:
    return ThreadTimeline(tid=tid, pid=pid, name=f"t{tid}", start_s=start, end_s=end, cpu_s=cpu,
                          is_main=main)


def test_forks_keep_the_command_line_and_spawned_programs_do_not() -> None:
    processes = [ProcessInfo(10, 1, TARGET), ProcessInfo(11, 10, TARGET),
                 ProcessInfo(12, 10, SPAWNED), ProcessInfo(13, 11, TARGET),  # a fork's fork
                 ProcessInfo(14, 12, SPAWNED)]  # a fork of a spawned program: not the target's
    assert forked_children(processes, 10) == {11, 13}


def test_a_process_gets_its_life_threads_and_the_larger_cpu_figure() -> None:
    threads = [_thread(10, 10, 0.0, 2.0, 0.5, main=True), _thread(20, 20, 0.5, 1.5, 0.3),
               _thread(20, 21, 0.6, 1.4, 0.1)]
    # 20's own /proc stat says 0.55 s: a thread no listing saw used the rest
    got = process_figures([ProcessInfo(10, 1, TARGET), ProcessInfo(20, 10, SPAWNED)], threads,
                          {10: 0.5, 20: 0.55}, None, 10)
    assert [p.pid for p in got] == [10, 20]
    child = got[1]
    assert (child.start_s, child.end_s, child.threads, child.cpu_s) == (0.5, 1.5, 2, 0.55)
    assert child.gil is None  # no GIL source followed it


def _flat(wall: float, levels: list[tuple[float, float]]) -> Series:
    """A parallelism curve in 10 ms bins: ``levels`` are (until_s, value) steps."""
    t, values = [], []
    for i in range(int(wall / 0.01)):
        t.append(round(i * 0.01, 6))
        values.append(next(v for until, v in levels if i * 0.01 < until))
    return Series(bin_s=0.01, t=t, values=values)


def test_the_thread_phase_and_the_process_phase_have_their_own_parallelism() -> None:
    threads = [_thread(10, 10, 0.0, 2.0, 0.05, main=True),
               *[_thread(10, 11 + i, 0.0, 1.0, 0.25) for i in range(4)]]
    children = [ProcessInfo(20 + i, 10, TARGET, start_s=1.0, end_s=2.0, cpu_s=0.5)
                for i in range(4)]
    series = _flat(2.0, [(1.0, 1.0), (2.0, 2.0)])
    phases = concurrency_phases(children, threads, series, 10, 2.0)
    assert [p.kind for p in phases] == [PhaseKind.THREADS, PhaseKind.PROCESSES]
    thread_phase, process_phase = phases
    assert thread_phase.workers == 4 and process_phase.workers == 4
    assert thread_phase.parallelism == pytest.approx(1.0)
    assert process_phase.parallelism == pytest.approx(2.0)
    assert process_phase.cpu_s == pytest.approx(2.0)


def test_no_phases_without_busy_children() -> None:
    threads = [_thread(10, 11, 0.0, 1.0, 0.9)]
    idle = [ProcessInfo(20, 10, SPAWNED, start_s=0.1, end_s=0.9, cpu_s=0.001)]
    assert concurrency_phases(idle, threads, _flat(1.0, [(1.0, 1.0)]), 10, 1.0) == []


def test_threads_running_alongside_the_children_make_no_thread_phase() -> None:
    threads = [_thread(10, 11, 0.0, 2.0, 1.0)]
    children = [ProcessInfo(20, 10, TARGET, start_s=0.2, end_s=1.8, cpu_s=1.0)]
    phases = concurrency_phases(children, threads, _flat(2.0, [(2.0, 2.0)]), 10, 2.0)
    assert [p.kind for p in phases] == [PhaseKind.PROCESSES]


def _with_children(gil: ProcessGilFigures | None) -> RunModel:
    model = build_synthetic_model()
    target = ProcessInfo(1, None, TARGET, 0.0, model.wall_s, 1, 0.5)
    child = ProcessInfo(2, 1, TARGET, 0.1, 0.9, 1, 0.6, gil)
    model.processes = [target, child]
    return model


def test_the_explanation_says_what_the_followed_children_waited_for_their_gil() -> None:
    model = _with_children(ProcessGilFigures(Method.EXACT, None, 0.012, 3))
    text = " ".join(process_reading(model))
    assert "its own GIL" in text and "3 waits" in text and "0.01 s" in text


def test_the_explanation_says_when_no_gil_recorder_followed_the_children() -> None:
    model = _with_children(None)
    text = " ".join(process_reading(model))
    assert "1 child process" in text
    if model.metrics.gil is not None:
        assert "did not follow its children" in text


def test_the_table_shows_a_fork_with_the_program_and_escapes_nothing_itself() -> None:
    model = _with_children(None)
    model.target.argv = ["<b>app.py</b>", "--n=3"]
    table = process_table(model)
    assert table is not None
    assert [row.role for row in table.rows] == ["target", "fork"]
    assert table.rows[1].command == "<b>app.py</b> --n=3"  # raw text: the template escapes it
    assert table.rows[1].gil == "not followed"


def test_a_forked_childs_thread_addresses_are_its_own() -> None:
    # The child's thread reuses an address the parent's thread has: each process maps its own.
    events = [{"ev": "main", "t_ns": 0, "pid": 10, "tid": 10, "tstate": 0xA0},
              {"ev": "start", "t_ns": 5, "pid": 20, "tid": 21, "tstate": 0xA0}]
    assert tstate_map(events, 10) == [(0xA0, 10, None, None)]
    assert tstate_map(events, 20) == [(0xA0, 21, 5, None)]


def test_trace_json_names_a_fork_after_the_program_not_the_bootstrap() -> None:
    from reports.perfetto import trace_events

    model = _with_children(None)
    model.target.argv = ["app.py"]
    names = [e["args"]["name"] for e in trace_events(model)
             if e.get("ph") == "M" and e.get("name") == "process_name"]
    assert "app.py (pid 2)" in names
    assert not any("tracer.bootstrap" in name for name in names)
