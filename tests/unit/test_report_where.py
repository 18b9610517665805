"""Where the time went, as the report shows it: self and inclusive time, shares per state, the
holder -> waiter tables, the culprit sentences with their numbers, the flame graph's budget, and
the page escaping every name it shows."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from reports import prose
from reports.html import render_report_html
from reports.view import build_view
from reports.where_view import ALL, FLAME_ROWS, build_where_view, top_functions
from tests.fixtures.synthetic_model import (
    HOSTILE_FILE,
    HOSTILE_FUNCTION,
    HOSTILE_LOCK,
    HOSTILE_QUALNAME,
    HOSTILE_THREAD,
    build_lock_model,
    build_synthetic_model,
)
from tracer.model.schema import (
    BLOCKED,
    GIL_WAIT,
    LOCK_WAIT,
    RUNNING,
    Frame,
    GilBlame,
    Interval,
    LockBlame,
    RunModel,
    StackSource,
    ThreadTimeline,
    Where,
    WhereRow,
)

WHERE_BLOCK = re.compile(
    r'<script type="application/json" id="threadscope-where">(.*?)</script>', re.S)

A = Frame("a", "prog.py", 1)
B = Frame("b", "prog.py", 2)
C = Frame("c", "prog.py", 3)
A_AGAIN = Frame("a", "prog.py", 9)  # a recursive call of a, on another line
CLIENT = Frame("client", "/srv/app/convoy.py", 19)
SPIN = Frame("spin", "/srv/app/convoy.py", 25)
MAIN = Frame("main", "/srv/app/convoy.py", 40)
LOOP = Frame("run_forever", "asyncio/base_events.py", 604)
WORK = Frame("work", "/srv/app/pool.py", 12)


def _named(tid: int) -> str:
    return f"thread {tid}"


def _model(threads: list[ThreadTimeline], rows: list[WhereRow], *,
           gil_blame: list[GilBlame] | None = None,
           lock_blame: list[LockBlame] | None = None) -> RunModel:
    model = build_synthetic_model()
    model.threads = threads
    model.where = Where(StackSource.PYSPY, 100.0, rows)
    model.gil_blame = gil_blame or []
    model.lock_blame = lock_blame or []
    return model


def _thread(tid: int, name: str, states: dict[str, float]) -> ThreadTimeline:
    t, intervals = 0.0, []
    for state, seconds in states.items():
        intervals.append(Interval(t, t + seconds, state))
        t += seconds
    return ThreadTimeline(tid=tid, pid=1, name=name, start_s=0.0, end_s=t, cpu_s=0.0,
                          intervals=intervals, state_s=dict(states))


def test_self_is_the_innermost_frame_and_inclusive_counts_a_stack_once() -> None:
    rows = [
        WhereRow(1, RUNNING, (A, B, C), 3.0),
        WhereRow(1, RUNNING, (A, B), 1.0),
        WhereRow(2, RUNNING, (A, B, A_AGAIN), 2.0),  # a recursive: inclusive counts it once
    ]
    functions = {row.function: row for row in top_functions(rows, _named)}
    assert {name: row.self_s for name, row in functions.items()} == {"c": 3.0, "a": 2.0,
                                                                     "b": 1.0}
    assert {name: row.inclusive_s for name, row in functions.items()} == {"a": 6.0, "b": 6.0,
                                                                          "c": 3.0}
    assert functions["c"].self_share == pytest.approx(0.5)
    assert functions["a"].inclusive_share == pytest.approx(1.0)
    assert functions["a"].threads == ("thread 1", "thread 2")
    assert functions["a"].line == 1  # the line with most of its time
    assert [row.function for row in top_functions(rows, _named)] == ["c", "a", "b"]


def test_shares_are_of_each_state_and_of_all_states() -> None:
    threads = [_thread(1, "one", {RUNNING: 3.0, BLOCKED: 1.0})]
    rows = [WhereRow(1, RUNNING, (A, C), 3.0), WhereRow(1, BLOCKED, (A, B), 1.0)]
    where = build_view(_model(threads, rows)).where
    assert where is not None
    assert where.states == [RUNNING, BLOCKED]
    running = {row.function: row for row in where.functions[RUNNING]}
    assert running["c"].self_share == pytest.approx(1.0)
    everything = {row.function: row for row in where.functions[ALL]}
    assert everything["c"].self_share == pytest.approx(0.75)
    assert everything["b"].self_share == pytest.approx(0.25)
    assert everything["a"].inclusive_s == pytest.approx(4.0)


def test_blame_rows_are_per_innermost_function_with_the_share_of_that_wait() -> None:
    threads = [_thread(11, "io-client", {GIL_WAIT: 1.2, BLOCKED: 1.0}),
               _thread(12, "cpu-spinner", {RUNNING: 2.2})]
    rows = [WhereRow(11, GIL_WAIT, (MAIN, CLIENT), 1.2), WhereRow(12, RUNNING, (MAIN, SPIN), 2.2)]
    blame = [
        GilBlame(11, (MAIN, CLIENT), 12, (MAIN, SPIN), 0.6),
        GilBlame(11, (CLIENT,), 12, (SPIN,), 0.528),  # other outer frames: the same table row
        GilBlame(11, (MAIN, CLIENT), None, (), 0.072),
    ]
    where = build_view(_model(threads, rows, gil_blame=blame)).where
    assert where is not None
    first, second = where.gil_blame.rows
    assert (first.waiter, first.waiter_frame, first.holder, first.holder_frame) == (
        "io-client (tid 11)", CLIENT, "cpu-spinner (tid 12)", SPIN)
    assert first.seconds == pytest.approx(1.128)
    assert first.share == pytest.approx(0.94)
    assert (second.holder, second.holder_tid, second.share) == (None, None, pytest.approx(0.06))
    assert where.gil_blame.total_s == pytest.approx(1.2)


def test_the_culprit_sentence_names_waiter_holder_code_and_numbers() -> None:
    threads = [_thread(11, "io-client", {GIL_WAIT: 1.2, BLOCKED: 1.0}),
               _thread(12, "cpu-spinner", {RUNNING: 2.2})]
    rows = [WhereRow(11, GIL_WAIT, (MAIN, CLIENT), 1.2), WhereRow(12, RUNNING, (MAIN, SPIN), 2.2)]
    blame = [GilBlame(11, (MAIN, CLIENT), 12, (MAIN, SPIN), 1.128),
             GilBlame(11, (MAIN, CLIENT), None, (), 0.072)]
    view = build_view(_model(threads, rows, gil_blame=blame))
    assert view.where is not None
    sentences = [prose.culprit_sentence(c) for c in view.where.culprits]
    assert sentences == [
        "The code that held the GIL longest was spin() (convoy.py:25): 2.200 s, 100% of all the "
        "time running Python while holding the GIL, on cpu-spinner (tid 12).",
        "io-client (tid 11) waited 1.200 s for the GIL in client() (convoy.py:19); 94% of that "
        "time cpu-spinner (tid 12) held it, in spin() (convoy.py:25).",
    ]
    explanation = " ".join(prose.explain(view))
    assert sentences[1] in explanation


def test_an_event_loop_waiting_for_executor_threads_is_said_with_its_share() -> None:
    threads = [_thread(1, "MainThread", {GIL_WAIT: 5.4, RUNNING: 2.0, BLOCKED: 2.6}),
               _thread(5, "ThreadPoolExecutor-0_0", {RUNNING: 6.0}),
               _thread(6, "ThreadPoolExecutor-0_1", {RUNNING: 4.0})]
    rows = [WhereRow(1, GIL_WAIT, (LOOP,), 5.4), WhereRow(1, RUNNING, (LOOP,), 2.0),
            WhereRow(1, BLOCKED, (LOOP,), 2.6), WhereRow(5, RUNNING, (WORK,), 6.0),
            WhereRow(6, RUNNING, (WORK,), 4.0)]
    blame = [GilBlame(1, (LOOP,), 5, (WORK,), 3.0), GilBlame(1, (LOOP,), 6, (WORK,), 2.4)]
    view = build_view(_model(threads, rows, gil_blame=blame))
    assert view.where is not None and view.where.gil_waiter is not None
    assert prose.gil_waiter_sentence(view.where.gil_waiter) == (
        "MainThread (tid 1) spent 54% of its time waiting for the GIL (5.400 s of 10.000 s); "
        "meanwhile it was held by ThreadPoolExecutor-0_0 (tid 5) for 3.000 s and "
        "ThreadPoolExecutor-0_1 (tid 6) for 2.400 s.")
    assert prose.gil_waiter_sentence(view.where.gil_waiter) in " ".join(prose.explain(view))


def test_a_lock_wait_names_the_lock_and_a_holder_whose_code_was_not_sampled() -> None:
    threads = [_thread(1, "reader", {LOCK_WAIT: 0.5}), _thread(2, "writer", {RUNNING: 0.5})]
    rows = [WhereRow(1, LOCK_WAIT, (MAIN, CLIENT), 0.5)]
    blame = [LockBlame(1, (MAIN, CLIENT), 7, "", 2, (), 0.5)]
    view = build_view(_model(threads, rows, lock_blame=blame))
    assert view.where is not None
    (row,) = view.where.lock_blame.rows
    assert row.lock == "lock #7"
    assert prose.where_items(view.where, view.model.wall_s)[0] == (
        "reader (tid 1) waited 500.0 ms for lock #7 in client() (convoy.py:19); 100% of that time "
        "writer (tid 2) held it (its code was not sampled).")


def test_the_flame_graph_keeps_the_largest_rows_and_says_what_it_left_out() -> None:
    threads = [_thread(1, "many", {RUNNING: 10.0})]
    rows = [WhereRow(1, RUNNING, (A, Frame(f"f{n}", "gen.py", n)), 0.001 if n >= 100 else 0.05)
            for n in range(FLAME_ROWS + 500)]
    model = _model(threads, rows)
    where = build_view(model).where
    assert where is not None
    flame = where.flame
    assert len(flame.rows) == FLAME_ROWS and flame.total_rows == FLAME_ROWS + 500
    assert flame.left_out == {RUNNING: (500, pytest.approx(0.5))}
    assert min(row[3] for row in flame.rows) == pytest.approx(0.001)
    assert {row[3] for row in flame.rows[:100]} == {0.05}  # the largest are all kept
    sentence = prose.where_left_out(where)
    assert sentence.startswith(f"The flame graph draws the {FLAME_ROWS:,} largest of 2,500 "
                               "(thread, state, stack) rows; the other 500 covered 500.0 ms ")
    page = render_report_html(model)
    assert sentence.split(" (")[0] in page
    # The functions table counts every row, the left-out ones too.
    (a,) = [row for row in where.functions[RUNNING] if row.function == "a"]
    assert a.inclusive_s == pytest.approx(sum(row.seconds for row in rows))


def test_a_small_budget_is_honoured() -> None:
    threads = [_thread(1, "t", {RUNNING: 1.0})]
    rows = [WhereRow(1, RUNNING, (Frame(f"f{n}", "g.py", n),), 0.1 + n) for n in range(5)]
    where = build_where_view(_model(threads, rows), threads, {1: "t"}, flame_rows=2)
    assert where is not None
    assert [row[3] for row in where.flame.rows] == [4.1, 3.1]
    assert where.flame.left_out_rows == 3


def where_payload(page: str) -> dict[str, Any]:
    match = WHERE_BLOCK.search(page)
    assert match, "the flame graph's JSON block is missing"
    payload: dict[str, Any] = json.loads(match.group(1))
    return payload


@pytest.fixture(scope="module")
def lock_page() -> str:
    return render_report_html(build_lock_model())


def test_the_page_escapes_every_name_the_section_shows(lock_page: str) -> None:
    for hostile in (HOSTILE_QUALNAME, HOSTILE_FUNCTION, HOSTILE_THREAD, HOSTILE_FILE,
                    HOSTILE_LOCK):
        assert hostile not in lock_page
    section = lock_page[lock_page.index('<section id="where"'):lock_page.index(
        '<section id="gil"')]
    assert "Evil.&lt;svg onload=alert(2)&gt;" in section  # the function table, by Jinja
    assert "&lt;b&gt;evil&lt;/b&gt;.py:3" in section
    assert "&lt;img src=x onerror=alert(1)&gt; (tid 1002)" in section  # the GIL blame table
    block = WHERE_BLOCK.search(lock_page)
    assert block and not set("<>&") & set(block.group(1))
    payload = where_payload(lock_page)
    assert [HOSTILE_QUALNAME, HOSTILE_FILE, 3] in payload["frames"]
    assert payload["threads"]["1002"] == f"{HOSTILE_THREAD} (tid 1002)"


def test_the_section_has_selectors_tables_and_the_stack_source(lock_page: str) -> None:
    assert "Stacks from py-spy, sampling the program from outside, at 100 Hz." in lock_page
    for element in ('id="where-state"', 'id="where-thread"', 'id="where-flame"',
                    'id="where-functions"', 'id="where-gil-blame"', 'id="where-lock-blame"'):
        assert element in lock_page
    for state in ("running", "gil_wait", "lock_wait", "signal_wait", "native", "blocked", "all"):
        assert f'<option value="{state}"' in lock_page
    payload = where_payload(lock_page)
    # The barrier's wait is for a signal: a state of its own, next to lock contention.
    assert payload["states"] == ["running", "native", "gil_wait", "lock_wait", "signal_wait",
                                 "blocked"]
    # Every embedded row points at a stack, every stack at frames.
    assert all(0 <= row[2] < len(payload["stacks"]) for row in payload["rows"])
    assert all(0 <= f < len(payload["frames"]) for stack in payload["stacks"] for f in stack)
    assert "12.5 ms of the threads&#39; time has no stack" in lock_page


def test_no_stacks_is_one_line_that_says_why() -> None:
    page = render_report_html(build_synthetic_model(gil=False))
    assert ('<p class="empty" id="where-absent">No Python stacks were recorded in this run '
            "(py-spy: ptrace denied: py-spy needs CAP_SYS_PTRACE), so no time can be put on "
            "code.</p>") in page
    assert 'id="where-flame"' not in page
    assert where_payload(page) is None
    model = build_synthetic_model()
    model.where, model.gil_blame = None, []
    view = build_view(model)
    assert view.where is None
    assert prose.where_reading(view) == []
    assert "the model was built without them" in render_report_html(view)


def test_the_flame_graph_draws_a_function_once_whatever_its_line() -> None:
    rows = [WhereRow(1, RUNNING, (A, Frame("loop", "prog.py", 14)), 1.0),
            WhereRow(1, RUNNING, (A, Frame("loop", "prog.py", 15)), 3.0)]
    flame = build_where_view(_model([_thread(1, "t", {RUNNING: 4.0})], rows), [], {})
    assert flame is not None
    assert flame.flame.frames == [A, Frame("loop", "prog.py", 15)]
    assert flame.flame.stacks == [[0, 1]]
    assert [row[2] for row in flame.flame.rows] == [0, 0]


def test_waits_too_small_to_matter_are_not_named() -> None:
    """A 2 ms GIL wait in a run of sleeping threads names no culprit and no longest waiter."""
    threads = [_thread(1, "sleeper", {GIL_WAIT: 0.002, BLOCKED: 1.998}),
               _thread(2, "worker", {RUNNING: 0.002, BLOCKED: 1.998})]
    rows = [WhereRow(1, GIL_WAIT, (MAIN, CLIENT), 0.002), WhereRow(2, RUNNING, (MAIN, SPIN), 0.002)]
    blame = [GilBlame(1, (MAIN, CLIENT), 2, (MAIN, SPIN), 0.002)]
    view = build_view(_model(threads, rows, gil_blame=blame))
    assert view.where is not None and view.where.culprits
    assert prose.where_reading(view) == []
    assert prose.where_items(view.where, view.model.wall_s) == []
