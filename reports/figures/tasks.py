"""The "Tasks" section's figures: every pool work item on the worker that ran it (a Gantt
chart), each pool's queue depth over time, and how long tasks waited for a free worker."""

from __future__ import annotations

import plotly.graph_objects as go

from reports.figures.layout import (
    FigureSpec,
    base_layout,
    esc,
    row_axis,
    rows_height,
    shorten,
    time_axis,
)
from reports.format import fmt_seconds
from reports.tasks_view import PoolView, Worker, worker_of
from reports.view import ReportView
from reports.vocabulary import (
    QUEUE_WAIT_COLOUR,
    TASK_OUTCOME_COLOURS,
    task_outcome_words,
)
from tracer.model.schema import Task, TaskKind, TaskOutcome

# Points of a queue-depth curve drawn per pool; past it the curve keeps each bin's peak.
DEPTH_POINTS = 4_000
WAIT_BINS = 30


def task_hover(task: Task, senders: dict[tuple[int, int], str], worker: str) -> str:
    """Everything about one task, escaped (names and paths come from the user's code);
    ``senders`` names the asyncio task that sent a work item to the pool (to_thread),
    ``worker`` is the row's worker as the report names it."""
    sender = senders.get((task.pid, task.parent)) if task.parent else None
    lines = [f"<b>{esc(task.name)}</b> ({esc(task.pool)})",
             esc(f"{task.function}  {task.site}" if task.site else task.function),
             f"submitted at {task.submit_s:.3f} s",
             f"queue wait {fmt_seconds(task.queue_wait_s)}",
             f"ran {fmt_seconds(task.run_s)} on {esc(worker)}",
             esc(task_outcome_words(task.outcome)
                 + (f" {task.error}" if task.outcome is TaskOutcome.ERROR and task.error else ""))]
    if sender is not None:
        lines.append(esc(f"sent by asyncio task {sender}"))
    return "<br>".join(lines)


def _gantt_rows(pools: list[PoolView]) -> tuple[list[str], dict[tuple[int, Worker], int]]:
    labels: list[str] = []
    rows: dict[tuple[int, Worker], int] = {}
    for number, pool in enumerate(pools):
        for worker in pool.workers:
            rows[(number, worker)] = len(labels)
            labels.append(esc(shorten(f"{pool.stats.name}: {pool.worker_labels[worker]}")))
    return labels, rows


def task_gantt_figure(view: ReportView, budget: int) -> FigureSpec | None:
    """Each pool task as a bar on its worker (thread, or a process pool's worker process),
    coloured by how it ended; the queue wait before it is drawn as a thin bar on the same row,
    so a task that waited shows its wait."""
    pools = [p for p in view.tasks.pools if p.workers]
    if not pools:
        return None
    labels, rows = _gantt_rows(pools)
    senders = {(t.pid, t.id): t.name for t in view.model.tasks if t.kind is TaskKind.ASYNCIO}
    # (row, the worker's name, task)
    ran = [(rows[(number, worker)], pool.worker_labels[worker], task)
           for number, pool in enumerate(pools)
           for task in pool.started if (worker := worker_of(task)) is not None]
    total = len(ran)
    if total > budget:  # the longest ones: the others are in trace.json and model.json
        ran = sorted(ran, key=lambda item: -(item[2].run_s or 0.0))[:budget]
    figure = go.Figure()
    for outcome, colour in TASK_OUTCOME_COLOURS.items():
        chosen = [entry for entry in ran if entry[2].outcome is outcome]
        if not chosen:
            continue
        figure.add_trace(go.Bar(
            orientation="h", name=task_outcome_words(outcome),
            y=[row for row, _, _ in chosen],
            base=[t.start_s for _, _, t in chosen],
            x=[round((t.end_s if t.end_s is not None else view.span_s) - (t.start_s or 0.0), 7)
               for _, _, t in chosen],
            marker={"color": colour, "line": {"width": 0.5, "color": "#ffffff"}}, width=0.7,
            hovertext=[task_hover(t, senders, worker) for _, worker, t in chosen],
            hovertemplate="%{hovertext}<extra></extra>"))
    waited = [entry for entry in ran if (entry[2].queue_wait_s or 0.0) > 0]
    if waited:
        figure.add_trace(go.Bar(
            orientation="h", name="waiting in the queue",
            y=[row + 0.42 for row, _, _ in waited],
            base=[t.submit_s for _, _, t in waited], x=[t.queue_wait_s for _, _, t in waited],
            marker={"color": QUEUE_WAIT_COLOUR, "opacity": 0.6}, width=0.12,
            hovertext=[task_hover(t, senders, worker) for _, worker, t in waited],
            hovertemplate="%{hovertext}<extra></extra>"))
    title = "Pool tasks on their workers"
    note = ""
    if total > len(ran):
        title += f" (the {len(ran):,} longest of {total:,})"
        note = (f"{total - len(ran):,} shorter tasks are not drawn; every task is in trace.json "
                "and model.json.")
    layout = base_layout(title, rows_height(len(labels), 34, 170))
    layout.update(barmode="overlay", xaxis=time_axis(view.span_s), yaxis=row_axis(labels))
    figure.update_layout(layout)
    return FigureSpec("fig-task-gantt", figure, labels, note=note, aggregated=total > len(ran))


def _peaks(times: list[float], depths: list[int], span: float) -> tuple[list[float], list[int]]:
    """A step curve of at most DEPTH_POINTS points: each bin keeps its highest depth."""
    if len(times) <= DEPTH_POINTS or span <= 0:
        return times, depths
    width = span / (DEPTH_POINTS // 2)
    out_t: list[float] = []
    out_d: list[int] = []
    for t, d in zip(times, depths):
        start = int(t / width) * width
        if out_t and out_t[-1] == start:
            out_d[-1] = max(out_d[-1], d)
        else:
            out_t.append(start)
            out_d.append(d)
    return out_t, out_d


def queue_depth_figure(view: ReportView) -> FigureSpec | None:
    """Tasks waiting in each pool's queue over time (a process pool whose workers were not
    recorded: submitted and not done, what was in flight)."""
    pools = [p for p in view.tasks.pools if p.stats.depth_t]
    if not pools:
        return None
    figure = go.Figure()
    for pool in pools:
        times, depths = _peaks(pool.stats.depth_t, pool.stats.depth, view.span_s)
        name = pool.stats.name + ("" if pool.stats.starts_seen else " (in flight)")
        figure.add_trace(go.Scatter(
            x=times, y=depths, name=esc(name), mode="lines", line={"shape": "hv", "width": 2},
            hovertemplate=esc(name) + ": %{y} at %{x:.3f} s<extra></extra>"))
    layout = base_layout("Tasks waiting in each pool's queue", 300)
    layout.update(xaxis=time_axis(view.span_s),
                  yaxis={"title": {"text": "tasks queued"}, "rangemode": "tozero"})
    figure.update_layout(layout)
    return FigureSpec("fig-queue-depth", figure)


def queue_wait_figure(view: ReportView) -> FigureSpec | None:
    """How long tasks waited between submit and start, per pool, in equal bins."""
    waits = {p.stats.name: [t.queue_wait_s for t in p.started if t.queue_wait_s is not None]
             for p in view.tasks.pools if p.started}
    values = [w for ws in waits.values() for w in ws]
    if not values:
        return None
    top = max(values)
    width = top / WAIT_BINS if top > 0 else 1e-3
    figure = go.Figure()
    for name, ws in waits.items():
        counts = [0] * WAIT_BINS
        for w in ws:
            counts[min(int(w / width), WAIT_BINS - 1)] += 1
        figure.add_trace(go.Bar(
            name=esc(name), x=[round((i + 0.5) * width, 7) for i in range(WAIT_BINS)], y=counts,
            width=width * 0.9,
            hovertext=[f"{esc(name)}: {c} tasks waited {fmt_seconds(i * width)}-"
                       f"{fmt_seconds((i + 1) * width)}" for i, c in enumerate(counts)],
            hovertemplate="%{hovertext}<extra></extra>"))
    layout = base_layout("How long tasks waited for a free worker (submit to start)", 300)
    layout.update(barmode="stack",
                  xaxis={"title": {"text": "queue wait (s)"}, "ticksuffix": " s",
                         "rangemode": "tozero"},
                  yaxis={"title": {"text": "tasks"}, "rangemode": "tozero"})
    figure.update_layout(layout)
    return FigureSpec("fig-queue-wait", figure)
