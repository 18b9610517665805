"""Questions asked of a finished model (by scenario checks and the explanation): pure functions."""

from __future__ import annotations

from tracer.model.schema import Marker, RunModel, ThreadTimeline


def phase(model: RunModel, name: str) -> Marker | None:
    """The first phase marker called ``name``, if the program left one."""
    for marker in model.markers:
        if marker.kind == "phase" and marker.name == name and marker.end is not None:
            return marker
    return None


def phase_seconds(model: RunModel, name: str) -> float | None:
    found = phase(model, name)
    return None if found is None or found.end is None else found.end - found.start


def mean_parallelism(model: RunModel, start: float, end: float) -> float | None:
    """Mean CPU parallelism between two instants, from the binned series (bins weighted by
    their overlap with the window)."""
    series = model.parallelism
    if series is None or end <= start:
        return None
    total = 0.0
    for t, value in zip(series.t, series.values, strict=False):
        overlap = min(end, t + series.bin_s) - max(start, t)
        if overlap > 0:
            total += value * overlap
    return total / (end - start)


def phase_parallelism(model: RunModel, name: str) -> float | None:
    found = phase(model, name)
    if found is None or found.end is None:
        return None
    return mean_parallelism(model, found.start, found.end)


def threads_named(model: RunModel, prefix: str) -> list[ThreadTimeline]:
    return [t for t in model.threads if t.name.startswith(prefix)]


def marks_named(model: RunModel, name: str) -> list[Marker]:
    return [m for m in model.markers if m.kind == "mark" and m.name == name]
