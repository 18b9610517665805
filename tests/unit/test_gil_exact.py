"""The exact GIL model: futex and context-switch events in, waits and states out; on a real
recording and on tiny hand-made event lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_exact import (
    WAIT_LOOP_BOUND_NS,
    Ev,
    FutexClassifier,
    GilEvent,
    UprobeRecording,
    _parse_line,
    gil_metrics,
    gil_timelines,
    parse_perf_script,
    reconstruct,
)
from tracer.model.schema import BLOCKED, CPU_WAIT, GIL_WAIT, ON_CPU, RUNNING, Interval

FIXTURE = Path(__file__).parents[1] / "fixtures" / "perf_gil_small.txt"
MS = 1_000_000  # ns
US = 1_000


def _header(name: str) -> dict[str, object]:
    for line in FIXTURE.read_text().splitlines():
        if line.startswith(f"# {name} "):
            return dict(json.loads(line.removeprefix(f"# {name} ")))
    raise AssertionError(f"fixture has no {name} line; regenerate it")


def _fixture_events() -> list[GilEvent]:
    layout = _header("layout")
    return parse_perf_script(FIXTURE.read_text().splitlines(),
                             FutexWords(int(str(layout["gil_addr"]))))


def _assert_well_formed(intervals: list[Interval], wall_s: float) -> None:
    for iv in intervals:
        assert 0.0 <= iv.start < iv.end <= wall_s + 1e-12
    for a, b in zip(intervals, intervals[1:]):
        assert a.end <= b.start
        assert not (a.end == b.start and a.state == b.state)  # adjacent equal states are merged


# -- the real recording --------------------------------------------------------------------------


def test_fixture_parses_into_every_kind_a_convoy_makes() -> None:
    events = _fixture_events()
    kinds = {e.kind for e in events}
    assert {Ev.WAIT, Ev.WAKE, Ev.HANDOFF_WAIT, Ev.HANDOFF_WAKE, Ev.SWITCH_IN, Ev.SWITCH_OUT,
            Ev.START, Ev.EXIT} <= kinds
    roles = _header("truth")["roles"]
    assert isinstance(roles, dict)
    assert {e.tid for e in events} >= {int(tid) for tid in roles}
    assert [e.t_ns for e in events] == sorted(e.t_ns for e in events)


def test_fixture_timelines_tell_spinners_from_the_sleeper() -> None:
    truth = _header("truth")
    go_ns, end_ns = int(str(truth["go_ns"])), int(str(truth["end_ns"]))
    roles = {int(tid): role for tid, role in dict(truth["roles"]).items()}  # type: ignore[call-overload]
    wall_s = (end_ns - go_ns) / 1e9
    threads = reconstruct(_fixture_events(), go_ns, end_ns)
    for thread in threads.values():
        _assert_well_formed(thread.intervals, wall_s)
    metrics = gil_metrics({tid: t.intervals for tid, t in threads.items()}, wall_s)
    figures = metrics.threads
    assert isinstance(figures, dict)
    spinners = [tid for tid, role in roles.items() if role == "spin"]
    (sleeper,) = [tid for tid, role in roles.items() if role == "sleep"]
    for tid in spinners:
        # Two spinners take turns every 5 ms: each holds for a good part of the run (the turns
        # are bracketed by the other's waits, so these holds are exact) and waits several times.
        assert figures[tid].held_s > 0.2 * wall_s
        assert sum(w.slept for w in threads[tid].waits) >= 2
    assert figures[sleeper].held_s < 0.1 * wall_s
    blocked = sum(iv.duration for iv in threads[sleeper].intervals if iv.state == BLOCKED)
    assert blocked > 0.02  # it slept 3 x 10 ms
    held = sum(t.held_s for t in figures.values())
    assert held <= wall_s
    assert float(str(metrics.switches_per_s)) > 0


# -- parsing ------------------------------------------------------------------------------------

GIL = 0x7F0000001000
WORDS = FutexWords(GIL)
COND, MUTEX, SWITCH = WORDS.cond[0], WORDS.mutex, WORDS.switch[1]


def _futex(uaddr: int, op: int) -> str:
    return (f"syscalls:sys_enter_futex: uaddr: {uaddr:#x}, op: {op:#010x}, val: 0x00000000, "
            "utime: 0x00000000, uaddr2: 0x00000000, val3: 0xffffffff")


LINES = f"""\
# a comment perf script may print
 10/11    5.000000100: {_futex(COND, 0x89)}
 10/11    5.000000200: PERF_RECORD_SWITCH OUT
 10/11    5.000000300: PERF_RECORD_SWITCH IN
 10/11    5.000000400: {_futex(COND + 4, 0x81)}
 10/11    5.000000500: {_futex(MUTEX, 0x80)}
 10/11    5.000000550: {_futex(MUTEX, 0x81)}
 10/11    5.000000600: {_futex(SWITCH, 0x89)}
 10/11    5.000000700: {_futex(SWITCH, 0x81)}
 10/11    5.000000750: {_futex(0x1234, 0x89)}
 10/11    5.000000800: syscalls:sys_exit_futex: 0xfffffffffffffff5
 10/11    5.000000850: syscalls:sys_exit_futex: 0x0
 10/11    5.000000900: PERF_RECORD_SWITCH OUT preempt
 10/10    5.000001000: PERF_RECORD_FORK(10:12):(10:10)
 10/12    5.000001100: PERF_RECORD_EXIT(10:12):(10:10)
    0/0         0.000000000: PERF_RECORD_COMM: python3.11:10/10
 10/11    5.000002: other:event: ignored
"""


def test_parse_each_line_kind() -> None:
    events = parse_perf_script(LINES.splitlines(), WORDS)
    assert [(e.t_ns, e.pid, e.tid, e.kind) for e in events] == [
        (5_000_000_100, 10, 11, Ev.WAIT),
        (5_000_000_200, 10, 11, Ev.SWITCH_OUT),
        (5_000_000_300, 10, 11, Ev.SWITCH_IN),
        (5_000_000_400, 10, 11, Ev.WAKE),
        (5_000_000_500, 10, 11, Ev.MUTEX_WAIT),  # a mutex wake says nothing: dropped
        (5_000_000_600, 10, 11, Ev.HANDOFF_WAIT),
        (5_000_000_700, 10, 11, Ev.HANDOFF_WAKE),  # a futex on a foreign word: dropped
        (5_000_000_800, 10, 11, Ev.NO_SLEEP),  # EAGAIN only; other returns dropped
        (5_000_000_900, 10, 11, Ev.PREEMPTED),
        (5_000_001_000, 10, 12, Ev.START),
        (5_000_001_100, 10, 12, Ev.EXIT),
    ]


def test_microsecond_timestamps_are_read_exactly() -> None:
    (event,) = parse_perf_script([f" 1/2  123456.654321: {_futex(COND, 0x89)}"], WORDS)
    assert event.t_ns == 123_456_654_321_000


def test_empty_recording_is_no_events() -> None:
    assert parse_perf_script([], WORDS) == []


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "<html><body>",
        " 1/2 5.0: syscalls:sys_enter_futex: \x00\x01",
        " 1/2 5.1: syscalls:sys_exit_futex:",
    ],
)
def test_garbage_raises_corrupt_recording_in_one_line(text: str) -> None:
    with pytest.raises(CorruptRecording) as info:
        parse_perf_script([text], WORDS)
    assert "\n" not in str(info.value)


def test_a_recording_of_the_old_uprobe_recorder_is_refused_by_name() -> None:
    with pytest.raises(UprobeRecording, match="uprobes"):
        parse_perf_script([" 1/2 5.0: threadscope_1_2:take_gil_1_2: (7f)"], WORDS)


# -- the rules, on hand-made events --------------------------------------------------------------


def ev(us: float, tid: int, kind: Ev, pid: int = 1) -> GilEvent:
    return GilEvent(round(us * US), pid, tid, kind)


def states(intervals: list[Interval]) -> list[tuple[float, float, str]]:
    return [(round(iv.start * 1e6, 3), round(iv.end * 1e6, 3), iv.state) for iv in intervals]


def waits(events: list[GilEvent], tid: int, end_us: float) -> list[tuple[float, float, bool]]:
    thread = reconstruct(events, 0, round(end_us * US))[tid]
    return [(w.start_ns / US, w.end_ns / US, w.slept) for w in thread.waits]


def test_a_convoy_turn_is_exact_on_both_sides() -> None:
    # 1 holds; 2 asks, sleeps, times out (5 ms), asks again; 1 is asked to drop: it wakes the
    # waiters and sleeps for the hand-off; 2 takes the GIL and wakes 1.
    events = [
        ev(0, 1, Ev.SWITCH_IN), ev(0, 2, Ev.SWITCH_IN),
        ev(100, 2, Ev.WAIT), ev(101, 2, Ev.SWITCH_OUT),
        ev(5100, 2, Ev.SWITCH_IN), ev(5105, 2, Ev.WAIT), ev(5106, 2, Ev.SWITCH_OUT),
        ev(5200, 1, Ev.WAKE), ev(5201, 1, Ev.HANDOFF_WAIT), ev(5202, 1, Ev.SWITCH_OUT),
        ev(5230, 2, Ev.SWITCH_IN), ev(5240, 2, Ev.HANDOFF_WAKE),
        ev(5250, 1, Ev.SWITCH_IN), ev(5260, 1, Ev.WAIT), ev(5261, 1, Ev.SWITCH_OUT),
        ev(9000, 2, Ev.WAKE),
    ]
    assert waits(events, 2, 10_000) == [(100, 5240, True)]
    assert states(gil_timelines(events, 0, 10_000 * US)[2]) == [
        (0, 100, ON_CPU),  # before its first request: on a CPU, GIL unknown
        (100, 5240, GIL_WAIT),
        (5240, 9000, RUNNING),  # from taking it to releasing it to the next waiter
        (9000, 10_000, ON_CPU),
    ]
    assert states(gil_timelines(events, 0, 10_000 * US)[1])[-3:] == [
        (5202, 5250, BLOCKED),  # released; asleep until the hand-off is done
        (5250, 5260, ON_CPU),
        (5260, 10_000, GIL_WAIT),  # its own wait has not ended when the record does
    ]


def waiter(from_us: float, to_us: float, tid: int = 9) -> list[GilEvent]:
    """Another thread that waits for the GIL from ``from_us`` to ``to_us``, then releases it."""
    return [ev(from_us, tid, Ev.SWITCH_IN), ev(from_us, tid, Ev.WAIT),
            ev(from_us + 0.5, tid, Ev.SWITCH_OUT), ev(to_us, tid, Ev.SWITCH_IN),
            ev(to_us + 1, tid, Ev.WAKE)]


def test_a_woken_waiter_that_releases_held_the_gil_since_it_woke() -> None:
    events = [ev(0, 3, Ev.SWITCH_IN), ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT),
              ev(500, 3, Ev.SWITCH_IN), ev(800, 3, Ev.WAKE), ev(900, 3, Ev.SWITCH_OUT),
              *waiter(490, 805)]  # another thread asked for the GIL meanwhile
    assert waits(events, 3, 1000) == [(10, 500, True)]
    assert states(gil_timelines(events, 0, 1000 * US)[3]) == [
        (0, 10, ON_CPU), (10, 500, GIL_WAIT), (500, 800, RUNNING), (800, 900, ON_CPU),
        (900, 1000, BLOCKED),
    ]


def test_waking_to_find_the_gil_taken_again_is_one_wait() -> None:
    events = [ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT), ev(500, 3, Ev.SWITCH_IN),
              ev(503, 3, Ev.WAIT), ev(504, 3, Ev.SWITCH_OUT), ev(900, 3, Ev.SWITCH_IN),
              ev(950, 3, Ev.WAKE)]
    assert waits(events, 3, 1000) == [(10, 900, True)]


def test_a_waiter_awake_longer_than_the_wait_loop_held_the_gil_in_between() -> None:
    gap_us = WAIT_LOOP_BOUND_NS / US + 10
    events = [ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT), ev(500, 3, Ev.SWITCH_IN),
              ev(500 + gap_us, 3, Ev.WAIT), ev(501 + gap_us, 3, Ev.SWITCH_OUT),
              ev(2000, 3, Ev.SWITCH_IN), ev(2100, 3, Ev.WAKE)]
    assert waits(events, 3, 3000) == [(10, 500, True), (500 + gap_us, 2000, True)]


def test_time_off_the_cpu_does_not_count_as_awake() -> None:
    # Woken, preempted for a long time, back, waits again: CPU time awake was short: one wait.
    events = [ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT), ev(500, 3, Ev.SWITCH_IN),
              ev(502, 3, Ev.PREEMPTED), ev(4000, 3, Ev.SWITCH_IN), ev(4003, 3, Ev.WAIT),
              ev(4004, 3, Ev.SWITCH_OUT), ev(6000, 3, Ev.SWITCH_IN), ev(6100, 3, Ev.WAKE)]
    assert waits(events, 3, 7000) == [(10, 6000, True)]


def test_a_wait_that_never_slept_is_kept_but_not_counted_as_blocking() -> None:
    events = [ev(0, 4, Ev.SWITCH_IN), ev(10, 4, Ev.WAIT), ev(12, 4, Ev.NO_SLEEP),
              ev(300, 4, Ev.SWITCH_OUT)]
    assert waits(events, 4, 1000) == [(10, 12, False)]
    assert states(gil_timelines(events, 0, 1000 * US)[4]) == [
        (0, 10, ON_CPU), (10, 12, GIL_WAIT), (12, 300, ON_CPU), (300, 1000, BLOCKED)]


def test_blocking_elsewhere_after_waking_ends_the_wait_at_the_wake_up() -> None:
    # It got the GIL when it woke, ran, released it while nobody waited (no event), then slept
    # in something else (a recv): the wait ended at the wake-up; the hold's end is unknown.
    events = [ev(10, 5, Ev.WAIT), ev(11, 5, Ev.SWITCH_OUT), ev(400, 5, Ev.SWITCH_IN),
              ev(700, 5, Ev.SWITCH_OUT)]
    assert waits(events, 5, 1000) == [(10, 400, True)]
    assert states(gil_timelines(events, 0, 1000 * US)[5]) == [
        (10, 400, GIL_WAIT), (400, 700, ON_CPU), (700, 1000, BLOCKED)]


def test_sleeping_on_the_gil_mutex_inside_a_wait_is_part_of_it() -> None:
    events = [ev(10, 5, Ev.WAIT), ev(11, 5, Ev.SWITCH_OUT), ev(400, 5, Ev.SWITCH_IN),
              ev(402, 5, Ev.MUTEX_WAIT), ev(403, 5, Ev.SWITCH_OUT), ev(450, 5, Ev.SWITCH_IN),
              ev(600, 5, Ev.WAKE), *waiter(440, 610)]
    assert waits(events, 5, 1000) == [(10, 450, True)]
    assert states(gil_timelines(events, 0, 1000 * US)[5])[:2] == [
        (10, 450, GIL_WAIT), (450, 600, RUNNING)]


def test_a_preempted_waiter_still_waits_and_a_confirmed_holder_still_holds() -> None:
    events = [ev(10, 6, Ev.WAIT), ev(11, 6, Ev.PREEMPTED), ev(50, 6, Ev.SWITCH_IN),
              ev(51, 6, Ev.SWITCH_OUT), ev(100, 6, Ev.SWITCH_IN), ev(120, 6, Ev.PREEMPTED),
              ev(300, 6, Ev.SWITCH_IN), ev(400, 6, Ev.WAKE), ev(450, 6, Ev.PREEMPTED),
              *waiter(90, 410)]
    assert states(gil_timelines(events, 0, 500 * US)[6]) == [
        (10, 100, GIL_WAIT), (100, 400, RUNNING), (400, 450, ON_CPU), (450, 500, CPU_WAIT)]


def test_a_silent_hold_taken_with_a_hand_off_is_unknown_until_released() -> None:
    # HANDOFF_WAKE outside a wait: it took the free GIL and told the old holder. Released with
    # waiters (WAKE): running. Another one that ends by blocking: unknown (on_cpu).
    events = [ev(0, 7, Ev.SWITCH_IN), ev(10, 7, Ev.HANDOFF_WAKE), ev(90, 7, Ev.WAKE),
              ev(100, 7, Ev.HANDOFF_WAKE), ev(150, 7, Ev.SWITCH_OUT), *waiter(5, 95)]
    assert states(gil_timelines(events, 0, 200 * US)[7]) == [
        (0, 10, ON_CPU), (10, 90, RUNNING), (90, 150, ON_CPU), (150, 200, BLOCKED)]


def test_a_hold_is_proven_only_while_others_want_the_gil() -> None:
    # It took the GIL at 500 and released it to a waiter at 90,000: but only in [500, 2,000]
    # and [60,000, 90,000] did others wait, i.e. could it not have released it silently. In the
    # middle it may have run native code (a hash of a big buffer, say): unknown, left on_cpu.
    events = [ev(0, 3, Ev.SWITCH_IN), ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT),
              ev(500, 3, Ev.SWITCH_IN), ev(90_000, 3, Ev.WAKE),
              *waiter(400, 2000, tid=8), *waiter(60_000, 90_010)]
    assert states(gil_timelines(events, 0, 100_000 * US)[3])[2:5] == [
        (500, 2000, RUNNING), (2000, 60_000, ON_CPU), (60_000, 90_000, RUNNING)]


def test_a_hold_is_not_proven_across_another_threads_release() -> None:
    # Before another thread's release at 50,000 the GIL was that thread's, not this one's.
    events = [ev(0, 3, Ev.SWITCH_IN), ev(10, 3, Ev.WAIT), ev(11, 3, Ev.SWITCH_OUT),
              ev(500, 3, Ev.SWITCH_IN), ev(90_000, 3, Ev.WAKE),
              *waiter(40_000, 90_010), ev(50_000, 8, Ev.SWITCH_IN), ev(50_000, 8, Ev.WAKE)]
    assert states(gil_timelines(events, 0, 100_000 * US)[3])[2:4] == [
        (500, 50_000, ON_CPU), (50_000, 90_000, RUNNING)]


def test_exit_ends_the_thread_and_its_wait() -> None:
    events = [ev(1, 4, Ev.START), ev(2, 4, Ev.SWITCH_IN), ev(3, 4, Ev.WAIT),
              ev(4, 4, Ev.SWITCH_OUT), ev(6, 4, Ev.EXIT), ev(8, 4, Ev.SWITCH_IN)]
    assert states(gil_timelines(events, 0, 10 * US)[4]) == [(2, 3, ON_CPU), (3, 6, GIL_WAIT)]
    assert waits(events, 4, 10) == [(3, 6, True)]


def test_events_outside_the_window_are_clipped() -> None:
    events = [ev(1, 2, Ev.WAIT), ev(2, 2, Ev.SWITCH_OUT), ev(5, 2, Ev.SWITCH_IN),
              ev(9, 2, Ev.WAKE), *waiter(4, 10)]
    timeline = gil_timelines(events, 3 * US, 7 * US)[2]
    assert states(timeline) == [(0, 2, GIL_WAIT), (2, 4, RUNNING)]


def test_pid_filter_and_bad_window() -> None:
    events = [ev(1, 2, Ev.SWITCH_IN, pid=1), ev(1, 9, Ev.SWITCH_IN, pid=8)]
    assert set(gil_timelines(events, 0, 2 * US, pid=8)) == {9}
    with pytest.raises(ValueError):
        gil_timelines(events, 5, 4)


def test_metrics_two_threads_taking_turns() -> None:
    a = [Interval(0.0, 0.1, RUNNING), Interval(0.1, 0.2, GIL_WAIT), Interval(0.2, 0.3, RUNNING)]
    b = [Interval(0.0, 0.1, GIL_WAIT), Interval(0.1, 0.2, RUNNING), Interval(0.2, 0.25, GIL_WAIT)]
    metrics = gil_metrics({1: a, 2: b}, wall_s=0.4)
    assert metrics.utilisation == pytest.approx(0.75)
    assert metrics.mean_waiters == pytest.approx(0.25 / 0.4)
    assert metrics.switches_per_s == pytest.approx(2 / 0.4)
    threads = metrics.threads
    assert isinstance(threads, dict)
    first = threads[1]
    assert (first.held_s, first.wait_s, first.waits, first.max_wait_s) == (
        pytest.approx(0.2), pytest.approx(0.1), 1, pytest.approx(0.1))
    assert threads[2].waits == 2
    with pytest.raises(ValueError):
        gil_metrics({}, 0.0)


# -- properties ---------------------------------------------------------------------------------

RANDOM_EVENT = st.builds(
    GilEvent,
    t_ns=st.integers(0, 100 * MS),
    pid=st.just(1),
    tid=st.integers(1, 4),
    kind=st.sampled_from(list(Ev)),
)


@settings(max_examples=400, deadline=None)
@given(events=st.lists(RANDOM_EVENT, max_size=80), t0=st.integers(0, 50 * MS))
def test_any_events_give_well_formed_states_and_waits(events: list[GilEvent], t0: int) -> None:
    end = t0 + 40 * MS
    for thread in reconstruct(events, t0, end).values():
        _assert_well_formed(thread.intervals, (end - t0) / 1e9)
        starts = [w.start_ns for w in thread.waits]
        assert starts == sorted(starts)
        for a, b in zip(thread.waits, thread.waits[1:]):
            assert a.end_ns <= b.start_ns  # one wait at a time
        for wait in thread.waits:
            assert wait.start_ns <= wait.end_ns and wait.end_ns > t0 and wait.start_ns < end


@st.composite
def convoys(draw: st.DrawFn) -> list[GilEvent]:
    """A GIL that really is exclusive: in turn, one thread takes it from the waiters and releases
    it to them, as the futex events of a convoy show it."""
    events: list[GilEvent] = []
    t = 0
    holder = 1
    for tid in range(1, 5):
        events.append(GilEvent(t, 1, tid, Ev.SWITCH_IN))
    for turn in range(draw(st.integers(0, 20))):
        t += draw(st.integers(1, 5 * MS))
        nxt = draw(st.integers(1, 4).filter(lambda x, h=holder: x != h))  # type: ignore[misc]
        events += [GilEvent(t, 1, holder, Ev.WAKE), GilEvent(t + 1, 1, holder, Ev.HANDOFF_WAIT),
                   GilEvent(t + 2, 1, holder, Ev.SWITCH_OUT),
                   GilEvent(t + 10, 1, nxt, Ev.SWITCH_IN),
                   GilEvent(t + 20, 1, nxt, Ev.HANDOFF_WAKE),
                   GilEvent(t + 30, 1, holder, Ev.SWITCH_IN),
                   GilEvent(t + 40, 1, holder, Ev.WAIT),
                   GilEvent(t + 41, 1, holder, Ev.SWITCH_OUT)]
        if turn == 0:  # the others ask for the GIL once, then wait their turn
            for tid in range(1, 5):
                if tid not in (holder, nxt):
                    events += [GilEvent(t + 3, 1, tid, Ev.WAIT),
                               GilEvent(t + 4, 1, tid, Ev.SWITCH_OUT)]
        holder = nxt
        t += 50
    return events


@settings(max_examples=300, deadline=None)
@given(events=convoys(), t0=st.integers(0, 20 * MS), span=st.integers(1, 150 * MS))
def test_held_time_never_exceeds_wall_time(events: list[GilEvent], t0: int, span: int) -> None:
    wall_s = span / 1e9
    timelines = gil_timelines(events, t0, t0 + span)
    metrics = gil_metrics(timelines, wall_s)
    threads = metrics.threads
    assert isinstance(threads, dict)
    held = sum(t.held_s for t in threads.values())
    assert held <= wall_s * (1 + 1e-9)
    assert 0.0 <= float(str(metrics.utilisation)) <= 1 + 1e-9


# -- the fast line reader agrees with the regular expressions ------------------------------------


def _slow(lines: list[str], words: FutexWords) -> list[GilEvent]:
    classify = FutexClassifier(words)
    parsed = (_parse_line(line, classify, n) for n, line in enumerate(lines, start=1))
    return [event for event in parsed if event is not None]


def test_fast_reading_equals_the_regular_expressions_on_a_real_recording() -> None:
    lines = FIXTURE.read_text().splitlines()
    words = FutexWords(int(str(_header("layout")["gil_addr"])))
    assert parse_perf_script(lines, words) == _slow(lines, words)
    assert parse_perf_script(LINES.splitlines(), WORDS) == _slow(LINES.splitlines(), WORDS)


_PAYLOADS = st.sampled_from([
    "PERF_RECORD_SWITCH IN", "PERF_RECORD_SWITCH OUT", "PERF_RECORD_SWITCH OUT preempt",
    "PERF_RECORD_SWITCH", "PERF_RECORD_SWITCH SIDEWAYS", "PERF_RECORD_SWITCH_CPU_WIDE OUT",
    "PERF_RECORD_FORK(1:3):(1:2)", "PERF_RECORD_EXIT(1:3):(1:2)", "PERF_RECORD_COMM: py:1/2",
    "syscalls:sys_exit_futex: 0xfffffffffffffff5", "syscalls:sys_exit_futex: 0x0",
    "syscalls:sys_exit_futex: 0x1 extra", "other:event: ignored",
])


@settings(max_examples=300, deadline=None)
@given(st.integers(-1, 99_999), st.integers(-1, 99_999), st.integers(0, 10**6),
       st.sampled_from([3, 6, 9]), st.integers(0, 999_999_999),
       st.one_of(_PAYLOADS, st.builds(lambda word, op: _futex(word, op),
                                      st.sampled_from([COND, MUTEX, SWITCH, 0x1234]),
                                      st.sampled_from([0x0, 0x1, 0x9, 0x80, 0x81, 0x89, 0x8a]))),
       st.sampled_from(["", "   ", "\t"]))
def test_fast_reading_equals_the_regular_expressions_line_by_line(
        pid: int, tid: int, sec: int, digits: int, frac: int, payload: str, pad: str) -> None:
    line = f"{pad}{pid:>5}/{tid:<5} {sec:>8}.{frac % 10**digits:0{digits}d}: {payload}{pad}"
    assert parse_perf_script([line], WORDS) == _slow([line], WORDS)
