"""The "Event loop" section's figures: how busy each loop was over time with its blocked steps
marked, and a timeline of its tasks (rows = tasks, bars = the steps the loop ran them,
folded past a budget like threads)."""

from __future__ import annotations

import plotly.graph_objects as go

from reports import prose
from reports.figures.layout import (
    FigureSpec,
    PlotlyDict,
    base_layout,
    esc,
    row_axis,
    rows_height,
    shorten,
    time_axis,
)
from reports.format import fmt_seconds
from reports.tasks_view import LoopView
from reports.view import ReportView
from reports.vocabulary import (
    LOOP_BLOCKED_COLOUR,
    LOOP_BUSY_COLOUR,
    TASK_STEP_COLOUR,
    TASK_WAITING_COLOUR,
    task_outcome_words,
)
from tracer.model.schema import BlockedStep, Task

# Blocked steps drawn as bands; more would clutter the curve (all are in the table and JSON).
BLOCKED_BANDS = 200
LOOP_ROW_BUDGET = 90  # rows of the task timeline over all loops: two full loops (TASK_ROWS + 1)


def blocked_hover(step: BlockedStep) -> str:
    frames = [esc(f.label) for f in reversed(step.stack[-8:])]
    lines = [f"<b>blocked {fmt_seconds(step.end_s - step.start_s)}</b> at {step.start_s:.3f} s",
             esc(f"task {step.task}" if step.task else "a callback, not a task"),
             esc(prose.step_code_words(step)), *frames]
    return "<br>".join(lines)


def loop_busy_figure(view: ReportView) -> FigureSpec | None:
    """Each loop's busy share per bin, with its blocked steps as red bars under the curve."""
    loops = [loop for loop in view.tasks.loops if loop.stats.busy is not None]
    if not loops:
        return None
    figure = go.Figure()
    for loop in loops:
        busy = loop.stats.busy
        assert busy is not None
        figure.add_trace(go.Scatter(
            x=busy.t, y=busy.values, name=esc(f"busy: {loop.label}"), mode="lines",
            line={"shape": "hv", "color": LOOP_BUSY_COLOUR, "width": 1.5}, fill="tozeroy",
            hovertemplate="%{y:.0%} busy from %{x:.3f} s<extra></extra>"))
        blocked = sorted(loop.stats.blocked, key=lambda b: b.start_s - b.end_s)[:BLOCKED_BANDS]
        if blocked:
            figure.add_trace(go.Bar(
                orientation="h", name="blocked step", y=[-0.08] * len(blocked),
                base=[b.start_s for b in blocked], x=[b.end_s - b.start_s for b in blocked],
                marker={"color": LOOP_BLOCKED_COLOUR}, width=0.1,
                hovertext=[blocked_hover(b) for b in blocked],
                hovertemplate="%{hovertext}<extra></extra>"))
    bin_s = loops[0].stats.busy.bin_s if loops[0].stats.busy else 0.0
    layout = base_layout(f"Event loop busy share ({fmt_seconds(bin_s)} bins); red: steps that "
                         "blocked it", 300)
    layout.update(xaxis=time_axis(view.span_s),
                  yaxis={"title": {"text": "busy"}, "tickformat": ".0%", "range": [-0.16, 1.05]})
    figure.update_layout(layout)
    return FigureSpec("fig-loop-busy", figure)


def _task_hover(task: Task) -> str:
    lines = [f"<b>{esc(task.name)}</b>", esc(f"{task.function}  {task.site}"),
             f"created at {task.submit_s:.3f} s, first step after "
             f"{fmt_seconds(task.queue_wait_s)}",
             f"{len(task.steps)} steps, {fmt_seconds(task.run_s)} on the loop in all",
             esc(task_outcome_words(task.outcome) + (f" {task.error}" if task.error else ""))]
    return "<br>".join(lines)


def _rows(loop: LoopView, prefix: str) -> tuple[list[str], list[list[Task]]]:
    labels = [esc(shorten(f"{prefix}{t.name}: {t.function}")) for t in loop.rows]
    groups = [[t] for t in loop.rows]
    if loop.folded:
        labels.append(esc(f"{prefix}{len(loop.folded)} other tasks"))
        groups.append(list(loop.folded))
    return labels, groups


def _loop_rows(loops: list[LoopView]) -> tuple[list[str], list[list[Task]], int]:
    """Every loop's rows, loop after loop, named with their loop when there are several, up to
    LOOP_ROW_BUDGET rows (the first loop always); and how many loops that drew."""
    labels: list[str] = []
    groups: list[list[Task]] = []
    drawn = 0
    for loop in loops:
        more_labels, more_groups = _rows(loop, f"{loop.label} · " if len(loops) > 1 else "")
        if labels and len(labels) + len(more_labels) > LOOP_ROW_BUDGET:
            break
        labels += more_labels
        groups += more_groups
        drawn += 1
    return labels, groups, drawn


def loop_tasks_figure(view: ReportView, budget: int) -> FigureSpec | None:
    """One row per task (the busiest TASK_ROWS of each loop, the rest of a loop on one row):
    its life in grey, each step the loop ran it in green."""
    loops = [loop for loop in view.tasks.loops if loop.rows]
    if not loops:
        return None
    labels, groups, loops_drawn = _loop_rows(loops)
    life_y: list[int] = []
    life_base: list[float] = []
    life_x: list[float] = []
    life_text: list[int] = []
    step_y: list[int] = []
    step_base: list[float] = []
    step_x: list[float] = []
    step_text: list[int] = []
    hovers: list[str] = []
    drawn = 0
    for row, tasks in enumerate(groups):
        for task in tasks:
            end = task.end_s if task.end_s is not None else view.span_s
            life_y.append(row)
            life_base.append(task.submit_s)
            life_x.append(round(end - task.submit_s, 7))
            life_text.append(len(hovers))
            hovers.append(_task_hover(task))
            for start, stop in task.steps:
                if drawn >= budget:
                    break
                step_y.append(row)
                step_base.append(start)
                step_x.append(round(max(stop - start, 0.0), 7))
                step_text.append(len(hovers) - 1)
                drawn += 1
    total = sum(len(t.steps) for ts in groups for t in ts)
    figure = go.Figure()
    figure.add_trace(go.Bar(
        orientation="h", name="alive, awaiting", y=life_y, base=life_base, x=life_x,
        marker={"color": TASK_WAITING_COLOUR}, width=0.3,
        hovertext=[hovers[i] for i in life_text], hovertemplate="%{hovertext}<extra></extra>"))
    figure.add_trace(go.Bar(
        orientation="h", name="running a step", y=step_y, base=step_base, x=step_x,
        marker={"color": TASK_STEP_COLOUR}, width=0.7,
        hovertext=[hovers[i] for i in step_text], hovertemplate="%{hovertext}<extra></extra>"))
    title = f"Tasks of the event loop on {esc(loops[0].label)}" if len(loops) == 1 else \
        f"Tasks of {len(loops)} event loops"
    notes = []
    if loops_drawn < len(loops):
        notes.append(f"{loops_drawn} of {len(loops)} event loops drawn (a row budget of "
                     f"{LOOP_ROW_BUDGET}); every loop's tasks are in trace.json and model.json.")
    if total > drawn:
        notes.append(f"{drawn:,} of {total:,} steps drawn; every step is in trace.json and "
                     "model.json.")
    note = " ".join(notes)
    layout: PlotlyDict = base_layout(title, rows_height(len(labels), 26, 170))
    layout.update(barmode="overlay", xaxis=time_axis(view.span_s), yaxis=row_axis(labels))
    figure.update_layout(layout)
    return FigureSpec("fig-loop-tasks", figure, labels, note=note,
                      aggregated=total > drawn or loops_drawn < len(loops))
