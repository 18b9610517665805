"""Contention and waiting for a signal kept apart: a thread that sleeps in ``Event.wait(0.05)``
is not "waiting for a lock", and two threads contending for one Lock are the lock headline.

The run is known by construction: ``persister`` polls an Event in 20 timed-out waits of 49 ms
(0.98 s); ``worker-a`` holds ``cache.lock`` from 0 to 300 ms while ``worker-b`` waits for it
(10-300 ms), then ``worker-b`` holds it to 500 ms while ``worker-a`` waits (310-500 ms)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from reports.perfetto import trace_events
from reports.prose import explain
from reports.summary import print_summary
from reports.threads import select_threads
from reports.view import build_view
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.build import _apply_locks
from tracer.model.locks import CONTENTION_KINDS, build_lock_model, is_contention, wait_state
from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    SIGNAL_WAIT,
    STATES,
    Interval,
    RunModel,
    StackSource,
    ThreadTimeline,
    WaitDetail,
)
from tracer.model.stacks import StackTrie
from tracer.model.where import attribute

MS = 1_000_000
T0 = 5_000 * MS
PID = 7
PERSISTER, WORKER_A, WORKER_B = 11, 21, 22
LOCK, EVENT = 1, 2


def ev(record: str, /, **fields: Any) -> dict[str, Any]:
    return {"ev": record, "pid": PID, **fields}


def raw_events() -> list[dict[str, Any]]:
    events = [
        ev("start", format=1, t=T0, python="3.12.3", long_hold_ns=MS),
        ev("lock", id=LOCK, kind="lock", site="app.py:3", func="<module>", made_by=None,
           name="cache.lock"),
        ev("lock", id=EVENT, kind="event", site="app.py:4", func="<module>", made_by=None,
           name="stop"),
    ]
    for k in range(20):  # Event.wait(0.05) twenty times, each timing out: a poll, not a lock
        t0, t1 = T0 + k * 50 * MS, T0 + (k * 50 + 49) * MS  # 1 ms between: the loop's own
        events += [ev("wait", id=EVENT, kind="event", tid=PERSISTER, t=t0, holder=None),
                   ev("wait_end", id=EVENT, kind="event", tid=PERSISTER, t0=t0, t=t1, ok=False)]
    events += [
        ev("wait", id=LOCK, kind="lock", tid=WORKER_B, t=T0 + 10 * MS, holder=WORKER_A),
        ev("release", id=LOCK, kind="lock", tid=WORKER_A, t_acq=T0, t=T0 + 300 * MS),
        ev("wait_end", id=LOCK, kind="lock", tid=WORKER_B, t0=T0 + 10 * MS, t=T0 + 300 * MS,
           ok=True),
        ev("wait", id=LOCK, kind="lock", tid=WORKER_A, t=T0 + 310 * MS, holder=WORKER_B),
        ev("release", id=LOCK, kind="lock", tid=WORKER_B, t_acq=T0 + 300 * MS, t=T0 + 500 * MS),
        ev("wait_end", id=LOCK, kind="lock", tid=WORKER_A, t0=T0 + 310 * MS, t=T0 + 500 * MS,
           ok=True),
        ev("stats", id=LOCK, n=2, contended=2, hold_ns=500 * MS, hold_max_ns=300 * MS,
           instances=1),
        ev("stats", id=EVENT, n=20, contended=20, hold_ns=0, hold_max_ns=0, instances=1),
    ]
    return events


def threads() -> list[ThreadTimeline]:
    """Each thread blocked for its whole life, as the OS saw it: the lock model refines that."""
    return [ThreadTimeline(tid=tid, pid=PID, name=name, start_s=0.0, end_s=1.0, cpu_s=0.0,
                           intervals=[Interval(0.0, 1.0, BLOCKED)])
            for tid, name in ((PERSISTER, "persister"), (WORKER_A, "worker-a"),
                              (WORKER_B, "worker-b"))]


def built() -> tuple[list[ThreadTimeline], Any]:
    lock_model = build_lock_model(raw_events(), T0, T0 + 1_000 * MS)
    timelines = threads()
    _apply_locks(timelines, lock_model, PID)
    return timelines, lock_model


def run_model() -> RunModel:
    """The synthetic run's frame around these three threads and their locks."""
    timelines, lock_model = built()
    model = build_synthetic_model()
    model.threads, model.locks = timelines, lock_model.locks
    model.figure_sources = {"locks": model.figure_sources.get("locks", "instrumented")}
    found = attribute(timelines, {}, StackTrie(), StackSource.NONE, None)
    model.where, model.gil_blame, model.lock_blame = None, [], found.lock_blame
    return model


# ------------------------------------------------------------------------------------------------
# The model


def test_every_kind_is_contention_or_a_signal() -> None:
    assert set(CONTENTION_KINDS) == {"lock", "rlock", "semaphore"}
    for kind in ("lock", "rlock", "semaphore"):
        assert is_contention(kind) and wait_state(kind) == LOCK_WAIT
    for kind in ("condition", "event", "barrier", "queue_get", "queue_put"):
        assert not is_contention(kind) and wait_state(kind) == SIGNAL_WAIT
    assert STATES.index(SIGNAL_WAIT) == STATES.index(LOCK_WAIT) + 1


def test_event_waits_are_signal_waits_and_lock_waits_are_contention() -> None:
    timelines, _ = built()
    persister, worker_a, worker_b = timelines
    waits = [i for i in persister.intervals if i.state != BLOCKED]
    assert len(waits) == 20 and {i.state for i in waits} == {SIGNAL_WAIT}
    assert all(isinstance(i.detail, WaitDetail) and i.detail.kind == "event" for i in waits)
    assert persister.signal_wait_s == pytest.approx(0.98) and persister.lock_wait_s == 0.0
    assert worker_b.lock_wait_s == pytest.approx(0.29) and worker_b.signal_wait_s == 0.0
    assert worker_a.lock_wait_s == pytest.approx(0.19)
    assert [(i.state, round(i.start, 3), round(i.end, 3)) for i in worker_b.intervals] == [
        (BLOCKED, 0.0, 0.01), (LOCK_WAIT, 0.01, 0.3), (BLOCKED, 0.3, 1.0)]


def test_the_lock_table_ranks_contention_first() -> None:
    _, lock_model = built()
    lock, event = lock_model.locks
    assert (lock.name, lock.contention, lock.wait_s) == ("cache.lock", True, pytest.approx(0.48))
    # The Event waited twice as long, but nobody held it: it ranks below the contended lock.
    assert (event.name, event.contention, event.wait_s) == ("stop", False, pytest.approx(0.98))
    assert event.handoffs == [] and all(w.holder is None for w in event.waiters)


def test_lock_blame_covers_the_contended_lock_only() -> None:
    blame = run_model().lock_blame
    assert {b.name for b in blame} == {"cache.lock"}
    assert {(b.waiter_tid, b.holder_tid) for b in blame} == {(WORKER_B, WORKER_A),
                                                             (WORKER_A, WORKER_B)}


def test_a_model_with_signal_waits_round_trips() -> None:
    model = run_model()
    back = RunModel.from_dict(orjson.loads(model.to_json_bytes()))
    persister = back.threads[0]
    assert persister.signal_wait_s == pytest.approx(0.98)
    assert persister.intervals[0].state == SIGNAL_WAIT
    assert isinstance(persister.intervals[0].detail, WaitDetail)
    assert [row.contention for row in back.locks] == [True, False]


# ------------------------------------------------------------------------------------------------
# The reports


def test_the_explanation_heads_with_contention_and_says_the_signal_wait_apart() -> None:
    text = " ".join(explain(build_view(run_model())))
    assert ("Threads waited 0.48 s in total for locks held by other threads (16% of their "
            "time), most on cache.lock (2 contended acquisitions, 0.48 s); worker-b (tid 22) "
            "waited longest, 0.29 s, on cache.lock.") in text
    assert "persister (tid 11) waited longest" not in text
    assert ("persister (tid 11) spent 0.98 s waiting for a signal (Event.wait on stop, 0.98 s)"
            in text)
    assert "That is not lock contention" in text


def test_a_short_signal_wait_gets_no_sentence_of_its_own() -> None:
    model = run_model()
    persister = model.threads[0]
    persister.intervals = [Interval(0.0, 0.01, SIGNAL_WAIT, persister.intervals[0].detail),
                           Interval(0.01, 1.0, BLOCKED)]
    persister.state_s = {SIGNAL_WAIT: 0.01, BLOCKED: 0.99}
    text = " ".join(explain(build_view(model)))
    assert "persister (tid 11) spent" not in text  # 0.3% of the threads' time: the shares say it
    assert "waited longest, 0.29 s, on cache.lock" in text


def test_the_thread_ranking_picks_the_contended_thread_for_locks() -> None:
    model = run_model()
    selection = select_threads(model, fold_above=2, shown=2)
    reasons = {t.name: selection.why(t) for t in selection.shown}
    assert reasons.get("worker-b", "").startswith("waited longest for locks (#1)")
    assert not reasons.get("persister", "").startswith("waited longest for locks")


def test_the_summary_heads_the_lock_table_with_contention(tmp_path: Any) -> None:
    from rich.console import Console

    console = Console(record=True, width=140)
    print_summary(run_model(), tmp_path, console)
    text = console.export_text()
    locks = text.index("Locks by time threads waited for another's hold (top 1 of 1)")
    signals = text.index("Waits for a signal, not contention (top 1 of 1)")
    assert locks < text.index("cache.lock") < signals < text.index("stop ")


def test_trace_json_names_signal_waits_apart() -> None:
    events = list(trace_events(build_view(run_model())))
    signal = [e for e in events if e.get("cat") == SIGNAL_WAIT]
    contended = [e for e in events if e.get("cat") == LOCK_WAIT]
    assert len(signal) == 20 and {e["name"] for e in signal} == {"wait for a signal on stop"}
    assert all(e["args"]["call"] == "Event.wait" and "holder" not in e["args"] for e in signal)
    assert {e["name"] for e in contended} == {"wait cache.lock"}
