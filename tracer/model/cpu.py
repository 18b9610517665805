"""From the OS sampler's readings to on-CPU/off-CPU intervals, CPU time and CPU parallelism.

``schedstat`` counts exact on-CPU nanoseconds, so CPU time and parallelism are exact up to the
sampling grid; only *when* inside one sampling period a thread ran is unknown. A period in which
a thread ran at least half the time is drawn as ``on_cpu``; one in which it spent at least half
the time in the run queue (ready, but no free core: ``schedstat``'s second field) as
``cpu_wait``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import CPU_WAIT, OFF_CPU, ON_CPU, Interval, ProcessInfo, Series

ON_CPU_THRESHOLD = 0.5
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
class CpuRecording:
    threads: dict[tuple[int, int], ThreadCpu]
    processes: list[ProcessInfo]
    parallelism: Series | None
    cpu_s: float
    rate_hz: float | None
    cores: int


def analyse_cpu(records: Iterable[dict[str, Any]], t0_ns: int, end_ns: int) -> CpuRecording:
    threads: dict[tuple[int, int], ThreadCpu] = {}
    processes: list[ProcessInfo] = []
    rate_hz: float | None = None
    cores = 1
    for record in records:
        kind = record.get("kind")
        if kind == "s":
            t = int(record["t"])
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
        elif kind == "meta":
            rate_hz = float(record.get("rate_hz", 0)) or None
            cores = int(record.get("cores", 1))
    total_cpu = 0.0
    for thread in threads.values():
        thread.cpu_s = _cpu_in_window(thread.readings, t0_ns, end_ns) / 1e9
        thread.intervals = _intervals(thread.readings, t0_ns, end_ns)
        total_cpu += thread.cpu_s
    series = _parallelism(threads.values(), t0_ns, end_ns)
    return CpuRecording(threads, processes, series, total_cpu, rate_hz, cores)


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
    out: list[Interval] = []
    for (ta, ca, _, qa), (tb, cb, _, qb) in itertools.pairwise(readings):
        start, end = max(ta, t0_ns), min(tb, end_ns)
        if end <= start or tb <= ta:
            continue
        if (cb - ca) / (tb - ta) >= ON_CPU_THRESHOLD:
            state = ON_CPU
        elif (qb - qa) / (tb - ta) >= ON_CPU_THRESHOLD:
            state = CPU_WAIT
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
