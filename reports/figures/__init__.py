"""The report's Plotly figures, one module per figure, each reading only the view.

:mod:`~reports.figures.layout` holds what they share (the :class:`FigureSpec` html.py finishes
a figure from, the base layout, axes, bars); the interval algebra behind the budgets (merging,
binning, GIL turns) is in :mod:`reports.intervals`, which the Perfetto writer shares without
importing Plotly.
"""

from __future__ import annotations

from reports.figures.breakdown import breakdown_figure
from reports.figures.gil_detail import GIL_STRIP_BUDGET, gil_detail_figure
from reports.figures.gil_overview import gil_overview_figure
from reports.figures.layout import SEGMENT_BUDGET, FigureSpec
from reports.figures.locks import lock_wait_figure
from reports.figures.loops import loop_busy_figure, loop_tasks_figure
from reports.figures.parallelism import parallelism_figure
from reports.figures.tasks import queue_depth_figure, queue_wait_figure, task_gantt_figure
from reports.figures.timeline import timeline_figure
from reports.view import ReportView

__all__ = ["SEGMENT_BUDGET", "FigureSpec", "build_figures"]


def build_figures(view: ReportView, budget: int = SEGMENT_BUDGET) -> list[FigureSpec]:
    """The report's figures in page order; figures without data are left out."""
    candidates = [
        timeline_figure(view, budget),
        gil_detail_figure(view, min(budget, GIL_STRIP_BUDGET)),
        gil_overview_figure(view),
        lock_wait_figure(view),
        task_gantt_figure(view, budget),
        queue_depth_figure(view),
        queue_wait_figure(view),
        loop_busy_figure(view),
        loop_tasks_figure(view, budget),
        parallelism_figure(view),
        breakdown_figure(view),
    ]
    return [spec for spec in candidates if spec is not None]
