"""Questions the notebook scenarios ask of a recorded model, shared so every check reads markers,
threads and CPU time the same way.

Everything here works whether or not GIL states were recorded: "busy" means any on-CPU state
(``running``/``native`` from the exact GIL probes, or ``on_cpu`` from the OS sampler alone), so a
check gives the same verdict with or without perf.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios.base import Scenario
    from tracer.model.schema import Claim, Marker, RunModel, ThreadTimeline


def run_params(scenario: Scenario, model: RunModel) -> argparse.Namespace:
    """The parameters the recorded run was started with."""
    from scenarios.base import params_from_argv

    return params_from_argv(scenario, model.target.argv)


def not_checked(claim: str, why: str) -> Claim:
    """A claim the recording could not decide, with the reason (never a guess)."""
    from tracer.model.schema import Claim

    return Claim(claim=claim, held=None, detail=why)


def marks(model: RunModel, name: str) -> list[Marker]:
    """Every instant the program marked with ``name``, in time order."""
    found = [m for m in model.markers if m.kind == "mark" and m.name == name]
    return sorted(found, key=lambda m: m.start)


def phase_window(model: RunModel, name: str) -> tuple[float, float] | None:
    """Start and end (seconds from t0) of the first finished phase called ``name``."""
    from tracer.model.queries import phase

    found = phase(model, name)
    if found is None or found.end is None:
        return None
    return found.start, found.end


def thread_by_tid(model: RunModel, tid: int | None) -> ThreadTimeline | None:
    for thread in model.threads:
        if thread.tid == tid:
            return thread
    return None


def thread_called(model: RunModel, name: str) -> ThreadTimeline | None:
    """The target process's thread with exactly this name (the first, if several)."""
    for thread in model.threads:
        if thread.name == name:
            return thread
    return None


def target_pid(model: RunModel) -> int | None:
    for thread in model.threads:
        if thread.is_main:
            return thread.pid
    return model.threads[0].pid if model.threads else None


def busy_seconds(thread: ThreadTimeline, start: float | None = None,
                 end: float | None = None) -> float:
    """Seconds the thread spent on a CPU (with or without the GIL) inside the window."""
    from tracer.model.schema import ON_CPU_STATES

    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    return sum(max(0.0, min(i.end, hi) - max(i.start, lo))
               for i in thread.intervals if i.state in ON_CPU_STATES)


def window_cpu_seconds(model: RunModel, start: float, end: float) -> float | None:
    """CPU-seconds used by the target and its child processes between two instants, from the
    OS sampler's parallelism series (None when it did not run)."""
    from tracer.model.queries import mean_parallelism

    parallelism = mean_parallelism(model, start, end)
    return None if parallelism is None else parallelism * (end - start)


def states_note(model: RunModel) -> str:
    """Where the thread states came from, for a claim's detail."""
    source = model.figure_sources.get("thread_states", "missing")
    if source == "exact":
        return "states from the exact GIL probes"
    if source == "missing":
        return "no thread states recorded"
    return f"states {source} (on/off CPU; GIL ownership not recorded)"


def threads_started_in(model: RunModel, start: float, end: float) -> list[ThreadTimeline]:
    """Threads of the target process (not child processes) that began inside the window."""
    pid = target_pid(model)
    return [t for t in model.threads if t.pid == pid and not t.is_main
            and t.start_s is not None and start <= t.start_s <= end]


def child_pids(model: RunModel) -> set[int]:
    """Processes the target started (multiprocessing workers, subprocesses)."""
    pid = target_pid(model)
    return {p.pid for p in model.processes if p.pid != pid}


def compare_phases(model: RunModel, names: tuple[str, ...],
                   baseline: str = "sequential") -> dict[str, dict[str, float | None]]:
    """Side by side, for each phase that was recorded: wall seconds, CPU-seconds (every thread of
    the target and of its child processes), CPU parallelism, and speed-up over ``baseline``."""
    from tracer.model.queries import mean_parallelism

    base = phase_window(model, baseline)
    base_wall = base[1] - base[0] if base else None
    rows: dict[str, dict[str, float | None]] = {}
    for name in names:
        window = phase_window(model, name)
        if window is None:
            continue
        wall = window[1] - window[0]
        parallelism = mean_parallelism(model, *window)
        rows[name] = {
            "wall": wall,
            "cpu": None if parallelism is None else parallelism * wall,
            "parallelism": parallelism,
            "speedup": base_wall / wall if base_wall and wall > 0 else None,
        }
    return rows


def comparison_text(rows: dict[str, dict[str, float | None]]) -> str:
    """One line per model: 'threading: wall 1.20 s, CPU 1.18 s, parallelism 0.98, 1.01x'."""

    def number(value: float | None, unit: str = "", digits: int = 2) -> str:
        return "?" if value is None else f"{value:.{digits}f}{unit}"

    return "; ".join(
        f"{name}: wall {number(row['wall'], ' s')}, CPU {number(row['cpu'], ' s')}, "
        f"parallelism {number(row['parallelism'])}, speed-up {number(row['speedup'], 'x')}"
        for name, row in rows.items())


def in_process_tracer_note(model: RunModel) -> str:
    """When VizTracer ran, it slowed the target process but not the processes it spawned (they
    start clean): comparisons between the two flatter the child processes."""
    from tracer.raw_files import SourceName

    viztracer = model.sources.get(SourceName.VIZTRACER)
    if viztracer is None or not viztracer.used:
        return ""
    return ("; VizTracer slowed the traced process but not its worker processes, which "
            "flatters the workers: use --no-viztracer for a fair comparison")
