"""The perf GIL parser and timelines, on a real recording and on tiny hand-made event lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.errors import CorruptRecording
from tracer.model.gil_exact import GilEvent, gil_metrics, gil_timelines, parse_perf_script
from tracer.model.schema import BLOCKED, GIL_WAIT, NATIVE, RUNNING, Interval

FIXTURE = Path(__file__).parents[1] / "fixtures" / "perf_gil_small.txt"
MS = 1_000_000  # ns


def _truth() -> dict[str, object]:
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("# truth "):
            return dict(json.loads(line.removeprefix("# truth ")))
    raise AssertionError("fixture has no truth line; regenerate it")


def _assert_well_formed(intervals: list[Interval], wall_s: float) -> None:
    for iv in intervals:
        assert 0.0 <= iv.start < iv.end <= wall_s + 1e-12
    for a, b in zip(intervals, intervals[1:]):
        assert a.end <= b.start
        assert not (a.end == b.start and a.state == b.state)  # adjacent equal states are merged


# -- the real recording --------------------------------------------------------------------------


def test_fixture_parses_into_every_kind() -> None:
    events = parse_perf_script(FIXTURE.read_text())
    kinds = {e.kind for e in events}
    assert {"take", "taken", "drop", "switch_out", "switch_in", "start", "exit"} <= kinds
    roles = _truth()["roles"]
    assert isinstance(roles, dict)
    assert {e.tid for e in events} >= {int(tid) for tid in roles}
    assert [e.t_ns for e in events] == sorted(e.t_ns for e in events)
    assert all(e.prev_state for e in events if e.kind == "switch_out")


def test_fixture_timelines_tell_spinners_from_the_sleeper() -> None:
    truth = _truth()
    go_ns, end_ns = int(str(truth["go_ns"])), int(str(truth["end_ns"]))
    roles = {int(tid): role for tid, role in dict(truth["roles"]).items()}  # type: ignore[call-overload]
    wall_s = (end_ns - go_ns) / 1e9
    timelines = gil_timelines(parse_perf_script(FIXTURE.read_text()), go_ns, end_ns)
    for intervals in timelines.values():
        _assert_well_formed(intervals, wall_s)
    metrics = gil_metrics(timelines, wall_s)
    threads = metrics["threads"]
    assert isinstance(threads, dict)
    spinners = [tid for tid, role in roles.items() if role == "spin"]
    (sleeper,) = [tid for tid, role in roles.items() if role == "sleep"]
    for tid in spinners:
        assert threads[tid]["gil_held_s"] > 0.2 * wall_s
        assert threads[tid]["gil_waits"] >= 2
    assert threads[sleeper]["gil_held_s"] < 0.1 * wall_s
    blocked = sum(iv.duration for iv in timelines[sleeper] if iv.state == BLOCKED)
    assert blocked > 0.02  # it slept 3 x 10 ms
    held = sum(float(t["gil_held_s"]) for t in threads.values())
    assert held <= wall_s
    assert 0.5 < float(str(metrics["gil_utilisation"])) <= 1.0
    assert float(str(metrics["gil_switches_per_s"])) > 0


# -- parsing ------------------------------------------------------------------------------------

LINES = """\
# a comment perf script may print
 10/11    5.000000100:         g_1:take_gil: (7f)
 10/11    5.000000200: g_1:take_gil__return: (7f <- 7e)
 10/11    5.000000300:         g_1:drop_gil: (7f)
 10/11    5.000000400:     sched:sched_switch: prev_comm=a b prev_pid=11 prev_prio=120 \
prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
 10/11    5.000000500: PERF_RECORD_SWITCH OUT
 10/11    5.000000600: PERF_RECORD_SWITCH IN
 10/10    5.000000700: PERF_RECORD_FORK(10:12):(10:10)
 10/12    5.000000800: PERF_RECORD_EXIT(10:12):(10:10)
    0/0         0.000000000: PERF_RECORD_COMM: python3.11:10/10
 10/11    5.000001: other:event: ignored
"""


def test_parse_each_line_kind() -> None:
    events = parse_perf_script(LINES)
    assert events == [
        GilEvent(5_000_000_100, 10, 11, "take"),
        GilEvent(5_000_000_200, 10, 11, "taken"),
        GilEvent(5_000_000_300, 10, 11, "drop"),
        GilEvent(5_000_000_400, 10, 11, "switch_out", "S"),
        GilEvent(5_000_000_600, 10, 11, "switch_in"),
        GilEvent(5_000_000_700, 10, 12, "start"),
        GilEvent(5_000_000_800, 10, 12, "exit"),
    ]


def test_microsecond_timestamps_are_read_exactly() -> None:
    (event,) = parse_perf_script(" 1/2  123456.654321: g:drop_gil: (7f)\n")
    assert event.t_ns == 123_456_654_321_000


def test_empty_recording_is_no_events() -> None:
    assert parse_perf_script("") == []


@pytest.mark.parametrize(
    "text",
    [
        "hello world\n",
        "<html><body>",
        " 1/2 5.0: g:take_gil\n\x00\x01",
        " 1/2 5.1: sched:sched_switch: x",
    ],
)
def test_garbage_raises_corrupt_recording_in_one_line(text: str) -> None:
    with pytest.raises(CorruptRecording) as info:
        parse_perf_script(text)
    assert "\n" not in str(info.value)


# -- timelines from hand-made events -------------------------------------------------------------


def ev(ms: float, tid: int, kind: str, prev_state: str | None = None, pid: int = 1) -> GilEvent:
    return GilEvent(round(ms * MS), pid, tid, kind, prev_state)


def states(intervals: list[Interval]) -> list[tuple[float, float, str]]:
    return [(round(iv.start * 1e3, 6), round(iv.end * 1e3, 6), iv.state) for iv in intervals]


def test_take_taken_drop_and_switches() -> None:
    events = [
        ev(1, 7, "switch_in"),
        ev(2, 7, "take"),
        ev(3, 7, "taken"),
        ev(5, 7, "drop"),
        ev(6, 7, "switch_out", "S"),
        ev(8, 7, "switch_in"),
        ev(9, 7, "take"),
        ev(9.5, 7, "switch_out", "S"),  # asleep on the GIL's condition: still gil_wait
        ev(10, 7, "taken"),
    ]
    assert states(gil_timelines(events, 0, 12 * MS)[7]) == [
        (1, 2, NATIVE),
        (2, 3, GIL_WAIT),
        (3, 5, RUNNING),
        (5, 6, NATIVE),
        (6, 8, BLOCKED),
        (8, 9, NATIVE),
        (9, 10, GIL_WAIT),
        (10, 12, RUNNING),  # open at the end: closed at end_ns
    ]


def test_holding_at_attach_runs_from_t0() -> None:
    events = [ev(4, 3, "drop"), ev(5, 3, "switch_out", "S")]
    assert states(gil_timelines(events, 0, 6 * MS)[3]) == [
        (0, 4, RUNNING),
        (4, 5, NATIVE),
        (5, 6, BLOCKED),
    ]


def test_waiting_at_attach_waits_from_t0() -> None:
    events = [ev(2, 3, "switch_in"), ev(4, 3, "taken")]
    assert states(gil_timelines(events, 0, 5 * MS)[3]) == [(0, 4, GIL_WAIT), (4, 5, RUNNING)]


def test_before_a_first_take_nothing_is_known() -> None:
    events = [ev(2, 3, "take"), ev(3, 3, "taken")]
    assert states(gil_timelines(events, 0, 4 * MS)[3]) == [(2, 3, GIL_WAIT), (3, 4, RUNNING)]


def test_exit_ends_the_thread_and_start_does_not_begin_it() -> None:
    events = [ev(1, 4, "start"), ev(2, 4, "switch_in"), ev(3, 4, "take"), ev(4, 4, "taken")]
    events += [ev(5, 4, "drop"), ev(6, 4, "exit")]
    assert states(gil_timelines(events, 0, 10 * MS)[4]) == [
        (2, 3, NATIVE),
        (3, 4, GIL_WAIT),
        (4, 5, RUNNING),
        (5, 6, NATIVE),
    ]


def test_nested_and_unmatched_events() -> None:
    events = [
        ev(1, 5, "take"),
        ev(2, 5, "take"),  # nested/missed return: still one wait
        ev(3, 5, "taken"),
        ev(4, 5, "taken"),  # outer return of the nested call: still holding
        ev(5, 5, "take"),  # a drop was missed: the hold ends here
        ev(6, 5, "drop"),  # take then drop, no return (thread exiting at finalisation)
        ev(7, 5, "drop"),  # drop while free: nothing changes
    ]
    assert states(gil_timelines(events, 0, 8 * MS)[5]) == [
        (1, 3, GIL_WAIT),
        (3, 5, RUNNING),
        (5, 6, GIL_WAIT),
        (6, 8, NATIVE),
    ]


def test_events_outside_the_window_are_clipped() -> None:
    events = [ev(1, 2, "taken"), ev(3, 2, "drop"), ev(5, 2, "take"), ev(9, 2, "taken")]
    timeline = gil_timelines(events, 2 * MS, 7 * MS)[2]
    assert states(timeline) == [(0, 1, RUNNING), (1, 3, NATIVE), (3, 5, GIL_WAIT)]


def test_pid_filter_and_bad_window() -> None:
    events = [ev(1, 2, "take", pid=1), ev(1, 9, "take", pid=8)]
    assert set(gil_timelines(events, 0, 2 * MS, pid=8)) == {9}
    with pytest.raises(ValueError):
        gil_timelines(events, 5, 4)


def test_metrics_two_threads_taking_turns() -> None:
    a = [Interval(0.0, 0.1, RUNNING), Interval(0.1, 0.2, GIL_WAIT), Interval(0.2, 0.3, RUNNING)]
    b = [Interval(0.0, 0.1, GIL_WAIT), Interval(0.1, 0.2, RUNNING), Interval(0.2, 0.25, GIL_WAIT)]
    metrics = gil_metrics({1: a, 2: b}, wall_s=0.4)
    assert metrics["gil_utilisation"] == pytest.approx(0.75)
    assert metrics["mean_gil_waiters"] == pytest.approx(0.25 / 0.4)
    assert metrics["gil_switches_per_s"] == pytest.approx(2 / 0.4)
    threads = metrics["threads"]
    assert isinstance(threads, dict)
    assert threads[1] == {
        "gil_held_s": pytest.approx(0.2),
        "gil_wait_s": pytest.approx(0.1),
        "gil_waits": 1,
        "max_gil_wait_s": pytest.approx(0.1),
    }
    assert threads[2]["gil_waits"] == 2
    assert threads[2]["max_gil_wait_s"] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        gil_metrics({}, 0.0)


# -- properties ---------------------------------------------------------------------------------

KIND = st.sampled_from(["take", "taken", "drop", "switch_out", "switch_in", "start", "exit"])
RANDOM_EVENT = st.builds(
    GilEvent,
    t_ns=st.integers(0, 100 * MS),
    pid=st.just(1),
    tid=st.integers(1, 4),
    kind=KIND,
    prev_state=st.sampled_from(["R", "S", "D"]),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(RANDOM_EVENT, max_size=60), t0=st.integers(0, 50 * MS))
def test_any_events_give_sorted_non_overlapping_intervals(events: list[GilEvent], t0: int) -> None:
    end = t0 + 40 * MS
    for intervals in gil_timelines(events, t0, end).values():
        _assert_well_formed(intervals, (end - t0) / 1e9)


@st.composite
def gil_schedules(draw: st.DrawFn) -> list[GilEvent]:
    """A GIL that really is exclusive: each hold is a taken..drop by one thread, holds in turn."""
    events: list[GilEvent] = []
    t = draw(st.integers(0, 5 * MS))
    for _ in range(draw(st.integers(0, 25))):
        tid = draw(st.integers(1, 4))
        wait = draw(st.integers(0, 3 * MS))
        events.append(GilEvent(max(0, t - wait), 1, tid, "take"))
        t += draw(st.integers(0, MS))
        events.append(GilEvent(t, 1, tid, "taken"))
        t += draw(st.integers(1, 5 * MS))
        events.append(GilEvent(t, 1, tid, "drop"))
        if draw(st.booleans()):
            events.append(GilEvent(t + draw(st.integers(0, MS)), 1, tid, "switch_out", "S"))
    return events


@settings(max_examples=300, deadline=None)
@given(events=gil_schedules(), t0=st.integers(0, 20 * MS), span=st.integers(1, 150 * MS))
def test_held_time_never_exceeds_wall_time(events: list[GilEvent], t0: int, span: int) -> None:
    wall_s = span / 1e9
    timelines = gil_timelines(events, t0, t0 + span)
    metrics = gil_metrics(timelines, wall_s)
    threads = metrics["threads"]
    assert isinstance(threads, dict)
    held = sum(float(t["gil_held_s"]) for t in threads.values())
    assert held <= wall_s * (1 + 1e-9)
    assert 0.0 <= float(str(metrics["gil_utilisation"])) <= 1 + 1e-9
