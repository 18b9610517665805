"""The lock model: pure functions over tiny, hand-made lists of raw lock records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracer.errors import CorruptRecording
from tracer.model.locks import (
    LOCK_HOLD,
    HeldLock,
    build_lock_model,
    deadlock_cycles,
    held_locks,
    load_lock_events,
)
from tracer.model.schema import (
    LOCK_WAIT,
    SIGNAL_WAIT,
    DeadlockStep,
    HoldDetail,
    LockHandoff,
    LockRef,
    LockWaiter,
    WaitDetail,
)

MS = 1_000_000
T0 = 1_000 * MS  # an arbitrary monotonic origin: every time below is relative to it
MAIN, WORKER, OTHER = 101, 202, 303


def ev(record: str, /, **fields: Any) -> dict[str, Any]:
    return {"ev": record, "pid": 7, **fields}


def contended_run() -> list[dict[str, Any]]:
    """MAIN holds lock 1 from 0 to 50 ms; WORKER waits from 10 ms, gets it at 51 ms, holds 9 ms."""
    return [
        ev("start", format=1, t=T0, python="3.11.7", long_hold_ns=MS),
        ev("lock", id=1, kind="lock", site="app.py:3", func="<module>", made_by=None, name="lock"),
        ev("wait", id=1, kind="lock", tid=WORKER, t=T0 + 10 * MS, holder=MAIN),
        ev("release", id=1, kind="lock", tid=MAIN, t_acq=T0, t=T0 + 50 * MS),
        ev("wait_end", id=1, kind="lock", tid=WORKER, t0=T0 + 10 * MS, t=T0 + 51 * MS, ok=True),
        ev("release", id=1, kind="lock", tid=WORKER, t_acq=T0 + 51 * MS, t=T0 + 60 * MS),
        ev("stats", id=1, n=40, contended=1, hold_ns=70 * MS, hold_max_ns=50 * MS, instances=1),
    ]


# ------------------------------------------------------------------------------------------------
# Loading


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "locks.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_json_lines(tmp_path: Path) -> None:
    path = write(tmp_path, '{"ev":"start","t":1}\n\n{"ev":"wait","id":1}\n')
    assert load_lock_events(path) == [{"ev": "start", "t": 1}, {"ev": "wait", "id": 1}]


def test_load_tolerates_a_truncated_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{"ev":"start","t":1}\n{"ev":"wait","id":1,"t":')
    assert load_lock_events(path) == [{"ev": "start", "t": 1}]


@pytest.mark.parametrize(
    "text",
    ['{"ev":"start"}\nnot json\n{"ev":"wait"}\n', "[1, 2]\n", '{"kind":"wait"}\n', "garbage\n"],
)
def test_load_refuses_garbage_naming_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CorruptRecording, match=str(path)) as error:
        load_lock_events(path)
    assert "\n" not in str(error.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorruptRecording, match=r"missing\.jsonl"):
        load_lock_events(tmp_path / "missing.jsonl")


def test_empty_file_is_no_events(tmp_path: Path) -> None:
    assert load_lock_events(write(tmp_path, "")) == []


# ------------------------------------------------------------------------------------------------
# Building


def test_wait_interval_relative_to_t0_with_holder() -> None:
    model = build_lock_model(contended_run(), T0, T0 + 100 * MS)
    [wait] = model.waits[WORKER]
    assert (wait.start, wait.end, wait.state) == (
        pytest.approx(0.010),
        pytest.approx(0.051),
        LOCK_WAIT,
    )
    assert isinstance(wait.detail, WaitDetail)
    detail = wait.detail
    assert (detail.lock, detail.name, detail.holder, detail.kind) == (1, "lock", MAIN, "lock")


def test_holds_for_the_trace() -> None:
    model = build_lock_model(contended_run(), T0, T0 + 100 * MS)
    assert [(h.start, h.end, h.state) for h in model.holds[MAIN]] == [(0.0, 0.05, LOCK_HOLD)]
    assert model.holds[WORKER][0].duration == pytest.approx(0.009)


def test_lock_table_figures() -> None:
    [row] = build_lock_model(contended_run(), T0, T0 + 100 * MS).locks
    assert row.id == 1 and row.name == "lock" and row.site == "app.py:3"
    assert (row.acquisitions, row.contended) == (40, 1)
    assert row.wait_s == row.mean_wait_s == row.p95_wait_s == row.max_wait_s
    assert row.wait_s == pytest.approx(0.041)
    assert (row.hold_s, row.max_hold_s) == (pytest.approx(0.07), pytest.approx(0.05))
    [waiter] = row.waiters
    assert isinstance(waiter, LockWaiter)
    assert (waiter.tid, waiter.holder, waiter.count, waiter.wait_s) == (
        WORKER, MAIN, 1, pytest.approx(0.041))
    [handoff] = row.handoffs
    assert isinstance(handoff, LockHandoff)
    assert (handoff.from_tid, handoff.to_tid, handoff.released_s, handoff.acquired_s) == (
        MAIN, WORKER, pytest.approx(0.05), pytest.approx(0.051))


def test_holder_falls_back_to_the_thread_that_released() -> None:
    events = [e for e in contended_run() if e["ev"] != "wait"]  # the start record was lost
    [wait] = build_lock_model(events, T0, T0 + 100 * MS).waits[WORKER]
    assert isinstance(wait.detail, WaitDetail) and wait.detail.holder == MAIN


def test_unfinished_wait_runs_to_the_end() -> None:
    events = [ev("wait", id=3, kind="lock", tid=WORKER, t=T0 + 20 * MS, holder=MAIN)]
    model = build_lock_model(events, T0, T0 + 100 * MS)
    [wait] = model.waits[WORKER]
    assert (wait.start, wait.end) == (pytest.approx(0.02), pytest.approx(0.1))
    assert isinstance(wait.detail, WaitDetail) and wait.detail.unfinished is True
    assert model.locks[0].max_wait_s == pytest.approx(0.08)


def test_timed_out_wait_is_no_handoff() -> None:
    events = [
        ev("wait", id=1, kind="lock", tid=WORKER, t=T0, holder=MAIN),
        ev("wait_end", id=1, kind="lock", tid=WORKER, t0=T0, t=T0 + 5 * MS, ok=False),
        ev("release", id=1, kind="lock", tid=MAIN, t_acq=T0 - MS, t=T0 + 9 * MS),
    ]
    [row] = build_lock_model(events, T0, T0 + 10 * MS).locks
    assert row.handoffs == [] and row.contended == 1


def test_queue_waits_have_no_holder_and_no_handoffs() -> None:
    events = [
        ev("lock", id=5, kind="queue_get", site="app.py:9", func=None, made_by=None, name="jobs"),
        ev("wait_end", id=5, kind="queue_get", tid=WORKER, t0=T0, t=T0 + 30 * MS, ok=True),
    ]
    model = build_lock_model(events, T0, T0 + 50 * MS)
    [row] = model.locks
    assert (row.kind, row.acquisitions, row.handoffs) == ("queue_get", 1, [])
    detail = model.waits[WORKER][0].detail
    assert isinstance(detail, WaitDetail) and detail.holder is None
    # A queue get waits for a put, which nobody owes: a signal wait, not contention.
    assert model.waits[WORKER][0].state == SIGNAL_WAIT and row.contention is False


def test_the_lock_table_ranks_contention_before_longer_signal_waits() -> None:
    events = [*contended_run(),
              ev("lock", id=6, kind="condition", site="app.py:12", func=None, made_by=None,
                 name="ready"),
              ev("wait_end", id=6, kind="condition", tid=OTHER, t0=T0, t=T0 + 90 * MS, ok=True)]
    model = build_lock_model(events, T0, T0 + 100 * MS)
    assert [(row.name, row.contention) for row in model.locks] == [("lock", True),
                                                                   ("ready", False)]
    assert model.locks[1].wait_s > model.locks[0].wait_s
    assert model.waits[WORKER][0].state == LOCK_WAIT
    assert model.waits[OTHER][0].state == SIGNAL_WAIT


def test_p95_is_a_value_that_occurred() -> None:
    events = [
        ev("wait_end", id=1, kind="lock", tid=WORKER, t0=T0, t=T0 + d * MS, ok=True)
        for d in range(1, 21)
    ]
    [row] = build_lock_model(events, T0, T0 + 50 * MS).locks
    assert row.p95_wait_s == pytest.approx(0.019)
    assert row.max_wait_s == pytest.approx(0.020)


def test_locks_from_two_processes_stay_apart() -> None:
    events = [
        {**ev("wait_end", id=1, kind="lock", tid=WORKER, t0=T0, t=T0 + MS, ok=True), "pid": 1},
        {**ev("wait_end", id=1, kind="lock", tid=OTHER, t0=T0, t=T0 + MS, ok=True), "pid": 2},
    ]
    assert sorted(r.pid for r in build_lock_model(events, T0, T0 + MS).locks) == [1, 2]


def test_state_gives_held_at_exit_and_open_holds() -> None:
    state = ev(
        "state",
        t=T0 + 90 * MS,
        threads={str(MAIN): "MainThread"},
        waiting=[],
        held=[
            {
                "id": 1,
                "kind": "lock",
                "name": "lock",
                "tid": MAIN,
                "since": T0 + 70 * MS,
                "depth": 1,
            }
        ],
    )
    model = build_lock_model([*contended_run(), state], T0, T0 + 100 * MS)
    [held] = model.held_at_exit
    assert isinstance(held, HeldLock)
    assert (held.id, held.kind, held.name, held.tid, held.since_s, held.thread) == (
        1, "lock", "lock", MAIN, pytest.approx(0.07), "MainThread")
    open_hold = model.holds[MAIN][-1]
    assert isinstance(open_hold.detail, HoldDetail) and open_hold.detail.open is True
    assert open_hold.end == pytest.approx(0.1)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 10**9), st.integers(0, 10**9), st.booleans()),
        max_size=30,
    )
)
def test_every_wait_end_becomes_one_ordered_interval(
    raw: list[tuple[int, int, int, bool]],
) -> None:
    events = [
        ev("wait_end", id=lock, kind="lock", tid=WORKER + lock, t0=T0 + a, t=T0 + a + b, ok=ok)
        for lock, a, b, ok in raw
    ]
    model = build_lock_model(events, T0, T0 + 3 * 10**9)
    intervals = [i for per_thread in model.waits.values() for i in per_thread]
    assert len(intervals) == len(raw)
    assert all(i.start <= i.end and i.state == LOCK_WAIT for i in intervals)
    assert sum(r.contended for r in model.locks) == len(raw)
    for per_thread in model.waits.values():
        assert [i.start for i in per_thread] == sorted(i.start for i in per_thread)


# ------------------------------------------------------------------------------------------------
# Deadlocks


def snapshot(waiting: list[tuple[int, int, int]], held: list[tuple[int, int]]) -> dict[str, Any]:
    """waiting: (tid, lock id, holder tid); held: (tid, lock id)."""
    return {
        "t": T0,
        "threads": {str(t): f"T{t}" for t in (MAIN, WORKER, OTHER)},
        "waiting": [
            {"tid": t, "id": i, "kind": "lock", "name": f"L{i}", "since": T0, "holder": h}
            for t, i, h in waiting
        ],
        "held": [
            {"id": i, "kind": "lock", "name": f"L{i}", "tid": t, "since": T0, "depth": 1}
            for t, i in held
        ],
    }


def test_two_thread_cycle() -> None:
    state = snapshot([(WORKER, 1, MAIN), (MAIN, 2, WORKER)], [(MAIN, 1), (WORKER, 2)])
    [cycle] = deadlock_cycles(state)
    assert [step.tid for step in cycle] == [MAIN, WORKER]  # starts at the smallest tid
    assert cycle[0] == DeadlockStep(
        tid=MAIN,
        thread=f"T{MAIN}",
        holds=[LockRef(id=1, name="L1")],
        waits_for=LockRef(id=2, name="L2", kind="lock"),
        held_by=WORKER,
    )


def test_three_thread_cycle_and_a_bystander() -> None:
    state = snapshot(
        [(MAIN, 2, WORKER), (WORKER, 3, OTHER), (OTHER, 1, MAIN), (404, 1, MAIN)],
        [(MAIN, 1), (WORKER, 2), (OTHER, 3)],
    )
    [cycle] = deadlock_cycles(state)
    assert [step.tid for step in cycle] == [MAIN, WORKER, OTHER]


def test_no_cycle_when_waits_end_at_a_running_thread() -> None:
    state = snapshot([(WORKER, 1, MAIN), (OTHER, 1, MAIN)], [(MAIN, 1)])
    assert deadlock_cycles(state) == []
    assert [h.tid for h in held_locks(state, T0)] == [MAIN]


def test_self_deadlock_on_a_plain_lock() -> None:
    state = snapshot([(MAIN, 1, MAIN)], [(MAIN, 1)])
    [[step]] = deadlock_cycles(state)
    assert step.held_by == MAIN
