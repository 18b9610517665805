"""Work done in a forked child comes back as it would inline; failures do not lose it."""

from __future__ import annotations

import os
import signal

import pytest

from tests.unit.test_gil_hidden_turns import EVENTS, IO, IO2, T0, _convoy, _samples
from tracer.model import gil_sampled, side_by_side
from tracer.model.gil_sampled import analyse_samples, tstate_map
from tracer.model.side_by_side import SERIAL_ENV, Pending, split_evenly, workers_available

needs_a_child = pytest.mark.skipif(workers_available() == 0,
                                   reason="one usable core or no fork: everything runs inline")


@needs_a_child
def test_the_work_runs_in_another_process_and_its_result_comes_back() -> None:
    with Pending(os.getpid) as pending:
        assert pending.result() != os.getpid()


@needs_a_child
def test_a_result_larger_than_a_pipe_buffer_arrives_whole() -> None:
    with Pending(lambda: bytes(range(256)) * 40_000) as pending:
        assert pending.result() == bytes(range(256)) * 40_000


def test_an_exception_in_the_work_is_raised_in_the_parent() -> None:
    def fails() -> None:
        raise KeyError("no such thread")

    with Pending(fails) as pending, pytest.raises(KeyError, match="no such thread"):
        pending.result()


@needs_a_child
def test_a_child_that_dies_leaves_the_work_to_the_parent() -> None:
    parent = os.getpid()

    def dies_in_a_child() -> str:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return "done by the parent"

    with Pending(dies_in_a_child) as pending:
        assert pending.result() == "done by the parent"


@needs_a_child
def test_cancel_reaps_the_child() -> None:
    pending = Pending(lambda: signal.pause())
    child = pending._pid
    assert child is not None
    pending.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)


def test_serial_mode_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERIAL_ENV, "1")
    assert workers_available() == 0
    with Pending(os.getpid) as pending:
        assert pending.result() == os.getpid()


def test_inside_the_users_process_nothing_forks() -> None:
    with side_by_side.inline():
        assert workers_available() == 0
        with Pending(os.getpid) as pending:
            assert pending.result() == os.getpid()


def test_a_grandchild_starts_no_children_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(side_by_side, "_depth", side_by_side.MAX_DEPTH)
    assert workers_available() == 0


@needs_a_child
def test_a_child_may_split_its_work_once_more() -> None:
    def depths() -> tuple[int, int]:
        with Pending(lambda: side_by_side._depth) as inner:
            return side_by_side._depth, inner.result()

    with Pending(depths) as outer:
        assert outer.result() == (1, 2)


def test_split_evenly_balances_weight_and_keeps_order() -> None:
    items = [("a", 10), ("b", 1), ("c", 7), ("d", 3), ("e", 3), ("f", 1)]
    groups = split_evenly(items, lambda item: item[1], 2)
    assert sorted(i for group in groups for i in group) == sorted(items)
    totals = [sum(w for _, w in group) for group in groups]
    assert max(totals) - min(totals) <= 1
    for group in groups:
        assert group == [i for i in items if i in group]
    assert split_evenly([], lambda item: 1, 3) == []
    assert sorted(split_evenly(items, lambda item: item[1], 10)) == sorted([i] for i in items)


def test_samples_analysed_side_by_side_equal_the_serial_analysis(
        monkeypatch: pytest.MonkeyPatch) -> None:
    threads = _convoy(0.3, waiters=(IO, IO2), seed=3)
    samples = _samples(threads, 0.3)
    monkeypatch.setenv(SERIAL_ENV, "1")
    serial = analyse_samples(samples, tstate_map(EVENTS), T0, T0 + 300_000_000)
    monkeypatch.delenv(SERIAL_ENV)
    monkeypatch.setattr(gil_sampled, "SIDE_BY_SIDE_ROWS", 0)
    split = analyse_samples(samples, tstate_map(EVENTS), T0, T0 + 300_000_000)
    assert list(split.timelines) == list(serial.timelines)
    assert split.timelines == serial.timelines
    assert split.evidence == serial.evidence
