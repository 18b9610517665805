"""py-spy's dump loop is paced by the CPU its dumps cost, so it cannot eat a small machine."""

from __future__ import annotations

import pytest

from tracer.recorders import pyspy
from tracer.recorders.pyspy import CPU_SHARE, PySpyRecorder


@pytest.mark.parametrize("cores", [2, 8, 64])
def test_the_pace_keeps_py_spy_within_its_share_of_the_machine(
        monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    monkeypatch.setattr(pyspy.os, "cpu_count", lambda: cores)
    recorder = PySpyRecorder(max_hz=20.0)
    for cost in (0.05, 0.04, 0.06, 0.05):  # CPU seconds of successive dumps
        recorder._account(cost)
    period = recorder._period()
    assert period >= 1 / 20.0  # never above the rate cap
    share = recorder._cpu_cost / period / cores
    assert share <= CPU_SHARE + 1e-9


def test_a_cheap_dump_runs_at_the_rate_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyspy.os, "cpu_count", lambda: 2)
    recorder = PySpyRecorder(max_hz=20.0)
    recorder._account(0.001)
    assert recorder._period() == pytest.approx(1 / 20.0)


def test_an_expensive_dump_slows_the_loop_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyspy.os, "cpu_count", lambda: 2)
    recorder = PySpyRecorder(max_hz=20.0)
    recorder._account(0.05)
    assert recorder._period() == pytest.approx(0.05 / (CPU_SHARE * 2))
    assert recorder._cpu_s == pytest.approx(0.05)


def test_children_cpu_is_a_non_decreasing_clock() -> None:
    first = pyspy.children_cpu_s()
    assert first >= 0.0
    assert pyspy.children_cpu_s() >= first
