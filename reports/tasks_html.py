"""The "Tasks" and "Event loop" sections' tables and sentences for report.html, as plain
strings the template escapes (function names, task names and paths come from user code)."""

from __future__ import annotations

from dataclasses import dataclass

from reports import prose
from reports.format import MISSING, fmt_seconds
from reports.tasks_view import TasksView
from reports.view import ReportView
from reports.vocabulary import task_kind_words
from tracer.model.schema import BlockedStep, PoolStats
from tracer.raw_files import SourceName

# Frames of a blocked step's stack shown in its table cell, innermost last.
STEP_FRAMES = 6


@dataclass(frozen=True)
class PoolRow:
    name: str
    kind: str
    max_workers: str
    workers: str
    tasks: str
    waited: str
    max_wait: str
    peak_depth: str
    mean_depth: str
    utilisation: str
    ended: str


@dataclass(frozen=True)
class StepRow:
    start: str
    duration: str
    task: str
    code: str
    stack: list[str]


@dataclass(frozen=True)
class LoopPanel:
    label: str
    sentence: str
    steps: list[StepRow]
    blocked: int
    threshold: str


@dataclass(frozen=True)
class TasksPanel:
    """None of it when the program used no pool and no event loop; ``off`` when the recorder
    did not run (the section then says so in one line)."""

    sentences: list[str]
    pools: list[PoolRow]
    loops: list[LoopPanel]
    off: str = ""


def tasks_panel(view: ReportView) -> TasksPanel | None:
    source = view.model.sources.get(SourceName.TASKS)
    tasks: TasksView = view.tasks
    if tasks.empty:
        if source is not None and not source.used and not source.off_by_choice and \
                source.reason:
            return TasksPanel([], [], [], off=source.reason)
        return None
    return TasksPanel(
        sentences=prose.pool_reading(tasks),
        pools=[_pool_row(pool.stats) for pool in tasks.pools],
        loops=[LoopPanel(loop.label, prose.loop_sentence(loop),
                         [_step_row(step) for step in loop.slowest], len(loop.stats.blocked),
                         f"{loop.stats.slow_step_s:g} s") for loop in tasks.loops],
    )


def _pool_row(stats: PoolStats) -> PoolRow:
    ended = ", ".join(part for part in (
        f"{stats.errors} raised" if stats.errors else "",
        f"{stats.cancelled} cancelled" if stats.cancelled else "",
        f"{stats.unfinished} unfinished" if stats.unfinished else "") if part) or "all returned"
    return PoolRow(
        name=stats.name, kind=task_kind_words(stats.kind),
        max_workers=str(stats.max_workers) if stats.max_workers is not None else MISSING,
        workers=str(stats.workers_started), tasks=f"{stats.tasks:,}", waited=f"{stats.waited:,}",
        max_wait=fmt_seconds(stats.max_queue_wait_s), peak_depth=str(stats.peak_queue_depth),
        mean_depth=f"{stats.mean_queue_depth:.2f}",
        utilisation=f"{stats.utilisation:.0%}" if stats.utilisation is not None else MISSING,
        ended=ended)


def _step_row(step: BlockedStep) -> StepRow:
    return StepRow(start=f"{step.start_s:.3f} s", duration=fmt_seconds(step.end_s - step.start_s),
                   task=step.task or "(a callback)", code=prose.step_code_words(step),
                   stack=[frame.label for frame in step.stack[-STEP_FRAMES:]])
