"""CPU parallelism over time (CPU-seconds per wall-second, from the OS sampler) against one
core's worth, the machine's cores and the run's mean.

No bin is drawn above the machine's cores, which no run can exceed. The OS sampler reads each
thread's CPU time at its ticks, so a late tick moves CPU time from one bin into the next: on 2
cores a bin can read 3.6 while its neighbour reads 0.4. The figure first widens its bins (whole
multiples of the sampler's) until none reads above the cores, and says so; when that would take
more than ``MAX_MERGE`` of them, it keeps the sampler's bins, draws those above the cores at the
cores and says how many it capped.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from reports.figures.layout import (
    FigureSpec,
    base_layout,
    marker_decorations,
    reference_line,
    time_axis,
)
from reports.format import fmt_bin, plural
from reports.view import ReportView
from reports.vocabulary import state_colour
from tracer.model.schema import ON_CPU, Series

# Sampler bins merged into one drawn bin at most: jitter moves CPU time between neighbouring bins,
# so two or three usually absorb it; wider than 8 the curve loses the phases it is there to show.
MAX_MERGE = 8
# Values are stored to 4 decimals: a bin at the cores plus rounding is not above them.
CORE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class DrawnParallelism:
    """The series as drawn: ``merged`` sampler bins per drawn bin, ``capped`` drawn bins that
    read above the cores (drawn at the cores), ``measured`` what each drawn bin read."""

    bin_s: float
    t: list[float]
    values: list[float]
    measured: list[float]
    merged: int
    capped: int
    above: int  # sampler bins that read above the cores
    peak: float  # the highest sampler bin


def _merge(series: Series, width: int, offset: int) -> tuple[list[float], list[float]]:
    """Bins ``width`` sampler bins wide, the first ``offset`` bins wide (so that every
    alignment can be tried): each the CPU-seconds of its bins over its wall time."""
    starts = [0, *range(offset, len(series.values), width)] if offset else \
        list(range(0, len(series.values), width))
    ts, values = [], []
    for first, stop in zip(starts, [*starts[1:], len(series.values)], strict=True):
        chunk = series.values[first:stop]
        ts.append(series.t[first])
        values.append(round(sum(chunk) / len(chunk), 4))
    return ts, values


def fit_to_cores(series: Series, cores: int) -> DrawnParallelism:
    """The widest-resolution drawing of ``series`` in which no bin is above ``cores``."""
    count = min(len(series.t), len(series.values))
    series = Series(series.bin_s, list(series.t[:count]), list(series.values[:count]))
    values = [float(v) for v in series.values]
    peak = max(values, default=0.0)
    limit = cores + CORE_TOLERANCE
    above = sum(1 for v in values if v > limit)
    if cores <= 0 or above == 0:
        return DrawnParallelism(series.bin_s, list(series.t), values, values, 1, 0, 0, peak)
    for width in range(2, MAX_MERGE + 1):
        if width >= len(values):
            break
        for offset in range(width):
            ts, merged = _merge(series, width, offset)
            if max(merged) <= limit:
                return DrawnParallelism(series.bin_s * width, ts, merged, merged, width, 0,
                                        above, peak)
    capped = [min(v, float(cores)) for v in values]
    return DrawnParallelism(series.bin_s, list(series.t), capped, values, 1, above, above, peak)


def fit_note(drawn: DrawnParallelism, sampler_bin_s: float, cores: int) -> str:
    """What the figure did to keep every bin within the cores ("" when nothing was needed)."""
    if not drawn.above:
        return ""
    read = (f"{plural(drawn.above, 'bin')} of {fmt_bin(sampler_bin_s)} read above the machine's "
            f"{plural(cores, 'core')} (up to {drawn.peak:.2f}), more CPU time than the cores can "
            "give")
    if drawn.capped:
        return (f"{read}, even in bins up to {MAX_MERGE} times wider. "
                f"{'It is' if drawn.capped == 1 else 'They are'} drawn capped at {cores}; the "
                "hover gives what each capped bin read.")
    return (f"Drawn in {fmt_bin(drawn.bin_s)} bins ({drawn.merged} of the sampler's each): at "
            f"{fmt_bin(sampler_bin_s)}, {read}. The sampler reads CPU time at its ticks, so a "
            "late tick moves CPU time from one bin into the next; at this width no bin is above "
            "the cores.")


def parallelism_figure(view: ReportView) -> FigureSpec | None:
    """CPU-seconds per wall-second over time against one core and the machine's cores."""
    model = view.model
    series = model.parallelism
    if series is None or not series.t or not series.values:
        return None
    cores = int(model.cores)
    drawn = fit_to_cores(series, cores)
    end = series.t[min(len(series.t), len(series.values)) - 1] + series.bin_s
    span = max(view.span_s, end)
    xs = [*drawn.t, end]
    ys = [*drawn.values, drawn.values[-1]]
    texts = [
        f"{value:.2f} cores busy from {t:.3f} s" + (
            f" (read {read:.2f}, above the {cores} cores: drawn at {cores})"
            if read > value + CORE_TOLERANCE else "")
        for t, value, read in zip(drawn.t, drawn.values, drawn.measured, strict=True)
    ]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            name="CPU parallelism",
            mode="lines",
            line={"shape": "hv", "color": state_colour(ON_CPU), "width": 2},
            fill="tozeroy",
            fillcolor="rgba(0,114,178,0.12)",
            hovertext=[*texts, texts[-1]],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    reference_line(figure, span, float(cores), f"{cores} cores (this machine)", "dash")
    reference_line(figure, span, 1.0, "1.0 = one core's worth", "dot")
    mean = model.metrics.parallelism
    if mean is not None:
        if cores > 0 and mean > cores + CORE_TOLERANCE:
            reference_line(figure, span, float(cores),
                           f"run mean {mean:.2f}, above the cores: drawn at {cores}", "dashdot")
        else:
            reference_line(figure, span, mean, f"run mean {mean:.2f}", "dashdot")
    shapes, notes = marker_decorations(model.markers)
    top = max([float(cores), 1.0, *drawn.values]) * 1.15
    layout = base_layout(f"CPU parallelism over time ({fmt_bin(drawn.bin_s)} bins)", 340)
    layout.update(
        xaxis=time_axis(span),
        yaxis={"title": {"text": "cores busy (CPU-s per s)"}, "range": [0, top]},
        shapes=shapes,
        annotations=notes,
    )
    figure.update_layout(layout)
    return FigureSpec("fig-parallelism", figure, note=fit_note(drawn, series.bin_s, cores))
