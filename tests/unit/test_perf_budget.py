"""The exact recorder's cost guard: which rates are over budget, and a guard that stops."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tracer.recorders.perf_budget import (
    BudgetCut,
    BudgetGuard,
    context_switches,
    over_budget,
)


def test_rates_under_both_budgets_pass() -> None:
    assert over_budget(1_000, 100_000) is None


def test_too_many_switches_say_how_many_and_the_budget() -> None:
    reason = over_budget(70_000, 0, switch_budget=25_000)
    assert reason is not None and "70,000 times a second" in reason and "25,000/s" in reason


def test_too_many_bytes_say_the_rate() -> None:
    reason = over_budget(0, 12e6, byte_budget=6e6)
    assert reason is not None and "12.0 MB/s" in reason


def test_a_cut_survives_a_round_trip_through_the_raw_folder(tmp_path: Path) -> None:
    cut = BudgetCut(123, 4.5, 6.5, "because")
    cut.save(tmp_path)
    assert BudgetCut.load(tmp_path) == cut


def test_no_or_a_broken_cut_file_is_no_cut(tmp_path: Path) -> None:
    assert BudgetCut.load(tmp_path) is None
    (tmp_path / "perf_budget.json").write_text("{not json")
    assert BudgetCut.load(tmp_path) is None


def test_context_switches_grow_for_a_sleeping_process_and_stop_when_it_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        for _ in range(200):
            time.sleep(0.001)
    """)])
    try:
        first = context_switches(child.pid)
        time.sleep(0.1)
        second = context_switches(child.pid)
        assert first is not None and second is not None and second > first
    finally:
        child.wait(timeout=30)
    assert context_switches(child.pid) is None


@pytest.mark.timeout(60)
def test_a_guard_stops_once_when_the_rate_stays_over_budget(tmp_path: Path) -> None:
    # A process that sleeps 1 ms at a time switches ~1000 times a second: over a budget of 10.
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nwhile True: time.sleep(0.001)"])
    cuts: list[BudgetCut] = []
    guard = BudgetGuard(child.pid, tmp_path / "perf.data", cuts.append, switch_budget=10)
    try:
        guard.start()
        deadline = time.monotonic() + 30
        while not cuts and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # it would have called again by now, had it gone on
    finally:
        guard.close()
        child.kill()
        child.wait()
    assert len(cuts) == 1 and guard.cut == cuts[0]
    assert cuts[0].switches_per_s > 10 and "switched threads" in cuts[0].reason


def test_a_guard_within_budget_never_stops(tmp_path: Path) -> None:
    cuts: list[BudgetCut] = []
    guard = BudgetGuard(os.getpid(), tmp_path / "perf.data", cuts.append)
    guard.start()
    time.sleep(0.4)
    guard.close()
    assert cuts == []
