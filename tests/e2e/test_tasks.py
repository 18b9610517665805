"""Tasks as first-class, on programs whose answers are known by construction: six 0.3 s
sleeps on two workers (queue waits of 0, 0.3 and 0.6 s), and an event loop that a handler
blocks three times for 0.3 s of wall time in parse(). Run as a user runs them, on each
interpreter the tool supports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import PROGRAMS, pyenv_interpreters, tracer
from tracer.model.schema import RunModel, TaskKind, TaskOutcome

INTERPRETERS = [pytest.param(sys.executable, id="running"), *pyenv_interpreters()]
# Flags that keep each run short: what these checks read comes from the task recorder, plus
# py-spy's stacks for the blocked steps' code.
LEAN = ("--no-perf", "--no-gil-sampler")


def _record(tmp_path: Path, python: str, program: str, *flags: str,
            args: tuple[str, ...] = ()) -> tuple[RunModel, Path]:
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--python", python, *LEAN, *flags,
                    str(PROGRAMS / program), *args)
    assert result.returncode == 0, result.stderr
    return RunModel.load(out / "model.json"), out


@pytest.mark.parametrize("python", INTERPRETERS)
def test_six_tasks_on_two_workers_wait_for_a_free_worker(tmp_path: Path, python: str) -> None:
    model, out = _record(tmp_path, python, "pool_six_on_two.py")
    tasks = [t for t in model.tasks if t.kind is TaskKind.THREAD_POOL and t.function == "fetch"]
    assert len(tasks) == 7
    ran = sorted((t for t in tasks if t.start_s is not None), key=lambda t: t.start_s or 0.0)
    assert len(ran) == 6
    waits = [t.queue_wait_s or 0.0 for t in ran]
    # By construction: 0 for the first two, one task (0.3 s) for the next two, two tasks for the
    # last two. Sleeps of 0.3 s run at least 0.3 s, so the waits are measured, not assumed.
    assert all(w < 0.05 for w in waits[:2]), waits
    assert all(0.27 <= w <= 0.33 for w in waits[2:4]), waits
    assert all(0.54 <= w <= 0.66 for w in waits[4:]), waits
    assert all(0.29 <= (t.run_s or 0.0) <= 0.45 for t in ran)
    assert len({t.tid for t in ran}) == 2
    assert [t.outcome for t in ran].count(TaskOutcome.ERROR) == 1
    assert next(t for t in ran if t.outcome is TaskOutcome.ERROR).error == "LookupError"
    cancelled = [t for t in tasks if t.outcome is TaskOutcome.CANCELLED]
    assert len(cancelled) == 1 and cancelled[0].start_s is None
    (pool,) = [p for p in model.pools if p.name == "fetcher"]
    assert (pool.max_workers, pool.workers_started, pool.tasks, pool.waited) == (2, 2, 7, 4)
    assert pool.peak_queue_depth >= 5
    html = (out / "report.html").read_text()
    assert 'id="tasks"' in html and "fig-task-gantt" in html
    assert "4 of 6 tasks waited" in html and "max_workers=2" in html


def _has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


LOOPS = [pytest.param(python.values[0], (), id=f"{python.id}-asyncio", marks=python.marks)
         for python in INTERPRETERS] + [
    pytest.param(sys.executable, ("uvloop",), id="running-uvloop",
                 marks=pytest.mark.skipif(not _has_uvloop(), reason="no uvloop installed"))]


@pytest.mark.parametrize(("python", "args"), LOOPS)
def test_a_handler_that_blocks_the_loop_three_times_is_named(tmp_path: Path, python: str,
                                                             args: tuple[str, ...]) -> None:
    model, out = _record(tmp_path, python, "loop_blocked_three.py", args=args)
    (loop,) = model.loops
    blocked = [b for b in loop.blocked if b.task and b.task.startswith("handler")]
    assert len(blocked) == 3, [(b.task, b.end_s - b.start_s) for b in loop.blocked]
    for step in blocked:
        # parse() spins until 0.3 s of wall time have passed: the step lasts at least that,
        # and only a preemption at its very end could make it longer.
        assert 0.3 * 0.85 <= step.end_s - step.start_s <= 0.3 * 1.15
        assert step.coroutine == "handler"
        assert step.function == "parse", step.stack
    handlers = [t for t in model.tasks if t.kind is TaskKind.ASYNCIO
                and t.name.startswith("handler-")]
    assert len(handlers) == 3 and all(t.outcome is TaskOutcome.OK for t in handlers)
    assert all(t.function == "handler" and t.tid == loop.tid for t in handlers)
    ticker = next(t for t in model.tasks if t.name == "ticker")
    assert ticker.parent is not None and len(ticker.steps) > 10
    html = (out / "report.html").read_text()
    assert 'id="event-loop"' in html and "blocked 3 times" in html
    assert "handler() -&gt; parse()" in html


def test_without_tasks_nothing_is_recorded(tmp_path: Path) -> None:
    model, out = _record(tmp_path, sys.executable, "pool_six_on_two.py", "--no-tasks",
                         "--no-pyspy")
    assert model.tasks == [] and model.pools == []
    assert not (out / "raw" / "tasks.bin").exists()
    assert 'id="tasks"' not in (out / "report.html").read_text()


def test_a_process_pools_map_is_named_by_the_mapped_function(tmp_path: Path) -> None:
    program = tmp_path / "procs.py"
    program.write_text(
        "from concurrent.futures import ProcessPoolExecutor\n"
        "def square(x):\n    return x * x\n"
        "if __name__ == '__main__':\n"
        "    with ProcessPoolExecutor(max_workers=2) as pool:\n"
        "        print(sum(pool.submit(square, n).result() for n in range(4)))\n"
        "        print(list(pool.map(square, range(3))))\n")
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), *LEAN, "--no-pyspy", str(program))
    assert result.returncode == 0, result.stderr
    assert "14\n[0, 1, 4]" in result.stdout
    model = RunModel.load(out / "model.json")
    items = [t for t in model.tasks if t.kind is TaskKind.PROCESS_POOL]
    assert [t.function for t in items].count("square") == 7  # 4 submits, map: 3 batches of 1
    assert all(t.outcome is TaskOutcome.OK and t.end_s is not None for t in items)
    (pool,) = model.pools
    assert pool.kind is TaskKind.PROCESS_POOL and pool.max_workers == 2
    # Linux's default start method on 3.10-3.13 forks the workers, which record their runs.
    assert pool.start_method == "fork" and pool.starts_seen
    assert all(t.start_s is not None and t.worker_pid not in (None, t.pid) for t in items)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_six_tasks_on_two_worker_processes_wait_for_a_free_worker(tmp_path: Path,
                                                                 python: str) -> None:
    """The thread pool's must-hold on a forking process pool: the workers' own stamps give
    each item's start, run and worker process."""
    model, out = _record(tmp_path, python, "process_pool_six_on_two.py", "--no-pyspy")
    ran = sorted((t for t in model.tasks if t.function == "fetch"),
                 key=lambda t: t.start_s or 0.0)
    assert len(ran) == 6 and all(t.kind is TaskKind.PROCESS_POOL for t in ran)
    waits = [t.queue_wait_s for t in ran]
    assert None not in waits, waits
    # The first two wait for the workers to be forked and the item to be sent (well under
    # 0.3 s); the next two one task, the last two two tasks, as in a thread pool.
    assert all(w < 0.15 for w in waits[:2]), waits
    assert all(0.27 <= w <= 0.33 for w in waits[2:4]), waits
    assert all(0.54 <= w <= 0.66 for w in waits[4:]), waits
    assert all(0.29 <= (t.run_s or 0.0) <= 0.45 for t in ran)
    workers = {t.worker_pid for t in ran}
    assert len(workers) == 2 and ran[0].pid not in workers
    assert all(t.tid == t.worker_pid for t in ran)  # each worker runs items on its main thread
    assert next(t for t in ran if t.outcome is TaskOutcome.ERROR).error == "LookupError"
    (pool,) = model.pools
    assert (pool.max_workers, pool.workers_started, pool.tasks, pool.waited) == (2, 2, 6, 4)
    assert pool.starts_seen and pool.utilisation is not None and pool.utilisation > 0.5
    html = (out / "report.html").read_text()
    assert "fig-task-gantt" in html and "2 worker processes" in html
    assert "4 of 6 tasks waited" in html


def test_a_spawning_process_pool_is_seen_from_the_parent_and_says_so(tmp_path: Path) -> None:
    model, out = _record(tmp_path, sys.executable, "process_pool_six_on_two.py", "--no-pyspy",
                         args=("spawn",))
    items = [t for t in model.tasks if t.function == "fetch"]
    assert len(items) == 6 and all(t.end_s is not None for t in items)
    assert all(t.start_s is None and t.queue_wait_s is None and t.worker_pid is None
               for t in items)
    (pool,) = model.pools
    assert pool.start_method == "spawn" and not pool.starts_seen and pool.utilisation is None
    html = (out / "report.html").read_text()
    assert "started by multiprocessing&#39;s spawn method and are not recorded" in html
