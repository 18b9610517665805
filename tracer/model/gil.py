"""Who held the GIL and who waited for it: from the best source a run has.

Exact (perf: the GIL's futex calls and context switches) wins over sampled (the out-of-process GIL
sampler). The exact events prove every wait and every hold that contention brackets; holds nobody
waited for leave no event, and those stretches take the sampler's view when it ran
(:mod:`tracer.model.gil_fill`). With neither source, the model keeps the OS view (on/off CPU) and
says GIL ownership was not measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tracer import raw_files
from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model.blocked import SyscallSamples, syscall_samples
from tracer.model.gil_events import EventColumns
from tracer.model.gil_exact import UprobeRecording, gil_metrics, reconstruct_columns
from tracer.model.gil_fill import fill_from_samples
from tracer.model.perf_text import read_perf_events
from tracer.model.rawfiles import read_json
from tracer.model.schema import GilRunFigures, Interval, Method
from tracer.model.side_by_side import Pending
from tracer.raw_files import BudgetCut, SourceName


@dataclass(frozen=True)
class WaitFigures:
    """A thread's GIL waits as the exact events counted them (not re-derived from intervals)."""

    waits: int  # requests that found the GIL held and slept for it
    wait_s: float
    max_wait_s: float


@dataclass
class ProcessGil:
    """One child process's GIL (each process has its own): from the exact events when perf
    followed it (a fork), from the GIL sampler when it followed it, or both (the sampler then
    settles the stretches no event did, as for the target)."""

    timelines: dict[int, list[Interval]]  # tid -> states, seconds from t0
    wait_figures: dict[int, WaitFigures] = field(default_factory=dict)
    method: Method = Method.EXACT
    held_known: bool = False  # whether its holders were told (sampled, or exact and filled)


@dataclass
class GilResult:
    method: Method  # exact | sampled
    source: SourceName  # the recorder it came from
    timelines: dict[int, list[Interval]]  # tid -> states, seconds from t0
    figures: GilRunFigures | None = None  # run-wide figures, once load_gil has computed them
    acquisitions_per_s: float | None = None  # sampled: GIL turns the counters saw
    held_sampled_share: float = 0.0  # exact: share of on-CPU time the sampler settled
    wait_figures: dict[int, WaitFigures] = field(default_factory=dict)  # exact only
    notes: list[str] = field(default_factory=list)  # for the source's notes in the model
    # The GIL sampler's syscall samples, what blocked threads slept in (None: it did not run)
    syscalls: SyscallSamples | None = None
    warnings: list[str] = field(default_factory=list)  # for the model's warnings
    # pid -> a child's GIL: exact for forks perf followed (their GIL keeps the target's
    # address, which perf's filter knows), sampled for the children the GIL sampler followed
    children: dict[int, ProcessGil] = field(default_factory=dict)

    @property
    def holder_method(self) -> Method:
        """How uncontended holders were told: sampled when exact events left stretches to the
        sampler (waits and contended hand-offs stay exact)."""
        if self.method == Method.EXACT and self.held_sampled_share > 0:
            return Method.SAMPLED
        return self.method


def load_gil(raw_dir: Path, thread_events: list[dict[str, Any]], pid: int, t0_ns: int,
             end_ns: int, prefer_exact: bool = True,
             forks: Collection[int] = ()) -> GilResult | None:
    """The run's GIL result; ``forks`` are the children whose GIL is at the target's address
    (:func:`tracer.model.processes.forked_children`): perf's filtered events speak for those
    only, since a spawned interpreter's GIL calls never passed the filter (its context switches
    did, and alone they would read as a GIL nobody waited for)."""
    with GilReading(raw_dir, thread_events, pid, t0_ns, end_ns, prefer_exact) as reading:
        return reading.finish(forks)


class GilReading:
    """:func:`load_gil` in two steps, so that the caller's other work overlaps the slowest part.

    With exact events for the whole run, the samples only fill on-CPU stretches (their wait
    bounds would go unused), and creating this starts reading them in a child process
    (:mod:`tracer.model.side_by_side`) while the caller goes on; :meth:`finish` reads the
    events. Otherwise the samples are the GIL figures, read in :meth:`finish`, where their
    threads are split across cores. Use as a context manager: leaving it stops the child."""

    def __init__(self, raw_dir: Path, thread_events: list[dict[str, Any]], pid: int,
                 t0_ns: int, end_ns: int, prefer_exact: bool = True) -> None:
        self._where = (raw_dir, thread_events, pid, t0_ns, end_ns)
        self._prefer_exact = prefer_exact
        self._cut = _budget_cut(raw_dir, t0_ns)
        perf_text = raw_dir / raw_files.PERF_TEXT
        self._exact_whole = (prefer_exact and end_ns > t0_ns and perf_text.is_file()
                             and (self._cut is None or not perf_text.stat().st_size))
        self._samples = (Pending(partial(_sampled, *self._where, with_evidence=False))
                         if self._exact_whole else None)

    def __enter__(self) -> GilReading:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._samples is not None:
            self._samples.cancel()

    def finish(self, forks: Collection[int] = ()) -> GilResult | None:
        raw_dir, _, pid, t0_ns, end_ns = self._where
        wall_s = (end_ns - t0_ns) / 1e9
        if wall_s <= 0:
            return None
        warnings: list[str] = []
        cut = self._cut
        if self._samples is not None:
            result = _exact(raw_dir, pid, t0_ns, end_ns, warnings, forks)
            sampled = self._samples.result()
            if result is None:  # no events after all: the samples are the figures
                sampled = _sampled(*self._where)
        elif cut is not None and self._prefer_exact and (raw_dir / raw_files.PERF_TEXT).is_file():
            # Exact events cover only the start of the run: the sampler speaks for all of it,
            # so the events are read only when it did not run (a minute of them took 40 s to
            # read, only to be set aside).
            sampled = _sampled(*self._where)
            result = None if sampled is not None else _exact(raw_dir, pid, t0_ns, end_ns,
                                                             warnings, forks)
            if sampled is not None or result is not None:
                warnings.append(cut + (" GIL figures are sampled." if sampled is not None else
                                       " The GIL sampler did not run, so the GIL figures cover "
                                       "only that first part of the run."))
        else:
            result = None
            sampled = _sampled(*self._where)
        return _combined(result, sampled, warnings, wall_s)


def _combined(result: GilResult | None, sampled: GilResult | None, warnings: list[str],
              wall_s: float) -> GilResult | None:
    """The exact result with the samples' fill (or the samples alone), and its figures."""
    if result is None:
        result = sampled
    elif sampled is not None:
        _fill(result, sampled)
        result.syscalls = sampled.syscalls
        _fill_children(result, sampled)
    if result is None:
        return None
    result.warnings[:0] = warnings
    figures = gil_metrics(result.timelines, wall_s)
    result.figures = GilRunFigures(
        method=result.method, utilisation=round(figures.utilisation, 4),
        mean_waiters=round(figures.mean_waiters, 4),
        switches_per_s=round(figures.switches_per_s, 4),
        acquisitions_per_s=result.acquisitions_per_s,
        held_sampled_share=result.held_sampled_share)
    return result


def _exact(raw_dir: Path, pid: int, t0_ns: int, end_ns: int,
           warnings: list[str], forks: Collection[int] = ()) -> GilResult | None:
    path = raw_dir / raw_files.PERF_TEXT
    if not path.is_file():
        return None
    layout = read_json(raw_dir / raw_files.GIL_LAYOUT)
    if not isinstance(layout, dict) or "gil_addr" not in layout:
        raise CorruptRecording(f"{path} needs {raw_dir / raw_files.GIL_LAYOUT} (the GIL's "
                               "address), which is missing or has no gil_addr")
    words = FutexWords(int(layout["gil_addr"]), int(layout.get("head_size", 32)))
    try:
        events = read_perf_events(path, words)
    except UprobeRecording as exc:
        warnings.append(str(exc))
        return None
    except OSError as exc:
        raise CorruptRecording(f"cannot read {path}: {exc}") from exc
    if not len(events):
        return None
    mine = _process_gil(events.of_process(pid), t0_ns, end_ns)
    result = GilResult(Method.EXACT, SourceName.PERF, mine.timelines,
                       wait_figures=mine.wait_figures)
    result.children = {child: _process_gil(events.of_process(child), t0_ns, end_ns)
                       for child in events.pids() if child != pid and child in forks}
    return result


def _process_gil(events: EventColumns, t0_ns: int, end_ns: int) -> ProcessGil:
    """One process's threads' states and waits, from its events alone."""
    threads = reconstruct_columns(events, t0_ns, end_ns)
    out = ProcessGil({tid: t.intervals for tid, t in threads.items()})
    for tid, thread in threads.items():
        spans = [min(w.end_ns, end_ns) - max(w.start_ns, t0_ns) for w in thread.waits]
        out.wait_figures[tid] = WaitFigures(
            waits=sum(w.slept for w in thread.waits),
            wait_s=sum(spans) / 1e9,
            max_wait_s=max(spans, default=0) / 1e9,
        )
    return out


def _budget_cut(raw_dir: Path, t0_ns: int) -> str | None:
    """The sentence saying exact recording stopped early to stay within its cost, if it did."""
    cut = BudgetCut.load(raw_dir)
    if cut is None:
        return None
    return (f"Exact GIL recording stopped {max(0.0, (cut.t_ns - t0_ns) / 1e9):.2f} s into the run "
            f"to keep its cost within budget: {cut.reason}.")


def _fill_children(exact: GilResult, sampled: GilResult) -> None:
    """A child both recorders followed takes the sampler's view where no event settled it;
    one only the sampler followed is sampled."""
    for pid, child in sampled.children.items():
        mine = exact.children.get(pid)
        if mine is None:
            exact.children[pid] = child
            continue
        mine.timelines, _ = fill_from_samples(mine.timelines, child.timelines)
        mine.held_known = True


def _fill(exact: GilResult, sampled: GilResult) -> None:
    """Settle the exact timeline's unknown on-CPU stretches from the sampler (see gil_fill)."""
    exact.timelines, summary = fill_from_samples(exact.timelines, sampled.timelines)
    exact.held_sampled_share = round(summary.sampled_share, 4)
    if summary.filled_s > 0:
        exact.notes.append(
            f"GIL waits and contended hand-offs are exact; {summary.sampled_share:.0%} of the "
            f"threads' on-CPU time ({summary.filled_s:.3f} s, stretches in which nobody waited "
            "for the GIL, so no event says who held it) takes the GIL sampler's view.")


def _sampled(raw_dir: Path, thread_events: list[dict[str, Any]], pid: int, t0_ns: int,
             end_ns: int, with_evidence: bool = True) -> GilResult | None:
    path = raw_dir / raw_files.GIL_SAMPLES
    if not path.is_file():
        return None
    from tracer.model import gil_sampled  # here: gil_sampled imports this module

    every = gil_sampled.load_gil_samples(path)
    by_pid: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for sample in every:
        by_pid[sample["pid"]].append(sample)
    samples = by_pid.pop(None, [])
    if not samples:
        return None
    tick_ns = gil_sampled.tick_cost_ns(path)
    tstates = gil_sampled.tstate_map(thread_events, pid)
    analysed = gil_sampled.analyse_samples(samples, tstates, t0_ns, end_ns, tick_ns,
                                           with_evidence)
    switches = gil_sampled.sampled_switches(samples, t0_ns, end_ns)
    result = gil_sampled.SampledGilResult(
        Method.SAMPLED, SourceName.GIL_SAMPLER, analysed.timelines,
        acquisitions_per_s=round(switches / ((end_ns - t0_ns) / 1e9), 1),
        evidence=analysed.evidence,
        syscalls=syscall_samples(samples, gil_sampled.sampler_machine(path)))
    for child, found in by_pid.items():
        if child is None:
            continue
        timelines = gil_sampled.analyse_samples(
            found, gil_sampled.tstate_map(thread_events, child), t0_ns, end_ns,
            tick_ns, with_evidence=False).timelines
        result.children[child] = ProcessGil(timelines, method=Method.SAMPLED, held_known=True)
    return result
