"""What the sampler may settle in an exact timeline, and what it may not."""

from __future__ import annotations

import pytest

from tracer.model.gil_fill import fill_from_samples
from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    NATIVE,
    ON_CPU,
    RUNNING,
    Interval,
)


def iv(start: float, end: float, state: str) -> Interval:
    return Interval(start, end, state)


def states(intervals: list[Interval]) -> list[tuple[float, float, str]]:
    return [(round(i.start, 6), round(i.end, 6), i.state) for i in intervals]


def test_unknown_on_cpu_time_takes_the_samples_holder() -> None:
    exact = {1: [iv(0, 4, ON_CPU)]}
    sampled = {1: [iv(0, 1, RUNNING), iv(1, 2, NATIVE), iv(2, 3, GIL_WAIT)]}
    filled, summary = fill_from_samples(exact, sampled)
    # A sample saying "waiting" on a thread the events see on a CPU is stale: it did not hold.
    assert states(filled[1]) == [(0, 1, RUNNING), (1, 3, NATIVE), (3, 4, ON_CPU)]
    assert summary.unknown_s == pytest.approx(4)
    assert summary.filled_s == pytest.approx(3)
    assert summary.sampled_share == pytest.approx(3 / 4)


def test_a_sampled_holder_cannot_hold_where_the_events_prove_another_thread_did() -> None:
    exact = {1: [iv(0, 4, ON_CPU)], 2: [iv(0, 2, RUNNING), iv(2, 4, BLOCKED)]}
    sampled = {1: [iv(0, 4, RUNNING)]}
    filled, _ = fill_from_samples(exact, sampled)
    assert states(filled[1]) == [(0, 2, NATIVE), (2, 4, RUNNING)]


def test_a_preempted_thread_the_sampler_saw_holding_still_holds() -> None:
    exact = {1: [iv(0, 2, CPU_WAIT), iv(2, 4, CPU_WAIT)]}
    sampled = {1: [iv(0, 2, RUNNING), iv(2, 4, NATIVE)]}
    filled, _ = fill_from_samples(exact, sampled)
    assert states(filled[1]) == [(0, 2, RUNNING), (2, 4, CPU_WAIT)]


def test_what_the_events_prove_is_never_changed() -> None:
    exact = {1: [iv(0, 1, RUNNING), iv(1, 2, GIL_WAIT), iv(2, 3, BLOCKED)]}
    sampled = {1: [iv(0, 1, NATIVE), iv(1, 2, RUNNING), iv(2, 3, RUNNING)]}
    filled, summary = fill_from_samples(exact, sampled)
    assert states(filled[1]) == states(exact[1])
    assert summary.filled_s == 0 and summary.sampled_share == 0


def test_no_samples_leave_the_exact_timeline_as_it_was() -> None:
    exact = {1: [iv(0, 1, ON_CPU)]}
    filled, summary = fill_from_samples(exact, {})
    assert states(filled[1]) == [(0, 1, ON_CPU)]
    assert summary.sampled_share == 0
