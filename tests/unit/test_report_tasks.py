"""The "Tasks" and "Event loop" sections: present only with pools or loops, their sentences
stated from the figures, and every name from user code escaped (a task's name, a function, a
file: the report is a web page)."""

from __future__ import annotations

import json
import re

from reports import prose
from reports.html import render_report_html
from reports.perfetto import trace_events
from reports.perfetto_tracks import function_tid
from reports.view import build_view
from tests.fixtures.synthetic_model import HOSTILE_FUNCTION, HOSTILE_THREAD, build_synthetic_model
from tests.unit.test_task_model import MAIN, T0, item, loop_events, six_on_two
from tracer.model.schema import RunModel
from tracer.model.tasks import build_tasks

FIGURES_BLOCK = re.compile(
    r'<script type="application/json" id="threadscope-figures">(.*?)</script>', re.S)
EVIL = "<img src=x onerror=alert(1)>"


def with_tasks(events: list[tuple[object, ...]]) -> RunModel:
    model = build_synthetic_model()
    found = build_tasks(events, T0, T0 + int(model.wall_s * 1e9))
    model.tasks, model.pools, model.loops = found.tasks, found.pools, found.loops
    return model


def hostile_events() -> list[tuple[object, ...]]:
    """A pool and a loop whose every name is markup."""
    events = six_on_two()
    events[1] = ("pool", 1, 4242, "thread_pool", EVIL, 2, T0)
    events[2] = ("fn", 1, HOSTILE_FUNCTION, f"/app/{EVIL}.py:3")
    loop = loop_events([(2, 2, 302)])[1:]
    loop = [("task", 2, 4242, 1, EVIL, 1, T0, 1) if e[0] == "task" and e[1] == 2 else e
            for e in loop]
    loop = [("fn", 1, HOSTILE_FUNCTION, "/app/server.py:10") if e[:2] == ("fn", 1) else e
            for e in loop]
    return events + loop


def test_without_pools_or_loops_there_are_no_sections() -> None:
    page = render_report_html(build_synthetic_model())
    assert 'id="tasks"' not in page and 'id="event-loop"' not in page


def test_the_pool_sentence_says_who_waited_and_why() -> None:
    view = build_view(with_tasks(six_on_two()))
    (sentence,) = prose.pool_reading(view.tasks)
    assert "4 of 6 tasks waited 0.30-0.60 s for a free worker; max_workers=2" in sentence
    assert "1 raised (LookupError)" in sentence and "1 was cancelled" in sentence


def test_a_pool_whose_workers_were_never_all_taken_says_no_task_waited() -> None:
    events = [*six_on_two()[:3], item(1, 0, 0.1, 300, 4243), item(2, 400, 400.1, 700, 4243)]
    (sentence,) = prose.pool_reading(build_view(with_tasks(events)).tasks)
    assert "No task waited for a free worker" in sentence


def test_the_loop_sentence_names_the_blocking_code() -> None:
    view = build_view(with_tasks(loop_events([(2, 2, 302), (2, 400, 700)])))
    (sentence,) = prose.loop_reading(view.tasks)
    assert "blocked 2 times for 0.30 s in handler()" in sentence
    assert "the other tasks could not run meanwhile" in sentence


def test_names_from_user_code_are_escaped_everywhere() -> None:
    page = render_report_html(with_tasks(hostile_events()))
    assert 'id="tasks"' in page and 'id="event-loop"' in page
    assert EVIL not in page and HOSTILE_FUNCTION not in page and HOSTILE_THREAD not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the pool table, escaped by Jinja
    block = FIGURES_BLOCK.search(page)
    assert block and not set("<>&") & set(block.group(1))
    payload = json.loads(block.group(1))
    gantt = next(f for f in payload["figures"] if f["id"] == "fig-task-gantt")
    hovers = [h for trace in gantt["data"] for h in trace.get("hovertext", [])]
    assert hovers and all(EVIL not in h for h in hovers)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in h for h in hovers)


def test_trace_json_has_task_slices_and_a_flow_from_each_submit() -> None:
    events = trace_events(with_tasks(six_on_two()))
    slices = [e for e in events if e.get("cat") == "pool_task"]
    assert len(slices) == 6
    starts = [e for e in events if e.get("cat") == "pool_flow" and e["ph"] == "s"]
    ends = [e for e in events if e.get("cat") == "pool_flow" and e["ph"] == "f"]
    assert len(starts) == len(ends) == 6
    assert all(e["tid"] == function_tid(MAIN) for e in starts)  # the main thread's calls
    assert {e["id"] for e in starts} == {e["id"] for e in ends}


def _loops(count: int, tasks_each: int) -> list[tuple[object, ...]]:
    """``count`` event loops, one per thread, each with ``tasks_each`` tasks of one step."""
    events: list[tuple[object, ...]] = [("start", 2, 4242, T0, "3.11.7", "c"),
                                        ("fn", 1, "handler", "/app/server.py:10")]
    number = 0
    for loop in range(1, count + 1):
        events.append(("loop", loop, 4242, MAIN + loop, T0))
        for k in range(tasks_each):
            number += 1
            at = T0 + (loop * 1000 + k) * 10_000
            events += [("task", number, 4242, loop, f"loop{loop}-task{k}", 1, at, 0),
                       ("step", loop, number, at, at + 5_000, 0),
                       ("done", number, at + 5_000, "ok", None)]
    return events


def test_every_event_loop_gets_its_rows_in_the_task_timeline() -> None:
    from reports.figures.loops import LOOP_ROW_BUDGET, loop_tasks_figure

    two = loop_tasks_figure(build_view(with_tasks(_loops(2, 3))), 10_000)
    assert two is not None and not two.aggregated
    assert {label.split(" · ")[1].split(":")[0] for label in two.labels} == {
        f"loop{n}-task{k}" for n in (1, 2) for k in range(3)}
    assert len({label.split(" · ")[0] for label in two.labels}) == 2  # named by their loop
    many = loop_tasks_figure(build_view(with_tasks(_loops(30, 5))), 10_000)
    assert many is not None and many.aggregated and len(many.labels) <= LOOP_ROW_BUDGET
    assert "of 30 event loops drawn" in many.note


def test_a_process_pools_tasks_go_on_their_worker_processes() -> None:
    from tests.unit.test_task_model import PID, process_six_on_two
    model = with_tasks(process_six_on_two())
    view = build_view(model)
    (pool,) = view.tasks.pools
    assert pool.workers == ((6001, 6001), (6002, 6002))
    assert pool.worker_labels[(6001, 6001)] == "process 6001"
    (sentence,) = prose.pool_reading(view.tasks)
    assert "on 2 worker processes" in sentence and "4 of 6 tasks waited 0.30-0.60 s" in sentence
    events = trace_events(model)
    slices = [e for e in events if e.get("cat") == "pool_task"]
    assert sorted({(e["pid"], e["tid"]) for e in slices}) == [
        (6001, function_tid(6001)), (6002, function_tid(6002))]
    arrows = [e for e in events if e.get("cat") == "pool_flow"]
    assert {e["pid"] for e in arrows if e["ph"] == "s"} == {PID}  # from the submitting process
    assert {e["pid"] for e in arrows if e["ph"] == "f"} == {6001, 6002}
    page = render_report_html(model)
    assert "process 6001" in page and "fig-task-gantt" in page


def test_a_process_pool_with_unrecorded_workers_says_why_its_waits_are_unknown() -> None:
    from tests.unit.test_task_model import process_six_on_two
    events = process_six_on_two(with_runs=False)
    events[1] = ("pool", 1, 4242, "process_pool", "ProcessPoolExecutor-1", 2, T0, "spawn")
    (sentence,) = prose.pool_reading(build_view(with_tasks(events)).tasks)
    assert "started by multiprocessing's spawn method and are not recorded" in sentence
    assert "waited" not in sentence.replace("how long they waited", "")
