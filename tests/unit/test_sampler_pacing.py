"""The controller's samplers keep within a share of one core however many threads they read, and
say when that (or a busy machine) kept them below the rate asked for."""

from __future__ import annotations

import time

from tracer.recorders.sampling import CPU_SHARE_MAX, pace, rate_notes

MS = 1_000_000


def test_a_cheap_tick_keeps_the_requested_period() -> None:
    next_ns = time.monotonic_ns() + 1 * MS
    delay, deadline = pace(1 * MS, next_ns, tick_cost_ns=20_000)
    assert deadline == next_ns
    assert 0 < delay <= 1 * MS


def test_a_costly_tick_stretches_the_period_to_the_cpu_share() -> None:
    cost = 2 * MS  # e.g. 512 threads' /proc files read in one tick
    delay, deadline = pace(1 * MS, time.monotonic_ns() + 1 * MS, tick_cost_ns=cost)
    assert cost / (cost + delay) <= CPU_SHARE_MAX + 1e-9
    assert deadline >= time.monotonic_ns() + delay - 5 * MS


def test_a_late_sampler_does_not_burst_to_catch_up() -> None:
    long_ago = time.monotonic_ns() - 50 * MS
    delay, deadline = pace(1 * MS, long_ago, tick_cost_ns=10_000)
    assert delay >= 1 * MS // 4
    assert deadline > long_ago + 50 * MS


def test_a_shortfall_is_noted_with_its_reasons() -> None:
    assert rate_notes(1000.0, 950.0, 8) == []
    (note,) = rate_notes(1000.0, 120.0, 512)
    assert "120 Hz of the 1000 Hz requested" in note
    assert "512 threads" in note
