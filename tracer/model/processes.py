"""What each process of the recording used, and the run's thread and process phases.

A program that starts child processes (multiprocessing, a ProcessPoolExecutor, subprocesses)
asks the question threads ask, one level up: did the work spread over the cores? Each process
gets its CPU time (from the OS sampler, adding up to what ``/proc`` says), its threads, when it
was seen, and its own GIL's figures where a GIL source followed it. When a run has both a stretch
of work by its own threads and a stretch by its children (the notebook's "threading vs
multiprocessing"), the two stretches are measured as phases, so the report can compare them
with figures this run measured rather than with a general claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tracer.model.gil import GilResult
from tracer.model.schema import (
    ConcurrencyPhase,
    PhaseKind,
    ProcessGilFigures,
    ProcessInfo,
    Series,
    ThreadTimeline,
)

# A thread or child counts as a worker of a phase when it used this much CPU: the idle helper
# threads a pool or a multiprocessing queue starts are not the program's work.
WORKER_CPU_S = 0.02
WORKER_CPU_SHARE = 0.02  # ... or this share of the run's wall time, whichever is larger
# A phase shorter than this share of the run is not compared: its parallelism is mostly edges.
MIN_PHASE_SHARE = 0.05


def forked_children(processes: Sequence[ProcessInfo], pid: int,
                    gil_addresses: Mapping[int, int] | None = None,
                    target_gil: int | None = None) -> set[int]:
    """Descendants that are forks of the target, not new programs: their GIL keeps the target's
    address (the one perf's filter knows). Where the GIL sampler located a child's GIL
    (``gil_addresses``), that says it; otherwise a command line equal to the parent's (it did
    not exec), which the OS sampler may have read in the moment between a spawn's fork and
    its exec. A spawned interpreter has its GIL elsewhere: its GIL calls are not in perf's
    recording, so it gets no exact figures rather than wrong ones."""
    found = gil_addresses or {}
    if target_gil is not None and found:
        processes = [p for p in processes if found.get(p.pid, target_gil) == target_gil]
    by_pid = {p.pid: p for p in processes}
    forks: set[int] = set()
    changed = True
    while changed:
        changed = False
        for process in processes:
            parent = by_pid.get(process.ppid) if process.ppid is not None else None
            if (process.pid not in forks and process.pid != pid and parent is not None
                    and (parent.pid == pid or parent.pid in forks) and process.cmdline
                    and process.cmdline == parent.cmdline):
                forks.add(process.pid)
                changed = True
    return forks


def process_figures(processes: Sequence[ProcessInfo], threads: Sequence[ThreadTimeline],
                    process_cpu: dict[int, float] | None, gil: GilResult | None,
                    pid: int) -> list[ProcessInfo]:
    """``processes`` with their times, threads, CPU and GIL filled in, the target first; a
    process the sampler never listed but whose threads were recorded is added."""
    known = {p.pid: p for p in processes}
    for thread in threads:
        known.setdefault(thread.pid, ProcessInfo(thread.pid))
    known.setdefault(pid, ProcessInfo(pid))
    for process in known.values():
        mine = [t for t in threads if t.pid == process.pid]
        starts = [t.start_s for t in mine if t.start_s is not None]
        ends = [t.end_s for t in mine if t.end_s is not None]
        process.start_s = round(min(starts), 6) if starts else None
        process.end_s = round(max(ends), 6) if ends else None
        process.threads = len(mine)
        if process_cpu is not None:
            process.cpu_s = round(process_cpu.get(process.pid, sum(t.cpu_s for t in mine)), 6)
        process.gil = _gil(mine, gil, process.pid == pid, process.pid)
    return sorted(known.values(), key=lambda p: (p.pid != pid, p.start_s or 0.0, p.pid))


def _gil(threads: Sequence[ThreadTimeline], gil: GilResult | None, is_target: bool,
         pid: int) -> ProcessGilFigures | None:
    """The process's GIL figures: the target's from the run's GIL source, a child's from what
    followed it (the exact events alone count its waits but cannot say who held an
    uncontended GIL: its held time is then unknown)."""
    if gil is None or not (is_target or pid in gil.children):
        return None
    child = None if is_target else gil.children[pid]
    held_known = child is None or child.held_known
    return ProcessGilFigures(
        method=gil.method if child is None else child.method,
        held_s=round(sum(t.gil_held_s or 0.0 for t in threads), 6) if held_known else None,
        wait_s=round(sum(t.gil_wait_s or 0.0 for t in threads), 6),
        waits=sum(t.gil_waits or 0 for t in threads),
    )


def concurrency_phases(processes: Sequence[ProcessInfo], threads: Sequence[ThreadTimeline],
                       parallelism: Series | None, pid: int, wall_s: float
                       ) -> list[ConcurrencyPhase]:
    """The stretch in which child processes worked and the stretch, outside it, in which the
    target's own threads did; none without busy children (a threads-only run has no second
    phase to compare with)."""
    if parallelism is None or wall_s <= 0:
        return []
    least = max(WORKER_CPU_S, WORKER_CPU_SHARE * wall_s)
    children = [p for p in processes if p.pid != pid and (p.cpu_s or 0.0) >= least
                and p.start_s is not None and p.end_s is not None]
    if not children:
        return []
    start = min(p.start_s for p in children if p.start_s is not None)
    end = max(p.end_s for p in children if p.end_s is not None)
    if end - start < MIN_PHASE_SHARE * wall_s:
        return []
    phases = [_phase(PhaseKind.PROCESSES, start, end, len(children), parallelism)]
    workers = [t for t in threads if t.pid == pid and not t.is_main and t.cpu_s >= least
               and t.start_s is not None and t.end_s is not None]
    before = [t for t in workers if (t.end_s or 0.0) <= start + (end - start) / 2]
    after = [t for t in workers if (t.start_s or 0.0) >= end - (end - start) / 2]
    for group, clip in ((before, lambda s, e: (s, min(e, start))),
                        (after, lambda s, e: (max(s, end), e))):
        if not group:
            continue
        s, e = clip(min(t.start_s or 0.0 for t in group), max(t.end_s or 0.0 for t in group))
        if e - s >= MIN_PHASE_SHARE * wall_s:
            phases.append(_phase(PhaseKind.THREADS, s, e, len(group), parallelism))
    return sorted(phases, key=lambda p: p.start_s)


def _phase(kind: PhaseKind, start: float, end: float, workers: int,
           parallelism: Series) -> ConcurrencyPhase:
    cpu = _cpu_between(parallelism, start, end)
    return ConcurrencyPhase(kind=kind, start_s=round(start, 6), end_s=round(end, 6),
                            workers=workers, cpu_s=round(cpu, 6),
                            parallelism=round(cpu / (end - start), 4) if end > start else 0.0)


def _cpu_between(series: Series, start: float, end: float) -> float:
    """CPU-seconds of the parallelism curve between two times (bins cut where they overlap)."""
    total = 0.0
    for t, value in zip(series.t, series.values, strict=False):
        overlap = min(t + series.bin_s, end) - max(t, start)
        if overlap > 0:
            total += value * overlap
    return total
