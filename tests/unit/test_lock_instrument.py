"""The in-target lock instrumentation: instrumented programs behave exactly as before, and the waits
it records match waits known by construction.

Timing checks use waits of 200 ms against margins of 10% or more: a GIL switch interval (5 ms) or
a busy second core must not make them flaky. Overhead is measured by hand, never asserted.
"""

from __future__ import annotations

import copy
import os
import pickle
import queue
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tracer.instrument import locks
from tracer.model.locks import build_lock_model, deadlock_cycles, load_lock_events
from tracer.model.schema import WaitDetail

HOLD_S = 0.2  # known-by-construction critical section


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "locks.jsonl"
    locks.install(str(path))
    try:
        yield path
    finally:
        locks.uninstall()


def recorded(path: Path) -> list[dict[str, Any]]:
    locks.flush()
    return load_lock_events(path)


def wait_until_waiting(kind: str, count: int = 1, timeout: float = 1.5) -> dict[str, Any]:
    """Poll the live state until ``count`` threads wait on a ``kind`` primitive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = locks.snapshot_state()
        if sum(1 for w in state["waiting"] if w["kind"] == kind) >= count:
            return state
        time.sleep(0.002)
    raise AssertionError(f"no thread started waiting on a {kind}")


def run_threads(*targets: Any) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2)
        assert not thread.is_alive()


# ------------------------------------------------------------------------------------------------
# Behaviour is preserved


def test_install_replaces_and_uninstall_restores(tmp_path: Path) -> None:
    original = (
        threading.Lock,
        threading.RLock,
        threading.Condition.wait,
        queue.Queue.get,
        threading.Semaphore.__enter__,
        threading.Event.wait,
    )
    locks.install(str(tmp_path / "x.jsonl"))
    try:
        assert threading.Lock is locks.TRACED_LOCK
        assert isinstance(queue.Queue().mutex, locks.TracedLock)
        assert threading.Condition.wait is not original[2]
    finally:
        locks.uninstall()
    assert (
        threading.Lock,
        threading.RLock,
        threading.Condition.wait,
        queue.Queue.get,
        threading.Semaphore.__enter__,
        threading.Event.wait,
    ) == original


def test_lock_protocol_matches_the_original(sink: Path) -> None:
    lock = threading.Lock()
    assert type(lock) is locks.TracedLock
    assert not lock.locked()
    with lock as entered:
        assert entered is True
        assert lock.locked()
        assert lock.acquire(blocking=False) is False
        assert lock.acquire(False) is False
        assert lock.acquire(timeout=0) is False
        assert lock.acquire(True, 0.01) is False
    assert lock.acquire() is True
    lock.release()
    assert lock.acquire_lock() and lock.locked_lock()
    lock.release_lock()
    assert lock.acquire(blocking=False) is True
    lock.release()


@pytest.mark.parametrize("args", [(False, 1), (True, -2), (True, "soon")])
def test_bad_acquire_arguments_raise_like_the_original(sink: Path, args: tuple[Any, Any]) -> None:
    plain = threading._allocate_lock()  # type: ignore[attr-defined]
    with pytest.raises(Exception) as expected:
        plain.acquire(*args)
    with pytest.raises(type(expected.value), match=str(expected.value)):
        threading.Lock().acquire(*args)


def test_release_errors_match_the_original(sink: Path) -> None:
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        threading.Lock().release()
    rlock = threading.RLock()
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        rlock.release()


def test_lock_may_be_released_by_another_thread(sink: Path) -> None:
    lock = threading.Lock()
    lock.acquire()
    run_threads(lock.release)
    assert not lock.locked()


def test_rlock_reentrancy_and_ownership(sink: Path) -> None:
    rlock = threading.RLock()
    assert type(rlock) is locks.TracedRLock
    assert not rlock._is_owned()
    with rlock, rlock:
        assert rlock._is_owned()
        if sys.version_info >= (3, 11):
            assert rlock._recursion_count() == 2
        other: list[Any] = []

        def from_other_thread() -> None:
            other.append(rlock.acquire(blocking=False))
            other.append(rlock._is_owned())
            try:
                rlock.release()
            except RuntimeError as exc:
                other.append(str(exc))

        run_threads(from_other_thread)
        assert other == [False, False, "cannot release un-acquired lock"]
    assert not rlock._is_owned()
    assert rlock.acquire(timeout=1)
    rlock.release()


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_pickling_and_copying_fail_like_the_original(sink: Path, factory: str) -> None:
    traced = getattr(threading, factory)()
    plain = locks._orig_lock() if factory == "Lock" else locks._orig_rlock()
    for action in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError) as expected:
            action(plain)
        with pytest.raises(TypeError, match=str(expected.value)):
            action(traced)


def test_repr_and_isinstance(sink: Path) -> None:
    before = locks._orig_lock()
    lock = threading.Lock()
    assert repr(lock).startswith("<unlocked _thread.lock object")
    with lock:
        assert repr(lock).startswith("<locked _thread.lock object")
    assert "test_lock_instrument.py" in repr(lock)
    if isinstance(locks._orig_lock, type):  # 3.13+: threading.Lock is a class
        assert isinstance(lock, threading.Lock) and isinstance(before, threading.Lock)
        assert not isinstance(object(), threading.Lock)
    else:  # a function before 3.13, traced or not: isinstance refuses it alike
        with pytest.raises(TypeError):
            isinstance(lock, threading.Lock)
    assert type(lock).__module__ == type(before).__module__ == "_thread"
    assert type(lock).__qualname__ == type(before).__qualname__


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_at_fork_reinit_leaves_an_unlocked_lock(sink: Path, factory: str) -> None:
    lock = getattr(threading, factory)()
    lock.acquire()
    lock._at_fork_reinit()
    assert lock.acquire(blocking=False)
    lock.release()


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_condition_with_either_lock(sink: Path, factory: str) -> None:
    cond = threading.Condition(getattr(threading, factory)())
    items: list[int] = []
    got: list[int] = []

    def consumer() -> None:
        with cond:
            assert cond.wait_for(lambda: len(items) == 3, timeout=2)
            got.extend(items)

    def producer() -> None:
        for i in range(3):
            with cond:
                items.append(i)
                cond.notify_all()

    run_threads(consumer, producer)
    assert got == [0, 1, 2]
    with cond:
        assert cond.wait(0.01) is False
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        cond.notify()


def test_queue_blocking_both_ways(sink: Path) -> None:
    q: queue.Queue[int] = queue.Queue(maxsize=1)
    out: list[int] = []

    def producer() -> None:
        for i in range(20):
            q.put(i)
        q.join()

    def consumer() -> None:
        for _ in range(20):
            out.append(q.get(timeout=2))
            q.task_done()

    run_threads(producer, consumer)
    assert out == list(range(20))
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    q.put_nowait(1)
    with pytest.raises(queue.Full):
        q.put(2, timeout=0.01)
    assert isinstance(queue.LifoQueue().mutex, locks.TracedLock)


def test_thread_pool_executor(sink: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(lambda x: x * x, range(50))) == [x * x for x in range(50)]
        future = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            future.result(timeout=2)
        assert isinstance(pool._shutdown_lock, locks.TracedLock)


def test_barrier_event_semaphore(sink: Path) -> None:
    barrier = threading.Barrier(3)
    indices: list[int] = []
    run_threads(*[lambda: indices.append(barrier.wait(2))] * 3)
    assert sorted(indices) == [0, 1, 2]
    barrier.abort()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.1)

    event = threading.Event()
    assert event.wait(0.01) is False
    run_threads(event.set)
    assert event.wait() is True and event.is_set()

    sem = threading.BoundedSemaphore(2)
    with sem:
        assert sem.acquire(blocking=False)
        assert sem.acquire(blocking=False) is False
        assert sem.acquire(timeout=0.01) is False
        sem.release()
    with pytest.raises(ValueError):
        sem.release()


def test_fork_child_can_use_locks(sink: Path) -> None:
    lock = threading.Lock()
    rlock = threading.RLock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            with lock, rlock, rlock:
                pass
            cond = threading.Condition(lock)
            with cond:
                cond.notify_all()
            locks.flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    starts = [e for e in recorded(sink) if e["ev"] == "start"]
    assert {e["pid"] for e in starts} == {os.getpid(), pid}


def test_thread_internals_are_left_alone(sink: Path) -> None:
    run_threads(lambda: None)
    assert not [e for e in recorded(sink) if e["ev"] == "wait"]


# ------------------------------------------------------------------------------------------------
# What is recorded


def _contended_run(lock: Any) -> tuple[int, int]:
    """Main holds ``lock``; a worker blocks on it; main releases it HOLD_S after seeing the worker
    wait. Returns (main's native tid, worker's native tid)."""
    worker_tid: list[int] = []

    def worker() -> None:
        worker_tid.append(threading.get_native_id())
        with lock:
            pass

    lock.acquire()
    thread = threading.Thread(target=worker)
    thread.start()
    wait_until_waiting(locks.TracedLock._kind if type(lock) is locks.TracedLock else "rlock")
    time.sleep(HOLD_S)
    lock.release()
    thread.join(2)
    return threading.get_native_id(), worker_tid[0]


@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_contended_wait_matches_the_known_wait(sink: Path, factory: str) -> None:
    lock = getattr(threading, factory)()
    main_tid, worker_tid = _contended_run(lock)
    events = recorded(sink)
    model = build_lock_model(events, t0_ns=0, end_ns=time.monotonic_ns())
    [wait] = model.waits[worker_tid]
    assert HOLD_S <= wait.duration <= HOLD_S * 1.1
    assert isinstance(wait.detail, WaitDetail)
    assert wait.detail.holder == main_tid
    assert wait.detail.kind == factory.lower()
    assert wait.detail.name == "lock"
    [row] = [r for r in model.locks if r.id == lock._id]
    assert row.contended == 1 and row.acquisitions == 2
    assert row.waiters[0].holder == main_tid
    [handoff] = row.handoffs
    assert (handoff.from_tid, handoff.to_tid) == (main_tid, worker_tid)
    assert handoff.released_s <= handoff.acquired_s
    main_hold = model.holds[main_tid][0]
    assert main_hold.duration >= HOLD_S


def test_uncontended_acquisitions_only_count(sink: Path) -> None:
    lock = threading.Lock()
    for _ in range(1000):
        with lock:
            pass
    events = recorded(sink)
    assert not [e for e in events if e["ev"] in ("wait", "wait_end", "release")]
    stats = [e for e in events if e["ev"] == "stats" and e["n"] == 1000]
    assert stats and stats[-1]["contended"] == 0


def test_timed_out_acquire_is_a_failed_wait(sink: Path) -> None:
    lock = threading.Lock()
    lock.acquire()
    result: list[bool] = []
    run_threads(lambda: result.append(lock.acquire(timeout=0.05)))
    lock.release()
    assert result == [False]
    [end] = [e for e in recorded(sink) if e["ev"] == "wait_end"]
    assert end["ok"] is False and end["t"] - end["t0"] >= 50_000_000


def test_long_uncontended_hold_is_an_event(sink: Path) -> None:
    lock = threading.Lock()
    with lock:
        time.sleep(0.01)
    [release] = [e for e in recorded(sink) if e["ev"] == "release"]
    assert release["t"] - release["t_acq"] >= 10_000_000


@pytest.mark.parametrize(
    ("kind", "make", "block", "wake"),
    [
        ("queue_get", queue.Queue, lambda q: q.get(), lambda q: q.put(1)),
        ("event", threading.Event, lambda e: e.wait(), lambda e: e.set()),
        ("semaphore", lambda: threading.Semaphore(0), lambda s: s.acquire(), lambda s: s.release()),
    ],
)
def test_high_level_waits_are_named_by_their_object(
    sink: Path, kind: str, make: Any, block: Any, wake: Any
) -> None:
    obj = make()
    thread = threading.Thread(target=lambda: block(obj))
    thread.start()
    wait_until_waiting(kind)
    time.sleep(HOLD_S)
    wake(obj)
    thread.join(2)
    ends = [e for e in recorded(sink) if e["ev"] == "wait_end"]
    assert [e["kind"] for e in ends] == [kind]
    assert HOLD_S <= (ends[0]["t"] - ends[0]["t0"]) / 1e9 <= HOLD_S * 1.1


def test_condition_and_barrier_waits(sink: Path) -> None:
    cond = threading.Condition()
    barrier = threading.Barrier(2)

    def waiter() -> None:
        with cond:
            cond.wait(2)
        barrier.wait(2)

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until_waiting("condition")
    with cond:
        cond.notify()
    wait_until_waiting("barrier")
    barrier.wait(2)
    thread.join(2)
    kinds = [e["kind"] for e in recorded(sink) if e["ev"] == "wait_end"]
    assert kinds[:2] == ["condition", "barrier"]


def test_snapshot_names_a_deadlock_cycle(sink: Path) -> None:
    first, second = threading.Lock(), threading.Lock()
    both_hold = threading.Barrier(2)

    def take(mine: Any, theirs: Any) -> None:
        with mine:
            both_hold.wait(2)
            if theirs.acquire(timeout=0.5):  # bounded: the test must not hang
                theirs.release()

    threads = [
        threading.Thread(target=take, args=pair) for pair in ((first, second), (second, first))
    ]
    for thread in threads:
        thread.start()
    state = wait_until_waiting("lock", count=2)
    for thread in threads:
        thread.join(2)
    [cycle] = deadlock_cycles(state)
    assert len(cycle) == 2
    assert {step.waits_for.id for step in cycle} == {first._id, second._id}
    for step, following in zip(cycle, cycle[1:] + cycle[:1]):
        assert step.held_by == following.tid
        assert following.holds[0].id == step.waits_for.id


def test_names_and_stdlib_origin(sink: Path) -> None:
    class Account:
        def __init__(self) -> None:
            self._lock = threading.Lock()

    account = Account()
    jobs: queue.Queue[int] = queue.Queue()
    for lock in (account._lock, jobs.mutex):
        with lock:
            time.sleep(0.002)  # a long hold, so the lock is declared with its name
    records = {e["id"]: e for e in recorded(sink) if e["ev"] == "lock"}
    assert records[account._lock._id]["name"].endswith("Account._lock")
    mutex = records[jobs.mutex._id]
    assert mutex["made_by"] == "queue.Queue.mutex"
    assert mutex["name"] == "queue.Queue.mutex of jobs"
    assert mutex["site"].endswith("test_lock_instrument.py:" + mutex["site"].rsplit(":", 1)[1])


def test_a_primitive_made_through_our_own_wrappers_is_made_where_the_user_called(
        sink: Path) -> None:
    # The task hooks wrap ThreadPoolExecutor.submit: a future's condition was once "made at"
    # tracer/instrument/tasks.py rather than at the user's submit.
    from tracer.instrument import tasks

    def made_by_us() -> threading.Lock:
        return threading.Lock()

    made_by_us.__code__ = made_by_us.__code__.replace(co_filename=tasks.__file__)
    lock = made_by_us()
    with lock:
        time.sleep(0.002)
    record = next(e for e in recorded(sink) if e["ev"] == "lock" and e["id"] == lock._id)
    assert "test_lock_instrument.py" in record["site"], record["site"]
