"""The terminal summary: status, numbers, per-thread table, sources and why some are missing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from reports.summary import print_summary
from tests.fixtures.synthetic_model import (
    HOSTILE_LOCK,
    build_deadlock_model,
    build_lock_model,
    build_synthetic_model,
)
from tracer.model.schema import RunMetrics, RunModel


def summary_text(model: RunModel, run_dir: Path) -> str:
    console = Console(record=True, width=120)
    print_summary(model, run_dir, console)
    return console.export_text()


def test_summary_has_thread_table_sources_and_paths(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("x")
    text = summary_text(build_synthetic_model(), tmp_path)
    assert "gil_cpu" in text and "status: ok" in text
    assert "CPU parallelism 1.08 on 2 cores" in text
    for name in ("MainThread", "worker-0", "hasher", "<img src=x", "onerror=alert(1)"):
        assert name in text  # long names fold across lines in the table
    for tid in ("1000", "1001", "1100", "1101"):
        assert tid in text
    for heading in ("running", "GIL", "lock", "wait", "blocked", "native", "killed at exit"):
        assert heading in text
    assert "perf is not installed (apt install linux-perf)" in text
    assert "NOT HELD" in text and "not checked" in text
    assert "warning: VizTracer slowed the target 1.78x" in text
    assert str(tmp_path / "report.html") in text
    assert "trace.json" in text and "model.json" in text


def test_summary_explains_missing_sources_and_os_only_states(tmp_path: Path) -> None:
    text = summary_text(build_synthetic_model(gil=False), tmp_path)
    assert "ptrace denied: py-spy needs CAP_SYS_PTRACE" in text
    assert "on " in text and "off " in text
    assert "GIL  " not in text


def test_summary_marks_partial_and_timed_out_runs(tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.target.status = "timeout"
    model.target.exit_code = None
    model.partial = True
    text = summary_text(model, tmp_path)
    assert "status: timeout" in text
    assert "PARTIAL RECORDING" in text


def test_summary_prints_markup_in_names_literally(tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.threads[0].name = "[b]x[/b]"
    text = summary_text(model, tmp_path)
    assert "[b]x[/b]" in text


def test_summary_of_an_empty_model(tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.threads, model.sources, model.claims, model.warnings = [], {}, [], []
    model.wall_s, model.parallelism = 0.0, None
    model.metrics = RunMetrics(cpu_s=0.0, parallelism=None, cores=2, threads=len(model.threads))
    text = summary_text(model, tmp_path)
    assert "no sources were recorded" in text


def test_summary_lists_the_worst_locks(tmp_path: Path) -> None:
    text = summary_text(build_lock_model(), tmp_path)
    # Contention heads the lock table: of the two locks (the barrier is not one), the one that
    # made a thread wait; the barrier's wait for a signal is listed below it, apart.
    assert "Locks by time threads waited for another's hold (top 1 of 2)" in text
    tables = text.split("Locks by time threads waited")[1].split("Where the time went")[0]
    locks, signals = tables.split("Waits for a signal, not contention (top 1 of 1)")
    assert HOSTILE_LOCK in locks  # printed literally, not as markup
    assert "100.0 ms" in locks and "1/1" in locks
    assert "start line" not in locks and "inner" not in locks
    assert "start line" in signals and "barrier" in signals and "15.0 ms" in signals
    assert HOSTILE_LOCK not in signals
    assert "running when stopped" in text and "killed at exit" in text


def test_summary_heads_with_contention_however_long_the_signal_waits(tmp_path: Path) -> None:
    model = build_lock_model()
    barrier = next(row for row in model.locks if row.name == "start line")
    barrier.wait_s = barrier.max_wait_s = 3.0  # a sleeper's Event.wait: far longer than the lock
    text = summary_text(model, tmp_path)
    assert text.index(HOSTILE_LOCK) < text.index("Waits for a signal") < text.index("start line")


def test_summary_with_only_signal_waits_says_no_lock_was_contended(tmp_path: Path) -> None:
    model = build_lock_model()
    model.locks = [row for row in model.locks if row.name in ("inner", "start line")]
    text = summary_text(model, tmp_path)
    assert "Locks: 1 recorded; no thread waited for one another held." in text
    assert "Waits for a signal, not contention (top 1 of 1)" in text


def test_summary_with_only_uncontended_locks(tmp_path: Path) -> None:
    model = build_lock_model()
    model.locks = [row for row in model.locks if row.name == "inner"]
    assert "Locks: 1 recorded; none made a thread wait." in summary_text(model, tmp_path)
    assert "Locks" not in summary_text(build_synthetic_model(), tmp_path)


def test_summary_names_the_deadlock_in_red(tmp_path: Path) -> None:
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    print_summary(build_deadlock_model(), tmp_path, console)
    plain = console.export_text(clear=False)
    assert (
        "DEADLOCK: first holds lock_a and waits for lock_b, held by second; "
        "second holds lock_b and waits for lock_a, held by first." in plain
    )
    styled = console.export_text(styles=True)
    assert "\x1b[1;31mDEADLOCK: " in styled


def test_summary_prints_the_three_biggest_items_of_where_the_time_went(tmp_path: Path) -> None:
    printed = summary_text(build_lock_model(), tmp_path)
    text = " ".join(printed.split())  # rich wraps long lines
    assert "Where the time went Stacks from py-spy, sampling the program from outside, at 100 Hz." \
        in text
    assert ("1. worker-0 (tid 1001) waited 1.050 s for the GIL in spin() (gil_cpu.py:14); 60% of "
            "that time <img src=x onerror=alert(1)> (tid 1002) held it, in "
            "Evil.<svg onload=alert(2)>() (<b>evil</b>.py:3).") in text
    assert "2. <img src=x onerror=alert(1)> (tid 1002) waited 1.050 s for the GIL in" in text
    assert "3. worker-3 (tid 1004) waited 1.050 s for the GIL in spin()" in text
    assert not any(line.startswith("4. ") for line in printed.splitlines())


def test_summary_says_nothing_of_where_without_stacks(tmp_path: Path) -> None:
    assert "Where the time went" not in summary_text(build_synthetic_model(gil=False), tmp_path)
