"""Folding the task recorder's events into tasks, pools and loops: queue wait, outcome, queue
depth, utilisation, blocked steps and the code named for them, on hand-made event lists whose
answers are known."""

from __future__ import annotations

import marshal
import struct
from pathlib import Path

import pytest

from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.schema import (
    Frame,
    RunModel,
    TaskKind,
    TaskOutcome,
)
from tracer.model.stacks import StackTimeline, StackTrie
from tracer.model.tasks import build_tasks, name_blocked_steps, queue_depth, read_task_events

T0 = 1_000_000_000_000
MS = 1_000_000
PID = 4242
MAIN, W1, W2 = 4242, 4243, 4244


def _s(ms: float) -> int:
    return T0 + int(ms * MS)


def item(number: int, submit_ms: float, start_ms: float | None, end_ms: float | None,
         worker: int | None, outcome: str = "ok", error: str | None = None,
         pool: int = 1) -> tuple[object, ...]:
    """An ITEM event as tracer.instrument.tasks writes it (fn 1, submitted by MAIN)."""
    return ("item", (number, pool, 1, _s(submit_ms), MAIN, 0),
            None if start_ms is None else _s(start_ms), None if end_ms is None else _s(end_ms),
            worker, outcome, error)


def six_on_two() -> list[tuple[object, ...]]:
    """Six 300 ms tasks submitted at 0 on two workers: waves at 0, 300 and 600 ms; the fourth
    raises, a seventh is cancelled in the queue and never leaves it."""
    events: list[tuple[object, ...]] = [
        ("start", 1, PID, T0, "3.11.7"),
        ("pool", 1, PID, "thread_pool", "fetcher", 2, _s(0)),
        ("fn", 1, "fetch", "/app/fetch.py:3"),
    ]
    for n in range(6):
        wave = n // 2
        worker = W1 if n % 2 == 0 else W2
        start, end = wave * 300 + 0.1, wave * 300 + 300.1
        outcome, error = ("error", "LookupError") if n == 3 else ("ok", None)
        events.append(item(n + 1, 0, start, end, worker, outcome, error))
    events.append(item(7, 0, None, None, None, "cancelled"))
    return events


def test_queue_wait_is_submit_to_start_and_the_last_two_waited_two_waves() -> None:
    model = build_tasks(six_on_two(), T0, _s(1000))
    waits = [t.queue_wait_s for t in model.tasks]
    assert waits[:2] == [pytest.approx(0.0001), pytest.approx(0.0001)]
    assert waits[2:4] == [pytest.approx(0.3001), pytest.approx(0.3001)]
    assert waits[4:6] == [pytest.approx(0.6001), pytest.approx(0.6001)]
    assert waits[6] is None  # cancelled before it started: no wait to speak of
    assert [t.run_s for t in model.tasks[:6]] == [pytest.approx(0.3)] * 6


def test_outcomes_and_errors_are_kept() -> None:
    model = build_tasks(six_on_two(), T0, _s(1000))
    outcomes = [t.outcome for t in model.tasks]
    assert outcomes.count(TaskOutcome.OK) == 5
    assert model.tasks[3].outcome is TaskOutcome.ERROR and model.tasks[3].error == "LookupError"
    assert model.tasks[6].outcome is TaskOutcome.CANCELLED
    assert all(t.kind is TaskKind.THREAD_POOL and t.pool == "fetcher" for t in model.tasks)
    assert model.tasks[0].name == "fetch #1" and model.tasks[0].site == "/app/fetch.py:3"


def test_pool_figures() -> None:
    (pool,) = build_tasks(six_on_two(), T0, _s(1000)).pools
    assert (pool.max_workers, pool.workers_started, pool.tasks) == (2, 2, 7)
    assert (pool.errors, pool.cancelled, pool.unfinished) == (1, 1, 0)
    assert pool.waited == 4
    assert pool.max_queue_wait_s == pytest.approx(0.6001)
    # Seven submitted at 0, all queued until the first two start 0.1 ms later; then five,
    # three, and one (the cancelled one, which never leaves: it has neither start nor end).
    assert pool.peak_queue_depth == 7
    assert pool.depth[:4] == [7, 5, 3, 1]
    assert pool.active_s == pytest.approx(0.9001)
    assert pool.utilisation == pytest.approx(1.0, abs=0.01)


def test_queue_depth_steps() -> None:
    model = build_tasks(six_on_two(), T0, _s(1000))
    times, depths = queue_depth(model.tasks, 1.0)
    assert depths[0] == 7 and times[0] == 0.0
    assert depths[1] == 5  # the first two started at 0.1 ms
    assert depths[-1] == 1 and times[-1] == 1.0


def test_mean_queue_depth_is_time_weighted() -> None:
    """Two tasks on one worker: the second waits the whole first task, so over the pool's
    active span (0 to 2 s) one task is queued for 1 s: a mean depth of 0.5."""
    events = [("start", 1, PID, T0, "3.11.7"), ("pool", 1, PID, "thread_pool", "p", 1, T0),
              ("fn", 1, "f", "/a.py:1"),
              item(1, 0, 0, 1000, W1), item(2, 0, 1000, 2000, W1)]
    (pool,) = build_tasks(events, T0, _s(2000)).pools
    assert pool.mean_queue_depth == pytest.approx(0.5, abs=0.001)
    assert pool.peak_queue_depth == 1


def test_unfinished_item_runs_to_the_end_of_the_recording() -> None:
    events = [("start", 1, PID, T0, "3.11.7"), ("pool", 1, PID, "thread_pool", "p", 1, T0),
              ("fn", 1, "f", "/a.py:1"),
              item(1, 0, 10, None, W1, "unfinished")]
    model = build_tasks(events, T0, _s(500))
    (task,) = model.tasks
    assert task.outcome is TaskOutcome.UNFINISHED and task.end_s is None
    assert task.queue_wait_s == pytest.approx(0.01) and task.run_s is None
    assert model.pools[0].unfinished == 1


def loop_events(step_ms: list[tuple[int, float, float]]) -> list[tuple[object, ...]]:
    events: list[tuple[object, ...]] = [
        ("start", 1, PID, T0, "3.11.7"), ("loop", 1, PID, MAIN, _s(0)),
        ("fn", 1, "handler", "/app/server.py:10"), ("fn", 2, "main", "/app/server.py:20"),
        ("task", 1, PID, 1, "Task-1", 2, _s(0), 0),
        ("task", 2, PID, 1, "handler-0", 1, _s(1), 1)]
    for task, a, b in step_ms:
        events.append(("step", 1, task, _s(a), _s(b), 0))
    events += [("done", 2, _s(1000), "error", "ValueError"),
               ("done", 1, None, "unfinished", None)]
    return events


def test_blocked_steps_are_those_at_or_over_the_threshold() -> None:
    steps = [(1, 0.5, 0.6), (2, 2, 302), (2, 310, 390), (2, 400, 700), (1, 800, 801)]
    model = build_tasks(loop_events(steps), T0, _s(1000), slow_step_s=0.1)
    (loop,) = model.loops
    durations = [round(b.end_s - b.start_s, 3) for b in loop.blocked]
    assert durations == [0.3, 0.3]  # the 80 ms step is under the threshold
    assert all(b.task == "handler-0" and b.coroutine == "handler" for b in loop.blocked)
    assert loop.busy_s == pytest.approx(0.6811, abs=1e-4)
    assert loop.steps == 5 and loop.tasks == 2
    stricter = build_tasks(loop_events(steps), T0, _s(1000), slow_step_s=0.05).loops[0]
    assert len(stricter.blocked) == 3


def test_asyncio_task_rows() -> None:
    steps = [(1, 0.5, 0.6), (2, 2, 302), (2, 400, 700)]
    model = build_tasks(loop_events(steps), T0, _s(1000))
    handler = next(t for t in model.tasks if t.name == "handler-0")
    assert handler.kind is TaskKind.ASYNCIO and handler.tid == MAIN
    assert handler.queue_wait_s == pytest.approx(0.001)  # created at 1 ms, first step at 2
    assert handler.run_s == pytest.approx(0.6)
    assert handler.outcome is TaskOutcome.ERROR and handler.error == "ValueError"
    assert handler.parent == 1 and len(handler.steps) == 2
    main = next(t for t in model.tasks if t.name == "Task-1")
    assert main.outcome is TaskOutcome.UNFINISHED and main.end_s is None


def test_busy_share_bins_sum_to_the_busy_time() -> None:
    steps = [(2, 2, 302), (2, 400, 700)]
    (loop,) = build_tasks(loop_events(steps), T0, _s(1000)).loops
    assert loop.busy is not None
    assert sum(v * loop.busy.bin_s for v in loop.busy.values) == pytest.approx(0.6, abs=0.01)


def test_a_blocked_step_is_named_by_the_users_innermost_frame() -> None:
    steps = [(2, 100, 400)]
    model = build_tasks(loop_events(steps), T0, _s(1000))
    trie = StackTrie()
    outer = (Frame("handler", "server.py", 12),)
    inner = (*outer, Frame("parse", "server.py", 3), Frame("loads", "json/__init__.py", 346))
    timeline = StackTimeline()
    timeline.step(0.0, trie.intern(outer))
    timeline.step(0.15, trie.intern(inner))  # 250 ms of the 300 in parse -> json.loads
    timeline.step(0.4, trie.intern(outer))
    name_blocked_steps(model.loops, {(PID, MAIN): timeline}, trie, model.user_files)
    (step,) = model.loops[0].blocked
    assert step.function == "parse" and step.site == "server.py:3"
    assert [f.function for f in step.stack] == ["handler", "parse", "loads"]


def test_without_a_stack_source_a_blocked_step_names_its_coroutine() -> None:
    model = build_tasks(loop_events([(2, 100, 400)]), T0, _s(1000))
    name_blocked_steps(model.loops, {}, StackTrie(), model.user_files)
    (step,) = model.loops[0].blocked
    assert (step.function, step.stack) == ("handler", ())


def _chunk(events: list[tuple[object, ...]]) -> bytes:
    data = marshal.dumps(events, 4)
    return struct.pack("<I", len(data)) + data


def test_a_chunk_cut_short_by_a_crash_ends_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tasks.bin"
    whole = _chunk(six_on_two()[:3])
    cut = _chunk(six_on_two()[3:])[:-5]
    path.write_bytes(whole + cut)
    assert len(read_task_events(path)) == 3


def test_the_model_round_trips_through_json(tmp_path: Path) -> None:
    found = build_tasks(six_on_two() + loop_events([(2, 2, 302)])[1:], T0, _s(1000))
    model = build_synthetic_model()
    model.tasks, model.pools, model.loops = found.tasks, found.pools, found.loops
    model.save(tmp_path / "model.json")
    again = RunModel.load(tmp_path / "model.json")
    assert again.tasks == model.tasks
    assert again.pools == model.pools
    assert again.loops == model.loops


def test_waiting_for_a_new_worker_thread_to_start_is_not_waiting_for_a_free_worker() -> None:
    """On a loaded machine the second worker thread took 20 ms to start: the second task
    waited 20 ms, but with a worker of its own; tasks 3-6 found both workers taken."""
    events = six_on_two()
    events[4] = item(2, 0, 20, 320, W2)
    model = build_tasks(events, T0, _s(1000))
    assert [t.ahead for t in model.tasks[:6]] == [0, 1, 2, 3, 4, 5]
    assert model.pools[0].waited == 4


def test_chunks_of_a_forked_child_keep_their_own_pid(tmp_path: Path) -> None:
    """A forked child appends its own chunks between the parent's: each chunk says its pid,
    and a function number means the function its own process declared."""
    child = 5151
    parent_first = [("start", 1, PID, T0, "3.11.7"), ("pool", 1, PID, "thread_pool", "p", 1, T0),
                    ("fn", 1, "parent_work", "/a.py:1")]
    child_chunk = [("start", 1, child, T0, "3.11.7"),
                   ("pool", 1, child, "thread_pool", "c", 1, T0),
                   ("fn", 1, "child_work", "/a.py:9"), item(1, 0, 1, 2, child + 1)]
    parent_then = [item(1, 0, 1, 5, W1)]  # no start event of its own: the chunk's pid says
    data = b"".join(struct.pack("<I", len(body)) + body for body in (
        marshal.dumps((PID, parent_first), 4), marshal.dumps((child, child_chunk), 4),
        marshal.dumps((PID, parent_then), 4)))
    (tmp_path / "tasks.bin").write_bytes(data)
    model = build_tasks(read_task_events(tmp_path / "tasks.bin"), T0, _s(10))
    assert sorted((t.pid, t.function, t.pool) for t in model.tasks) == [
        (PID, "parent_work", "p"), (child, "child_work", "c")]


def test_a_step_blocked_in_the_library_is_named_by_the_library_frame() -> None:
    """Only the script's <module> above the step is the user's: the step itself spent its time
    in a library's Condition.wait, and that is what it is named by."""
    model = build_tasks(loop_events([(2, 100, 400)]), T0, _s(1000))
    trie = StackTrie()
    stack = (Frame("<module>", "server.py", 30), Frame("run", "asyncio/runners.py", 190),
             Frame("handler", "server.py", 12), Frame("Thread.start", "threading.py", 992),
             Frame("Condition.wait", "threading.py", 327))
    timeline = StackTimeline()
    timeline.step(0.0, trie.intern(stack))
    name_blocked_steps(model.loops, {(PID, MAIN): timeline}, trie, {"server.py"})
    (step,) = model.loops[0].blocked
    assert step.function == "handler"  # the user's innermost frame within the step
    stack2 = (stack[0], stack[1], Frame("Thread.start", "threading.py", 992),
              Frame("Condition.wait", "threading.py", 327))
    model = build_tasks(loop_events([(2, 100, 400)]), T0, _s(1000))
    model.loops[0].blocked[0].coroutine = "Thread.start"
    timeline = StackTimeline()
    timeline.step(0.0, trie.intern(stack2))
    name_blocked_steps(model.loops, {(PID, MAIN): timeline}, trie, {"server.py"})
    assert model.loops[0].blocked[0].function == "Condition.wait"


def test_the_c_hooks_records_read_as_the_events_they_stand_for(tmp_path: Path) -> None:
    """A chunk's third part: the C hooks' fixed records of ok work items and loop steps. The
    same run written as Python tuples and as records gives the same tasks and loop steps,
    and a step the Python path wrote in the same chunk still sorts by time."""
    declared = [("start", 2, PID, T0, "3.11.7", "c"),
                ("pool", 1, PID, "thread_pool", "p", 2, T0), ("fn", 1, "work", "/a.py:1"),
                ("loop", 1, PID, MAIN, T0), ("fn", 2, "main", "/a.py:5"),
                ("task", 1, PID, 1, "Task-1", 2, _s(0), 0)]
    as_tuples = [("item", (1, 1, 1, _s(0), MAIN, 0), _s(1), _s(4), W1),
                 ("step", 1, 1, _s(1), _s(2), 0), ("step", 1, 1, _s(5), _s(6), 0),
                 ("step", 1, 0, _s(7), _s(8), 0)]
    record = struct.Struct("=10q")
    records = b"".join((
        record.pack(1, 1, 1, 1, _s(0), MAIN, 0, _s(1), _s(4), W1),
        record.pack(2, 1, 1, _s(5), _s(6), 0, 0, 0, 0, 0),
        record.pack(2, 1, 0, _s(7), _s(8), 0, 0, 0, 0, 0)))
    python_step = ("step", 1, 1, _s(1), _s(2), 0)  # earlier than the records' steps
    done = ("done", 1, _s(6), "ok", None, "Task-1")

    def model_of(name: str, chunks: list[tuple[object, ...]]) -> object:
        path = tmp_path / name
        path.write_bytes(b"".join(struct.pack("<I", len(body)) + body
                                  for body in (marshal.dumps(c, 4) for c in chunks)))
        found = build_tasks(read_task_events(path), T0, _s(10))
        return ([(t.function, t.queue_wait_s, t.run_s, t.steps, t.outcome) for t in found.tasks],
                [(loop.busy_s, loop.steps) for loop in found.loops], found.python_hooks)

    python = model_of("tuples.bin", [(PID, declared + as_tuples + [done])])
    c = model_of("records.bin", [(PID, [*declared, python_step, done], records)])
    assert c == python
    tasks, loops, hooks = c
    assert tasks[0][:3] == ("work", 0.001, 0.003)
    assert tasks[1][3] == [(0.001, 0.002), (0.005, 0.006)]
    assert loops == [(0.003, 3)] and hooks == ""


def test_a_target_on_the_python_hooks_says_why() -> None:
    events: list[tuple[object, ...]] = [
        ("start", 2, PID, T0, "3.11.7", "turned off by THREADSCOPE_PURE_TASKS=1")]
    assert build_tasks(events, T0, _s(1)).python_hooks == \
        "turned off by THREADSCOPE_PURE_TASKS=1"


def process_six_on_two(with_runs: bool = True) -> list[tuple[object, ...]]:
    """Six 300 ms process-pool items submitted at 0 on two forked workers: the parent writes
    each submit and when it saw it done, each worker (its own chunk's pid) the run it made."""
    workers = (6001, 6002)
    events: list[tuple[object, ...]] = [
        ("start", 2, PID, T0, "3.11.7", "c"),
        ("pool", 1, PID, "process_pool", "ProcessPoolExecutor-1", 2, _s(0), "fork"),
        ("fn", 1, "crunch", "/app/crunch.py:3"),
    ]
    runs: dict[int, list[tuple[object, ...]]] = {w: [] for w in workers}
    for n in range(6):
        wave = n // 2
        worker = workers[n % 2]
        start, end = wave * 300 + 5, wave * 300 + 305
        events.append(item(n + 1, 0, None, end + 1, None))  # the parent: done 1 ms later
        runs[worker].append(("run", PID, n + 1, _s(start), _s(end), worker))
    if with_runs:
        for worker in workers:
            events += [("start", 0, worker, 0, ""), *runs[worker]]
    return events


def test_a_process_pools_items_take_start_end_and_worker_from_the_workers_runs() -> None:
    model = build_tasks(process_six_on_two(), T0, _s(1000))
    tasks = sorted(model.tasks, key=lambda t: t.id)
    assert [t.queue_wait_s for t in tasks] == pytest.approx([0.005, 0.005, 0.305, 0.305,
                                                              0.605, 0.605])
    assert [t.run_s for t in tasks] == pytest.approx([0.3] * 6)
    assert [t.end_s for t in tasks] == pytest.approx([0.305, 0.305, 0.605, 0.605, 0.905, 0.905])
    assert {(t.pid, t.worker_pid, t.tid) for t in tasks} == {(PID, 6001, 6001),
                                                             (PID, 6002, 6002)}
    (pool,) = model.pools
    assert (pool.workers_started, pool.waited, pool.start_method) == (2, 4, "fork")
    assert pool.starts_seen and pool.utilisation == pytest.approx(1.0, abs=0.02)
    times, depths = pool.depth_t, pool.depth
    assert depths[0] == 6 and depths[times.index(pytest.approx(0.305))] == 2


def test_a_process_pool_without_its_workers_runs_is_what_was_in_flight() -> None:
    model = build_tasks(process_six_on_two(with_runs=False), T0, _s(1000))
    assert all(t.start_s is None and t.worker_pid is None for t in model.tasks)
    (pool,) = model.pools
    assert not pool.starts_seen and pool.utilisation is None and pool.workers_started == 0
    # Nothing left the queue before it was done: six in flight until the first two ended.
    assert pool.depth[0] == 6 and pool.depth_t[1] == pytest.approx(0.306)
