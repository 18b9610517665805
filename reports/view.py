"""The report's view model: what every renderer needs beyond the model, computed once.

pyinstrument runs its processors once and hands the result to each renderer; this is that step.
:func:`build_view` orders and selects the threads, names them, derives the run's numbers and the
series more than one renderer draws (GIL turns, GIL waiters, the time axis end), and where the
time went in the code (:mod:`reports.where_view`). report.html,
trace.json and the terminal summary all read one :class:`ReportView`, so they show the same
threads in the same order and state the same numbers, and none of them recomputes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reports.intervals import Segment, gil_turns, gil_waiter_steps, has_gil_data, run_end
from reports.processes_view import ProcessTable, process_table
from reports.tasks_view import TasksView, build_tasks_view
from reports.threads import (
    ThreadSelection,
    ordered_threads,
    select_threads,
    thread_label,
    thread_state_seconds,
)
from reports.where_view import WhereView, build_where_view
from tracer.model.schema import GIL_WAIT, ON_CPU_STATES, RUNNING, STATES, RunModel, ThreadTimeline

# A thread that spent at least this share of the run on a CPU or waiting for the GIL "wanted a CPU".
BUSY_SHARE = 0.25
# Threads with their own line in the terminal when a run has too many to list (FOLD_ABOVE): a
# terminal holds about 50 lines, and the summary has more to say below the table.
TERMINAL_THREADS = 20


@dataclass
class RunNumbers:
    """What was measured, in the units the report states them."""

    threads: int
    wall_s: float
    cpu_s: float
    cores: int
    parallelism: float | None
    state_s: dict[str, float]
    gil_measured: bool
    busy_threads: list[str] = field(default_factory=list)
    mean_gil_waiters: float | None = None
    gil_switches_per_s: float | None = None

    @property
    def thread_time_s(self) -> float:
        return sum(self.state_s.values())

    def share(self, state: str) -> float:
        total = self.thread_time_s
        return self.state_s.get(state, 0.0) / total if total > 0 else 0.0

    def on_cpu_share(self) -> float:
        return sum(self.share(s) for s in ON_CPU_STATES)

    @property
    def states(self) -> list[str]:
        """The states some thread was in: the model's order first, unknown codes after."""
        states = [s for s in STATES if self.state_s.get(s, 0.0) > 0]
        return states + sorted(s for s in self.state_s if s not in STATES)


@dataclass(frozen=True)
class GilWaiters:
    """Threads in ``gil_wait`` as a step function: ``counts[i]`` holds from ``times[i]``."""

    times: list[float]
    counts: list[int]


@dataclass(frozen=True)
class ReportView:
    """One run as every renderer sees it. ``threads`` is the row order everywhere (a GIL turn's
    ``row`` indexes it); ``selection`` is the report's rows and ``terminal_selection`` the
    summary's narrower cut of the same ranking."""

    model: RunModel
    threads: Sequence[ThreadTimeline]
    selection: ThreadSelection
    terminal_selection: ThreadSelection
    labels: Mapping[int, str]  # tid -> thread_label, for holders and waiters
    names: Mapping[int, str]  # tid -> the thread's name
    numbers: RunNumbers
    span_s: float  # where every time axis ends
    gil_recorded: bool
    gil_turns: Sequence[Segment]
    gil_waiters: GilWaiters
    where: WhereView | None = None  # None: the model attributed no time to stacks
    processes: ProcessTable | None = None  # None: a run of one process
    tasks: TasksView = field(default_factory=TasksView)  # pools and event loops


def build_view(model: RunModel) -> ReportView:
    """The view of ``model``: call once per render and pass it to every renderer."""
    ordered = ordered_threads(model)
    selection = select_threads(model, ordered=ordered)
    times, counts = gil_waiter_steps(model)
    labels = {t.tid: thread_label(t) for t in model.threads}
    return ReportView(
        model=model,
        threads=tuple(ordered),
        selection=selection,
        terminal_selection=selection.narrowed(TERMINAL_THREADS),
        labels=labels,
        names={t.tid: t.name for t in model.threads},
        numbers=run_numbers(model, ordered),
        span_s=run_end(model),
        gil_recorded=has_gil_data(model),
        gil_turns=tuple(gil_turns(ordered)),
        gil_waiters=GilWaiters(times, counts),
        where=build_where_view(model, ordered, labels),
        processes=process_table(model),
        tasks=build_tasks_view(model, labels),
    )


def as_view(source: RunModel | ReportView) -> ReportView:
    """The view a renderer was given, or one built for a caller that holds only the model (tests,
    the Python API). The pipeline passes the view it built, so nothing is computed twice."""
    return source if isinstance(source, ReportView) else build_view(source)


def run_numbers(model: RunModel, ordered: Sequence[ThreadTimeline]) -> RunNumbers:
    """The run's totals; ``ordered`` is the report's thread order (busy threads are named in it)."""
    totals: dict[str, float] = {}
    for thread in model.threads:
        for state, seconds in thread_state_seconds(thread).items():
            totals[state] = totals.get(state, 0.0) + seconds
    gil = model.metrics.gil
    cpu_s = model.metrics.cpu_s
    parallelism = model.metrics.parallelism
    if parallelism is None and model.wall_s > 0:
        parallelism = cpu_s / model.wall_s
    gil_measured = totals.get(RUNNING, 0.0) > 0 or totals.get(GIL_WAIT, 0.0) > 0
    waiters = gil.mean_waiters if gil else None
    if waiters is None and gil_measured and model.wall_s > 0:
        waiters = totals.get(GIL_WAIT, 0.0) / model.wall_s
    switches = gil.switches_per_s if gil else None
    return RunNumbers(
        threads=len(model.threads),
        wall_s=float(model.wall_s),
        cpu_s=cpu_s,
        cores=int(model.cores),
        parallelism=float(parallelism) if parallelism is not None else None,
        state_s=totals,
        gil_measured=gil_measured,
        busy_threads=_busy_threads(model.wall_s, ordered),
        mean_gil_waiters=float(waiters) if waiters is not None else None,
        gil_switches_per_s=float(switches) if switches is not None else None,
    )


def _busy_threads(wall_s: float, ordered: Sequence[ThreadTimeline]) -> list[str]:
    """Threads that wanted a CPU for a good part of the run (on a CPU or queued for the GIL)."""
    if wall_s <= 0:
        return []
    busy = []
    for thread in ordered:
        seconds = thread_state_seconds(thread)
        wanting = sum(seconds.get(s, 0.0) for s in (*ON_CPU_STATES, GIL_WAIT))
        if wanting >= BUSY_SHARE * wall_s:
            busy.append(thread.name)
    return busy
