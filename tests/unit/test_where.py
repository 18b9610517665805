"""Attribution of thread states to stacks, and of waits to the holder's code, on small cases whose
answer is known by construction."""

from __future__ import annotations

import orjson
import pytest

from tracer.model.schema import (
    BLOCKED,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    RUNNING,
    Frame,
    Interval,
    StackSample,
    StackSource,
    ThreadTimeline,
    WaitDetail,
)
from tracer.model.stacks import (
    UNKNOWN,
    Slice,
    StackTimeline,
    StackTrie,
    parse_frame,
    sampled_timeline,
    short_file,
    sliced_timeline,
    user_stack,
    viztracer_timelines,
)
from tracer.model.where import attribute

PID = 7
MAIN = Frame("main", "app.py", 30)
SPIN = Frame("spin", "app.py", 5)
HASH = Frame("digest", "app.py", 12)
IO = Frame("client", "app.py", 19)


def _thread(tid: int, intervals: list[Interval], name: str = "") -> ThreadTimeline:
    return ThreadTimeline(tid=tid, pid=PID, name=name or f"t{tid}", start_s=0.0,
                          end_s=max((i.end for i in intervals), default=0.0), cpu_s=0.0,
                          intervals=intervals)


TRIE = StackTrie()


def _steps(*changes: tuple[float, tuple[Frame, ...]]) -> StackTimeline:
    return StackTimeline([t for t, _ in changes], [TRIE.intern(s) for _, s in changes])


def _pieces(timeline: StackTimeline, start: float, end: float) -> list[tuple[float, float, object]]:
    return [(a, b, None if s == UNKNOWN else TRIE.stack(s))
            for a, b, s in timeline.pieces(start, end)]


def _seconds(rows: list, tid: int, state: str, stack: tuple[Frame, ...]) -> float:
    return sum(r.seconds for r in rows if (r.tid, r.state, r.stack) == (tid, state, stack))


def test_frame_labels_parse_with_parentheses_in_names() -> None:
    assert parse_frame("spin (app.py:5)") == Frame("spin", "app.py", 5)
    assert parse_frame("f.<locals>.g (pkg/mod.py:12)") == Frame("f.<locals>.g", "pkg/mod.py", 12)
    assert parse_frame("call (weird (name).py:3)") == Frame("call", "weird (name).py", 3)
    assert parse_frame("<built-in>") == Frame("<built-in>", "", 0)


def test_library_files_are_shortened_like_pyspy_does() -> None:
    assert short_file("/usr/lib/python3.11/threading.py") == "threading.py"
    assert short_file("/v/lib/python3.13t/site-packages/requests/api.py") == "requests/api.py"
    assert short_file("/home/me/app/main.py") == "/home/me/app/main.py"


def test_stacks_start_at_the_users_code() -> None:
    frames = ["spin (app.py:5)", "<module> (app.py:40)", "_run_code (<frozen runpy>:88)",
              "_run_module_as_main (<frozen runpy>:198)"]
    assert user_stack(frames) == (Frame("<module>", "app.py", 40), SPIN)


def test_pieces_split_an_interval_where_the_stack_changes() -> None:
    timeline = _steps((1.0, (MAIN,)), (2.0, (MAIN, SPIN)))
    assert _pieces(timeline, 0.5, 2.5) == [
        (0.5, 1.0, None), (1.0, 2.0, (MAIN,)), (2.0, 2.5, (MAIN, SPIN))]
    assert _pieces(timeline, 3.0, 3.0) == []


def test_time_before_the_first_sample_is_unattributed_and_said() -> None:
    thread = _thread(1, [Interval(0.0, 1.0, RUNNING)])
    found = attribute([thread], {(PID, 1): _steps((0.25, (MAIN, SPIN)))}, TRIE,
                      StackSource.PYSPY, 100.0)
    assert _seconds(found.where.rows, 1, RUNNING, (MAIN, SPIN)) == pytest.approx(0.75)
    assert found.where.unattributed_s == {RUNNING: pytest.approx(0.25)}


def test_a_thread_without_stacks_is_unattributed_not_dropped() -> None:
    found = attribute([_thread(1, [Interval(0.0, 2.0, BLOCKED)])], {}, TRIE, StackSource.NONE, None)
    assert found.where.rows == [] and found.where.unattributed_s == {BLOCKED: 2.0}


def test_two_functions_three_to_one_by_construction() -> None:
    """A thread alternating 30 ms of one function and 10 ms of another, held then waiting."""
    intervals, changes, t = [], [], 0.0
    for _ in range(25):
        changes.append((t, (MAIN, SPIN)))
        intervals.append(Interval(t, t + 0.03, RUNNING))
        changes.append((t + 0.03, (MAIN, HASH)))
        intervals.append(Interval(t + 0.03, t + 0.04, NATIVE))
        t += 0.04
    found = attribute([_thread(1, intervals)], {(PID, 1): _steps(*changes)}, TRIE,
                      StackSource.PYSPY, None)
    spin = _seconds(found.where.rows, 1, RUNNING, (MAIN, SPIN))
    digest = _seconds(found.where.rows, 1, NATIVE, (MAIN, HASH))
    assert spin / (spin + digest) == pytest.approx(0.75)
    assert sum(r.seconds for r in found.where.rows) == pytest.approx(1.0)


def test_a_gil_wait_is_blamed_on_whoever_held_the_gil_meanwhile() -> None:
    """The waiter waits 0-0.3 s: the spinner holds 0-0.2 s in spin, nobody 0.2-0.25 s, the
    hasher 0.25-0.3 s in digest."""
    waiter = _thread(1, [Interval(0.0, 0.3, GIL_WAIT), Interval(0.3, 0.31, RUNNING)])
    spinner = _thread(2, [Interval(0.0, 0.2, RUNNING), Interval(0.2, 0.4, BLOCKED)])
    hasher = _thread(3, [Interval(0.25, 0.3, RUNNING)])
    timelines = {(PID, 1): _steps((0.0, (IO,))), (PID, 2): _steps((0.0, (SPIN,))),
                 (PID, 3): _steps((0.0, (HASH,)))}
    blame = attribute([waiter, spinner, hasher], timelines, TRIE, StackSource.PYSPY,
                      100.0).gil_blame
    got = {(b.waiter_tid, b.waiter_stack, b.holder_tid, b.holder_stack): b.seconds for b in blame}
    assert got == {(1, (IO,), 2, (SPIN,)): pytest.approx(0.2),
                   (1, (IO,), 3, (HASH,)): pytest.approx(0.05),
                   (1, (IO,), None, ()): pytest.approx(0.05)}
    assert blame[0].holder_tid == 2  # largest first


def test_gil_holders_of_another_process_are_not_blamed() -> None:
    waiter = _thread(1, [Interval(0.0, 0.1, GIL_WAIT)])
    other = ThreadTimeline(tid=2, pid=PID + 1, name="child", start_s=0.0, end_s=0.1, cpu_s=0.1,
                           intervals=[Interval(0.0, 0.1, RUNNING)])
    (blame,) = attribute([waiter, other], {}, TRIE, StackSource.NONE, None).gil_blame
    assert blame.holder_tid is None and blame.seconds == pytest.approx(0.1)


def test_a_lock_wait_is_blamed_on_the_holders_code() -> None:
    detail = WaitDetail(lock=4, pid=PID, name="cache.lock", kind="lock", holder=2, ok=True)
    waiter = _thread(1, [Interval(0.0, 0.5, LOCK_WAIT, detail)])
    holder = _thread(2, [Interval(0.0, 0.5, RUNNING)])
    timelines = {(PID, 1): _steps((0.0, (IO,))), (PID, 2): _steps((0.0, (SPIN,)), (0.4, (HASH,)))}
    blame = attribute([waiter, holder], timelines, TRIE, StackSource.PYSPY, 100.0).lock_blame
    got = {(b.lock, b.name, b.holder_tid, b.holder_stack): b.seconds for b in blame}
    assert got == {(4, "cache.lock", 2, (SPIN,)): pytest.approx(0.4),
                   (4, "cache.lock", 2, (HASH,)): pytest.approx(0.1)}


def test_samples_become_steps_and_repeated_stacks_merge() -> None:
    stacks = [["spin (app.py:5)", "main (app.py:30)"], ["digest (app.py:12)", "main (app.py:30)"]]
    samples = [StackSample(0.2, None, None, 1), StackSample(0.0, None, None, 0),
               StackSample(0.1, None, None, 0), StackSample(0.3, None, None, -1)]
    timeline = sampled_timeline(samples, stacks, TRIE, {})
    assert timeline.times == [0.0, 0.2, 0.3]
    assert [TRIE.stack(s) for s in timeline.stacks] == [(MAIN, SPIN), (MAIN, HASH), ()]


def test_viztracer_slices_nest_and_one_outliving_its_caller_is_cut() -> None:
    slices = [Slice(0.1, 0.4, SPIN), Slice(0.0, 1.0, MAIN), Slice(0.5, 0.9, HASH),
              Slice(0.6, 0.95, IO),  # outlives HASH (clock jitter): cut at 0.9
              Slice(0.97, 0.97, SPIN)]  # empty: no time in it
    timeline = sliced_timeline(slices, TRIE)
    assert _pieces(timeline, -0.1, 1.2) == [
        (-0.1, 0.0, None), (0.0, 0.1, (MAIN,)), (0.1, 0.4, (MAIN, SPIN)), (0.4, 0.5, (MAIN,)),
        (0.5, 0.6, (MAIN, HASH)), (0.6, 0.9, (MAIN, HASH, IO)), (0.9, 1.0, (MAIN,)),
        (1.0, 1.2, ())]


def test_viztracer_calls_still_running_at_the_end_hold_to_the_end() -> None:
    events = [
        {"ph": "B", "name": "<module> (app.py:1)", "ts": 0.0, "tid": 5},  # never ended
        {"ph": "B", "name": "main (app.py:30)", "ts": 100_000.0, "tid": 5},
        {"ph": "E", "name": "main (app.py:30)", "ts": 300_000.0, "tid": 5},
        {"ph": "X", "name": "spin (app.py:5)", "ts": 400_000.0, "dur": 100_000.0, "tid": 5},
        {"ph": "X", "name": "builtins.len", "ts": 450_000.0, "dur": 10.0, "tid": 5},  # C call
        {"ph": "X", "name": "_run_code (<frozen runpy>:88)", "ts": 0.0, "dur": 9e9, "tid": 5},
    ]
    trie = StackTrie()
    (timeline,) = viztracer_timelines([orjson.dumps(events)], PID, trie).values()
    module = Frame("<module>", "app.py", 1)
    got = [(a, b, None if s == UNKNOWN else trie.stack(s)) for a, b, s in timeline.pieces(0, 1)]
    assert got == [(0, 0.1, (module,)), (0.1, 0.3, (module, MAIN)), (0.3, 0.4, (module,)),
                   (0.4, 0.5, (module, SPIN)), (0.5, 1, (module,))]
