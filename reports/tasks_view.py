"""The "Tasks" and "Event loop" sections' view: each pool with its tasks and worker rows, each
event loop with its task rows (folded past a budget) and its slowest steps. Computed once in
:func:`reports.view.build_view`; the figures, the page, trace.json and the summary read it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tracer.model.schema import BlockedStep, LoopStats, PoolStats, RunModel, Task, TaskKind

# asyncio tasks with a row of their own on the loop's task timeline; the rest share one row.
# Like threads, a page holds a few dozen rows before it stops being read.
TASK_ROWS = 40
# Slowest steps listed under the loop's figure; every one is in model.json.
SLOWEST_STEPS = 10


Worker = tuple[int, int]  # (pid, tid): a process pool's workers are other processes' threads


@dataclass(frozen=True)
class PoolView:
    """One pool: its figures, its tasks by submit time, its workers in order of first use
    (the Gantt's rows)."""

    stats: PoolStats
    tasks: Sequence[Task]
    workers: Sequence[Worker]
    worker_labels: Mapping[Worker, str]

    @property
    def started(self) -> list[Task]:
        return [t for t in self.tasks if t.queue_wait_s is not None]


@dataclass(frozen=True)
class LoopView:
    """One event loop: ``rows`` are the tasks with their own row (busiest first, then by
    creation), ``folded`` the others, drawn together on one row."""

    stats: LoopStats
    label: str  # the loop's thread, as the report names threads
    rows: Sequence[Task]
    folded: Sequence[Task]
    slowest: Sequence[BlockedStep]
    tasks: int


@dataclass(frozen=True)
class TasksView:
    pools: Sequence[PoolView] = field(default_factory=tuple)
    loops: Sequence[LoopView] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.pools and not self.loops


def worker_of(task: Task) -> Worker | None:
    """The thread that ran the task, with its process (None when no worker was seen)."""
    if task.tid is None:
        return None
    return (task.worker_pid if task.worker_pid is not None else task.pid, task.tid)


def _worker_label(worker: Worker, pool_pid: int, labels: Mapping[int, str]) -> str:
    pid, tid = worker
    if pid != pool_pid:  # a process pool's worker process
        return f"process {pid}" if tid == pid else f"process {pid}, thread {tid}"
    return labels.get(tid, f"thread {tid}")


def build_tasks_view(model: RunModel, labels: Mapping[int, str]) -> TasksView:
    pools = []
    for stats in model.pools:
        tasks = sorted((t for t in model.tasks if t.kind is stats.kind and t.pool == stats.name
                        and t.pid == stats.pid), key=lambda t: (t.submit_s, t.id))
        first_use: dict[Worker, float] = {}
        for task in tasks:
            worker = worker_of(task)
            if worker is not None and task.start_s is not None:
                first_use.setdefault(worker, task.start_s)
        workers = sorted(first_use, key=lambda w: first_use[w])
        pools.append(PoolView(stats, tuple(tasks), tuple(workers),
                              {w: _worker_label(w, stats.pid, labels) for w in workers}))
    loops = []
    for loop in model.loops:
        tasks = [t for t in model.tasks if t.kind is TaskKind.ASYNCIO and t.pid == loop.pid
                 and t.pool == f"loop-{loop.id}"]
        ranked = sorted(tasks, key=lambda t: (-(t.run_s or 0.0), t.submit_s))
        shown = sorted(ranked[:TASK_ROWS], key=lambda t: (t.submit_s, t.id))
        slowest = sorted(loop.blocked, key=lambda b: b.start_s - b.end_s)[:SLOWEST_STEPS]
        loops.append(LoopView(loop, labels.get(loop.tid, f"thread {loop.tid}"),
                              tuple(shown), tuple(ranked[TASK_ROWS:]), tuple(slowest),
                              len(tasks)))
    return TasksView(tuple(pools), tuple(loops))
