"""From the OS sampler's readings to on-CPU/off-CPU intervals, CPU time and CPU parallelism.

``schedstat`` counts exact on-CPU nanoseconds, so CPU time and parallelism are exact up to the
sampling grid; only *when* inside one sampling period a thread ran is unknown. Periods are drawn
``on_cpu`` so that the drawn on-CPU time matches the measured CPU time: each period adds its
on-CPU time to a running credit, and a period is drawn ``on_cpu`` once the credit reaches half a
period (which it then pays), carried only through periods in which it ran at least a tenth of
the time. A thread that ran all the time is drawn running all the time; one that had a fifth of
a core every period (ten processes on two cores) is drawn running every fifth period, not never.
``cpu_wait`` (ready, but no free core: ``schedstat``'s second field) is drawn the same way in
the periods left.

A process's CPU time comes from its own ``/proc/PID/stat`` as well, which counts threads that
exited between two listings of its threads: whichever says more is its CPU time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import CPU_WAIT, OFF_CPU, ON_CPU, Interval, ProcessInfo, Series

ON_CPU_THRESHOLD = 0.5
CARRY_SHARE = 0.1  # a period with less of its time on a CPU (or queued) carries no credit
MAX_BINS = 2000  # parallelism curve resolution: enough for a smooth plot, small in the report


@dataclass
class ThreadCpu:
    pid: int
    tid: int
    comm: str = ""
    first_ns: int = 0
    last_ns: int = 0
    # (t_ns, cpu_ns, state, run-queue ns)
    readings: list[tuple[int, int, str, int]] = field(default_factory=list)
    cpu_s: float = 0.0
    intervals: list[Interval] = field(default_factory=list)


@dataclass
class ProcessCpu:
    """What a process's own ``/proc/PID/stat`` said: CPU clock ticks, first and last seen."""

    pid: int
    born_in_recording: bool = False  # its start time is after the sampler's start
    ticks: list[tuple[int, int]] = field(default_factory=list)  # (t_ns, utime + stime)

    def cpu_s(self, t0_ns: int, end_ns: int, clk_tck: int) -> float:
        """Its CPU time within the window: all of it for a process born in the recording."""
        inside = [ticks for t, ticks in self.ticks if t <= end_ns]
        if not inside:
            return 0.0
        before = [ticks for t, ticks in self.ticks if t <= t0_ns]
        start = 0 if self.born_in_recording else (before[-1] if before else inside[0])
        return max(0, inside[-1] - start) / clk_tck


@dataclass
class CpuRecording:
    threads: dict[tuple[int, int], ThreadCpu]
    processes: list[ProcessInfo]
    parallelism: Series | None
    cpu_s: float
    rate_hz: float | None
    cores: int
    process_cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU-s in the window


def analyse_cpu(records: Iterable[dict[str, Any]], t0_ns: int, end_ns: int) -> CpuRecording:
    threads: dict[tuple[int, int], ThreadCpu] = {}
    processes: list[ProcessInfo] = []
    rate_hz: float | None = None
    cores = 1
    clk_tck, boot_ns, t_first = 100, None, None
    stats: dict[int, ProcessCpu] = {}
    for record in records:
        kind = record.get("kind")
        if kind == "s":
            t = int(record["t"])
            t_first = t if t_first is None else t_first
            for pid, ticks in record.get("p", ()):
                stats.setdefault(int(pid), ProcessCpu(int(pid))).ticks.append((t, int(ticks)))
            for pid, tid, cpu_ns, runq_ns, state in record["r"]:
                thread = threads.get((pid, tid))
                if thread is None:
                    thread = threads[(pid, tid)] = ThreadCpu(pid, tid, first_ns=t)
                thread.readings.append((t, int(cpu_ns), str(state), int(runq_ns)))
                thread.last_ns = t
        elif kind == "thread":
            key = (int(record["pid"]), int(record["tid"]))
            thread = threads.setdefault(key, ThreadCpu(*key, first_ns=int(record["t"])))
            thread.comm = str(record.get("comm", ""))
            if key[0] == key[1]:
                ppid = record.get("ppid")
                processes.append(ProcessInfo(key[0], None if ppid is None else int(ppid),
                                             [str(arg) for arg in record.get("cmdline", [])]))
                start_ticks = record.get("start_ticks")
                if boot_ns is not None and start_ticks is not None:
                    stats.setdefault(key[0], ProcessCpu(key[0])).born_in_recording = (
                        int(start_ticks) * 1e9 / clk_tck > boot_ns)
        elif kind == "meta":
            rate_hz = float(record.get("rate_hz", 0)) or None
            cores = int(record.get("cores", 1))
            clk_tck = int(record.get("clk_tck", 100)) or 100
            boot_ns = int(record["boot_ns"]) if record.get("boot_ns") else None
    per_process: dict[int, float] = {}
    for thread in threads.values():
        thread.cpu_s = _cpu_in_window(thread.readings, t0_ns, end_ns) / 1e9
        thread.intervals = _intervals(thread.readings, t0_ns, end_ns)
        per_process[thread.pid] = per_process.get(thread.pid, 0.0) + thread.cpu_s
    for pid, stat in stats.items():
        per_process[pid] = max(per_process.get(pid, 0.0), stat.cpu_s(t0_ns, end_ns, clk_tck))
    series = _parallelism(threads.values(), t0_ns, end_ns)
    return CpuRecording(threads, processes, series, sum(per_process.values()), rate_hz, cores,
                        per_process)


def _cpu_at(readings: list[tuple[int, int, str, int]], t_ns: int) -> float:
    """On-CPU ns at ``t_ns``, interpolated linearly between the readings around it."""
    if not readings:
        return 0.0
    if t_ns <= readings[0][0]:
        return float(readings[0][1])
    if t_ns >= readings[-1][0]:
        return float(readings[-1][1])
    lo, hi = 0, len(readings) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if readings[mid][0] <= t_ns:
            lo = mid
        else:
            hi = mid
    (ta, ca, _, _), (tb, cb, _, _) = readings[lo], readings[hi]
    return ca + (cb - ca) * (t_ns - ta) / max(tb - ta, 1)


def _cpu_in_window(readings: list[tuple[int, int, str, int]], t0_ns: int,
                   end_ns: int) -> float:
    return max(0.0, _cpu_at(readings, end_ns) - _cpu_at(readings, t0_ns))


def _intervals(readings: list[tuple[int, int, str, int]], t0_ns: int,
               end_ns: int) -> list[Interval]:
    """States per sampling period, drawn so their totals match the measured times (see the
    module's docstring): the credits carry the part of a period that was not drawn."""
    out: list[Interval] = []
    on_credit = queue_credit = 0.0
    for (ta, ca, _, qa), (tb, cb, _, qb) in itertools.pairwise(readings):
        start, end = max(ta, t0_ns), min(tb, end_ns)
        if end <= start or tb <= ta:
            continue
        share = (end - start) / (tb - ta)  # of this period inside the window
        ran, queued = (cb - ca) * share, (qb - qa) * share
        # Credit is carried only through periods the thread kept using: a period it hardly ran
        # in starts afresh, or the rest of a finished spin would be drawn at the next blip (a
        # 5 ms period drawn running 50 ms after the spin, seen in test_clock_alignment).
        on_credit = on_credit + ran if ran >= CARRY_SHARE * (end - start) else ran
        queue_credit = queue_credit + queued if queued >= CARRY_SHARE * (end - start) \
            else queued
        half = ON_CPU_THRESHOLD * (end - start)
        if on_credit >= half:
            state = ON_CPU
            on_credit -= end - start
        elif queue_credit >= half:
            state = CPU_WAIT
            queue_credit -= end - start
        else:
            state = OFF_CPU
        s, e = (start - t0_ns) / 1e9, (end - t0_ns) / 1e9
        if out and out[-1].state == state and abs(out[-1].end - s) < 1e-9:
            out[-1].end = e
        else:
            out.append(Interval(s, e, state))
    return out


def _parallelism(threads: Iterable[ThreadCpu], t0_ns: int, end_ns: int) -> Series | None:
    wall_ns = end_ns - t0_ns
    if wall_ns <= 0:
        return None
    bin_ns = max(1_000_000, _nice_bin(wall_ns / MAX_BINS))
    nbins = max(1, -(-wall_ns // bin_ns))
    totals = [0.0] * nbins
    for thread in threads:
        previous = _cpu_at(thread.readings, t0_ns)
        for i in range(nbins):
            edge = min(t0_ns + (i + 1) * bin_ns, end_ns)
            current = _cpu_at(thread.readings, edge)
            totals[i] += current - previous
            previous = current
    widths = [min(bin_ns, wall_ns - i * bin_ns) for i in range(nbins)]
    return Series(
        bin_s=bin_ns / 1e9,
        t=[round(i * bin_ns / 1e9, 6) for i in range(nbins)],
        values=[round(total / width, 4) for total, width in zip(totals, widths, strict=False)],
    )


def _nice_bin(ns: float) -> int:
    """Round a bin width up to 1, 2 or 5 times a power of ten milliseconds-or-less."""
    step = 1_000_000
    while True:
        for factor in (1, 2, 5):
            if step * factor >= ns:
                return step * factor
        step *= 10
