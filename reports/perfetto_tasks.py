"""trace.json's tasks: each pool work item as a slice on the worker thread that ran it, with a
flow arrow from a moment slice on the submitting thread ("submit <task>") to its start; each
asyncio step as a slice on the loop's thread named by its task (a blocked step says so in its
category). They go on the threads' function tracks, beside VizTracer's calls
(:func:`reports.perfetto_tracks.function_tid`): a task's slice encloses the calls it made.

A process-pool item's slice is on its worker process's thread, when the worker was recorded (a
forked one); the arrow then crosses processes. An item whose start was not seen has no slice
here; it is in model.json."""

from __future__ import annotations

from typing import Any

from reports.perfetto_tracks import function_tid
from reports.tasks_view import Worker, worker_of
from reports.view import ReportView
from reports.vocabulary import task_outcome_words
from tracer.model.schema import Task, TaskKind

US = 1e6
MOMENT_US = 1.0
# Flow ids of task arrows start here, clear of the lock hand-offs' (1, 2, ...).
FLOW_BASE = 1 << 40
TraceEvent = dict[str, Any]


def _us(seconds: float) -> float:
    return round(seconds * US, 3)


def task_events(view: ReportView) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    flow = FLOW_BASE
    for pool in view.tasks.pools:
        for task in pool.started:
            worker = worker_of(task)
            if worker is None or task.start_s is None:
                continue
            end = task.end_s if task.end_s is not None else view.span_s
            events.append(_task_slice(task, end, worker))
            if task.submit_tid is None:
                continue
            flow += 1
            events.extend(_submit_flow(task, flow, worker))
    for loop in view.tasks.loops:
        blocked = {(b.start_s, b.end_s) for b in loop.stats.blocked}
        for task in (*loop.rows, *loop.folded):
            for start, stop in task.steps:
                events.append({
                    "ph": "X", "name": task.name,
                    "cat": "asyncio_blocked" if (start, stop) in blocked else "asyncio_step",
                    "pid": task.pid, "tid": function_tid(loop.stats.tid), "ts": _us(start),
                    "dur": max(_us(stop - start), 0.001),
                    "args": {"coroutine": task.function, "site": task.site}})
    return events


def _task_slice(task: Task, end: float, worker: Worker) -> TraceEvent:
    return {
        "ph": "X", "name": task.name, "cat": "pool_task", "pid": worker[0],
        "tid": function_tid(worker[1]),
        "ts": _us(task.start_s or 0.0), "dur": max(_us(end - (task.start_s or 0.0)), 0.001),
        "args": {"pool": task.pool, "function": task.function, "site": task.site,
                 "queue_wait_s": task.queue_wait_s, "run_s": task.run_s,
                 "outcome": task_outcome_words(task.outcome), "error": task.error,
                 "kind": str(TaskKind(task.kind))}}


def _submit_flow(task: Task, flow: int, worker: Worker) -> list[TraceEvent]:
    """A moment slice where the task was submitted and the arrow from it to the task's start
    (flow events bind to the slice around them, so each end needs one)."""
    submit = _us(task.submit_s)
    start = _us(task.start_s or 0.0)
    return [
        {"ph": "X", "name": f"submit {task.name}", "cat": "pool_submit", "pid": task.pid,
         "tid": function_tid(task.submit_tid or 0), "ts": submit, "dur": MOMENT_US},
        {"ph": "s", "name": "queued", "cat": "pool_flow", "id": flow, "pid": task.pid,
         "tid": function_tid(task.submit_tid or 0), "ts": round(submit + MOMENT_US / 2, 3)},
        {"ph": "f", "bp": "e", "name": "queued", "cat": "pool_flow", "id": flow,
         "pid": worker[0], "tid": function_tid(worker[1]), "ts": round(start + 0.001, 3)},
    ]
