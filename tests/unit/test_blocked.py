"""What a blocked thread was blocked by: syscall and stack to cause, the per-sample split, and
blocked_by summing to the blocked seconds."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.blocked import (
    SYSCALLS,
    apply_blocked,
    blocked_seconds,
    cause_of,
    evidence_note,
    syscall_name,
    syscall_samples,
)
from tracer.model.gil_sampled import _sample_from
from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    NATIVE,
    SIGNAL_WAIT,
    BlockedCause,
    BlockedDetail,
    Interval,
    RunModel,
    ThreadTimeline,
    WaitDetail,
)
from tracer.model.states import state_seconds

C = BlockedCause
# (name, x86_64 number, aarch64 number, cause with no stack and no lock wait)
CALLS = [
    ("clock_nanosleep", 230, 115, C.SLEEP),
    ("nanosleep", 35, 101, C.SLEEP),
    ("read", 0, 63, C.IO),
    ("write", 1, 64, C.IO),
    ("recvfrom", 45, 207, C.IO),
    ("sendto", 44, 206, C.IO),
    ("recvmsg", 47, 212, C.IO),
    ("accept4", 288, 242, C.IO),
    ("connect", 42, 203, C.IO),
    ("pselect6", 270, 72, C.POLL),
    ("ppoll", 271, 73, C.POLL),
    ("epoll_pwait", 281, 22, C.POLL),
    ("wait4", 61, 260, C.CHILD),
    ("waitid", 247, 95, C.CHILD),
    ("fcntl", 72, 25, C.FILE_LOCK),
    ("flock", 73, 32, C.FILE_LOCK),
    ("rt_sigsuspend", 130, 133, C.SIGNAL),
    ("futex", 202, 98, C.OTHER),
]


@pytest.mark.parametrize(("name", "x86", "arm", "cause"), CALLS)
def test_each_syscall_means_one_cause_on_both_machines(name: str, x86: int, arm: int,
                                                      cause: BlockedCause) -> None:
    assert syscall_name("x86_64", x86) == name
    assert syscall_name("aarch64", arm) == name
    assert cause_of(name) is cause


def test_x86_only_calls_and_unknowns() -> None:
    for name, number in (("poll", 7), ("select", 23), ("epoll_wait", 232)):
        assert syscall_name("x86_64", number) == name
        assert cause_of(name) is C.POLL
    assert cause_of(syscall_name("x86_64", 34)) is C.SIGNAL  # pause
    assert syscall_name("aarch64", 7) is None  # no poll there: 7 is something else
    assert syscall_name("riscv64", 98) is None
    assert cause_of(None) is C.OTHER
    assert cause_of("getpid") is C.OTHER
    # the tables do not collide within a machine
    for table in SYSCALLS.values():
        assert len(set(table.values())) == len(table)


def test_a_futex_is_named_by_the_lock_recorder_then_the_stack() -> None:
    assert cause_of("futex", wait_kind="lock", contention=True) is C.LOCK
    assert cause_of("futex", wait_kind="condition", contention=False) is C.SIGNAL
    assert cause_of("futex", wait_kind="event") is C.SIGNAL  # no state said: by its kind
    assert cause_of("futex", wait_kind="rlock") is C.LOCK
    idle_worker = ["_worker (concurrent/futures/thread.py:81)", "run (threading.py:975)"]
    assert cause_of("futex", idle_worker) is C.SIGNAL
    assert cause_of("futex", ["Condition.wait (threading.py:320)", "main (app.py:3)"]) is C.SIGNAL
    assert cause_of("futex", ["get (queue.py:171)", "consume (app.py:9)"]) is C.SIGNAL
    assert cause_of("futex", ["consume (app.py:9)"]) is C.OTHER
    # a wait deep below user code is not the thread's own wait
    deep = ["f (app.py:1)", "g (app.py:2)", "h (app.py:3)", "wait (threading.py:320)"]
    assert cause_of("futex", deep) is C.OTHER


def test_the_stack_refines_a_sleep() -> None:
    assert cause_of("clock_nanosleep", ["nap (app.py:4)"]) is C.SLEEP
    assert cause_of("clock_nanosleep", ["_wait (subprocess.py:2040)", "wait (subprocess.py:1264)",
                                        "main (app.py:7)"]) is C.CHILD
    assert cause_of("clock_nanosleep", ["write (store.py:8)", "commit (sqlite3/x.py:2)"]) is (
        C.FILE_LOCK)
    assert cause_of("recvfrom", ["_wait (subprocess.py:2040)"]) is C.IO  # only a sleep is refined


def _tick(t_ms: float, rows: list[list[Any]]) -> dict[str, Any]:
    return _sample_from({"t": int(t_ms * 1e6), "h": 0, "l": 0, "n": 0, "th": rows})


T = 7


def _thread(intervals: list[Interval]) -> ThreadTimeline:
    thread = ThreadTimeline(tid=T, pid=1, name="t", start_s=0.0, end_s=0.01, cpu_s=0.0,
                            intervals=intervals)
    thread.state_s = state_seconds(intervals)
    return thread


def _causes(thread: ThreadTimeline) -> list[tuple[float, float, str]]:
    out = []
    for i in thread.intervals:
        if i.state == BLOCKED:
            assert isinstance(i.detail, BlockedDetail)
            out.append((round(i.start * 1e3, 3), round(i.end * 1e3, 3), str(i.detail.cause)))
    return out


def test_sampled_blocked_time_is_split_per_sample() -> None:
    """Samples every 1 ms: sleeping at 0-2, running at 3, recv at 4-5, futex next to a recorded
    lock wait at 6, then a B row written before syscall numbers were (no sixth element)."""
    rows = {0: [T, "B", 0, 1, 0, 230], 1: [T, "B", 0, 1, 0, 230], 2: [T, "B", 0, 1, 0, 230],
            3: [T, "R", 0, 2, 5], 4: [T, "B", 0, 2, 5, 45], 5: [T, "B", 0, 2, 5, 45],
            6: [T, "B", 0, 3, 5, 202], 7: [T, "B", 0, 3, 5]}
    syscalls = syscall_samples([_tick(t, [row]) for t, row in rows.items()], "x86_64")
    assert syscalls.numbered
    wait = WaitDetail(lock=1, pid=1, name="Lock-1", kind="lock", holder=8, ok=True)
    thread = _thread([Interval(0.0, 0.003, BLOCKED), Interval(0.003, 0.004, NATIVE),
                      Interval(0.004, 0.0065, BLOCKED), Interval(0.0065, 0.0068, LOCK_WAIT, wait),
                      Interval(0.0068, 0.008, BLOCKED)])
    apply_blocked(thread, syscalls, 0, [], 0.0)
    assert _causes(thread) == [(0.0, 3.0, "sleep"), (4.0, 6.0, "io"), (6.0, 6.5, "lock"),
                               (6.8, 7.0, "lock"), (7.0, 8.0, "other")]
    assert thread.blocked_by == {"sleep": 0.003, "io": 0.002, "lock": 0.0007, "other": 0.001}
    assert sum(thread.blocked_by.values()) == pytest.approx(thread.state_s[BLOCKED], abs=1e-9)


def test_an_exact_stretch_takes_the_samples_inside_it() -> None:
    """An exact blocked stretch begins between samples: its head takes the first sample inside;
    a stretch no sample saw takes the sample it lies in the span of, when that one was blocked;
    a signal wait next to a futex makes it a signal."""
    rows = {1: [T, "R", 0, 1, 0], 2: [T, "B", 0, 2, 0, 202], 3: [T, "B", 0, 2, 0, 202],
            4: [T, "R", 0, 3, 0], 5: [T, "B", 0, 4, 0, 61], 6: [T, "R", 0, 5, 0]}
    syscalls = syscall_samples([_tick(t, [row]) for t, row in rows.items()], "x86_64")
    event = WaitDetail(lock=2, pid=1, name="Event-1", kind="event", holder=None, ok=True)
    thread = _thread([Interval(0.0015, 0.0035, BLOCKED),
                      Interval(0.0035, 0.0038, SIGNAL_WAIT, event),
                      Interval(0.0051, 0.0054, BLOCKED),  # inside sample 5's span: wait4
                      Interval(0.0061, 0.0062, BLOCKED)])  # sample 6 saw it running: no cause
    apply_blocked(thread, syscalls, 0, [], 0.0)
    assert _causes(thread) == [(1.5, 3.5, "signal"), (5.1, 5.4, "child"), (6.1, 6.2, "other")]


def test_futex_stack_from_pyspy_and_no_sampler() -> None:
    rows = {0: [T, "B", 0, 1, 0, 98], 1: [T, "B", 0, 1, 0, 98]}
    syscalls = syscall_samples([_tick(t, [row]) for t, row in rows.items()], "aarch64")
    thread = _thread([Interval(0.0, 0.002, BLOCKED)])
    from tracer.model.schema import StackSample
    thread.samples = [StackSample(0.0, False, False, 0)]
    stacks = [["_worker (concurrent/futures/thread.py:81)", "run (threading.py:975)"]]
    apply_blocked(thread, syscalls, 0, stacks, 0.01)
    assert thread.blocked_by == {"signal": 0.002}
    alone = _thread([Interval(0.0, 0.002, BLOCKED), Interval(0.002, 0.003, NATIVE)])
    apply_blocked(alone, None, 0, [], 0.0)
    assert alone.blocked_by == {"other": 0.002}
    assert "not split by cause" in evidence_note(False, None)
    assert "perf's context switches" in evidence_note(True, syscalls).lower()


def test_blocked_by_sums_to_the_blocked_seconds() -> None:
    """Rounding each cause to the microsecond must not leave the sum off the blocked total."""
    pieces = [Interval(i * 1e-3, i * 1e-3 + 3.3333333e-7, BLOCKED, BlockedDetail(cause))
              for i, cause in enumerate([C.SLEEP, C.IO, C.POLL] * 5)]
    pieces.append(Interval(1.0, 1.5, BLOCKED))  # no detail: other
    pieces.append(Interval(2.0, 3.0, NATIVE))
    total = state_seconds(pieces)[BLOCKED]
    found = blocked_seconds(pieces, total)
    assert sum(found.values()) == pytest.approx(total, abs=1e-12)
    assert next(iter(found)) == "other"  # largest first
    assert blocked_seconds([Interval(0, 1, NATIVE)], 0.0) == {}


def test_the_model_round_trips_blocked_causes() -> None:
    model = build_synthetic_model()
    thread = model.threads[0]
    thread.intervals = [Interval(0.0, 0.5, BLOCKED, BlockedDetail(C.FILE_LOCK)),
                        Interval(0.5, 0.6, BLOCKED)]
    thread.blocked_by = {C.FILE_LOCK: 0.5, C.OTHER: 0.1}
    loaded = RunModel.from_dict(orjson.loads(model.to_json_bytes()))
    again = loaded.threads[0]
    assert again.intervals[0].detail == BlockedDetail(C.FILE_LOCK)
    assert again.intervals[1].detail is None
    assert again.blocked_by == {"file_lock": 0.5, "other": 0.1}
    raw = orjson.loads(model.to_json_bytes())
    raw["threads"][0]["blocked_by"] = {"napping": 1.0}
    with pytest.raises(Exception, match="napping"):
        RunModel.from_dict(raw)
