"""OS sampler: every thread's CPU time and scheduler state, read from ``/proc`` out of process.

It is the source of CPU parallelism (CPU-seconds per wall-second) and of on-CPU/off-CPU intervals
for every thread of the target and of its child processes. It needs no special rights beyond
reading ``/proc`` of a process we started, and costs the target nothing: it runs in the controller.

Why 200 Hz by default: 5 ms is CPython's switch interval, the time scale on which GIL-bound threads
take turns; sampling faster than that costs controller CPU on a 2-core machine without telling more,
because ``schedstat`` already accumulates exact on-CPU nanoseconds between two samples.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from tracer import raw_files
from tracer.errors import RecorderUnavailable
from tracer.model.schema import Method, Source
from tracer.procfs import descendants, parent_pid, read_text
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext
from tracer.recorders.sampling import SamplingRecorder, pace, rate_notes

CHILDREN_REFRESH_S = 0.05  # new threads/processes appear in the record within 50 ms


_ASLEEP = frozenset("SDI")  # interruptible, uninterruptible, idle


class _Task:
    """Open file descriptors for one thread; ``/proc`` files can be re-read with pread at 0.

    ``stat`` (for the state letter) costs several times ``schedstat``; with hundreds of threads it
    was most of a tick. A thread that was asleep at the last tick and has neither run nor waited
    in a run queue since is still asleep, so its ``stat`` is not read again. (A thread woken but
    not yet on a CPU also shows no change; its run-queue wait appears in ``schedstat`` once it
    runs, which is what the model reads as ``cpu_wait``.)"""

    __slots__ = ("last", "pid", "schedstat_fd", "stat_fd", "tid")

    def __init__(self, pid: int, tid: int) -> None:
        base = f"/proc/{pid}/task/{tid}"
        self.pid = pid
        self.tid = tid
        self.schedstat_fd = os.open(f"{base}/schedstat", os.O_RDONLY)
        self.stat_fd = os.open(f"{base}/stat", os.O_RDONLY)
        self.last: tuple[int, int, str] | None = None

    def read(self) -> tuple[int, int, str] | None:
        """On-CPU ns, run-queue ns, state letter; None once the thread is gone."""
        try:
            sched = os.pread(self.schedstat_fd, 128, 0).split()
            if len(sched) < 2:
                return None
            on_cpu, queued = int(sched[0]), int(sched[1])
            last = self.last
            if last is not None and last[2] in _ASLEEP and last[0] == on_cpu and (
                    last[1] == queued):
                return last
            stat = os.pread(self.stat_fd, 1024, 0)
        except (OSError, ValueError):
            return None
        if not stat:
            return None
        # The state follows the ")" that closes the command name, which may itself hold spaces.
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3].decode("ascii", "replace")
        self.last = (on_cpu, queued, state)
        return self.last

    def close(self) -> None:
        for fd in (self.schedstat_fd, self.stat_fd):
            with contextlib.suppress(OSError):
                os.close(fd)



class _Process:
    """A process's own ``/proc/PID/stat``: its CPU time counts threads that have exited too (the
    per-thread files do not outlive their thread), so a child's total adds up to what /proc says
    even for threads that lived between two listings."""

    __slots__ = ("fd", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)

    def read(self) -> tuple[int, int] | None:
        """(utime + stime in clock ticks, start time in clock ticks after boot); None once gone."""
        try:
            stat = os.pread(self.fd, 1024, 0)
        except OSError:
            return None
        fields = stat[stat.rfind(b")") + 2:].split()
        try:  # fields 14, 15 and 22 of proc(5), counted from the state letter (field 3)
            return int(fields[11]) + int(fields[12]), int(fields[19])
        except (IndexError, ValueError):
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class SchedSampler(SamplingRecorder):
    name = SourceName.SCHED

    def __init__(self) -> None:
        super().__init__()
        self._tasks: dict[tuple[int, int], _Task] = {}
        self._processes: dict[int, _Process] = {}
        self._ticks = 0
        self._rate_hz = 200.0
        self._max_threads = 0
        self._root_pid = 0

    def check(self, ctx: RecordContext) -> None:
        if not sys.platform.startswith("linux"):
            raise RecorderUnavailable(f"needs Linux /proc (this is {sys.platform})")
        if not Path(f"/proc/{os.getpid()}/schedstat").exists():
            raise RecorderUnavailable("the kernel has no /proc/PID/schedstat (CONFIG_SCHEDSTATS)")

    def start(self, ctx: RecordContext) -> None:
        self._rate_hz = ctx.rate_hz
        self._root_pid = ctx.pid
        self._open(ctx.raw_dir / raw_files.SCHED, {"rate_hz": self._rate_hz, "root_pid": ctx.pid,
                                            "clk_tck": os.sysconf("SC_CLK_TCK"),
                                            "boot_ns": _since_boot_ns(),
                                            "cores": os.cpu_count() or 1})
        self._refresh_tasks(self._started_ns)
        self._sample(time.monotonic_ns())
        self._start_sampling(self._loop, "threadscope-sched")

    def stop(self) -> None:
        self._close_sampling()
        for task in self._tasks.values():
            task.close()
        self._tasks.clear()
        for process in self._processes.values():
            process.close()
        self._processes.clear()

    def describe(self) -> Source:
        seconds = max((self._stopped_ns - self._started_ns) / 1e9, 1e-9)
        return Source(
            used=True,
            method=Method.SAMPLED,
            rate_hz=round(self._ticks / seconds, 1),
            samples=self._ticks,
            notes=[f"/proc schedstat of every thread at {self._rate_hz:g} Hz requested",
                   *rate_notes(self._rate_hz, self._ticks / seconds, self._max_threads)],
        )

    def progress(self) -> str:
        return f"{self._ticks:,} OS samples, {len(self._tasks)} threads"

    def _loop(self) -> None:
        period_ns = int(1e9 / self._rate_hz)
        next_ns = time.monotonic_ns()
        last_refresh = 0
        while not self._stop.is_set():
            next_ns += period_ns
            tick_cpu = time.thread_time_ns()
            now = time.monotonic_ns()
            if now - last_refresh > CHILDREN_REFRESH_S * 1e9:
                self._refresh_tasks(now)
                last_refresh = now
            self._sample(now)
            delay, next_ns = pace(period_ns, next_ns, time.thread_time_ns() - tick_cpu)
            time.sleep(delay / 1e9)

    def _sample(self, now_ns: int) -> None:
        rows = []
        gone = []
        for key, task in self._tasks.items():
            values = task.read()
            if values is None:
                gone.append(key)
                continue
            rows.append([task.pid, task.tid, values[0], values[1], values[2]])
        for key in gone:
            self._tasks.pop(key).close()
            self._write({"kind": "gone", "t": now_ns, "pid": key[0], "tid": key[1]})
        processes = []
        for pid, process in list(self._processes.items()):
            got = process.read()
            if got is None:
                self._processes.pop(pid).close()
            else:
                processes.append([pid, got[0]])
        self._max_threads = max(self._max_threads, len(rows))
        self._write({"kind": "s", "t": now_ns, "r": rows, "p": processes})
        self._ticks += 1

    def _refresh_tasks(self, now_ns: int) -> None:
        for pid in self._process_tree():
            try:
                tids = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
                if pid not in self._processes:
                    self._processes[pid] = _Process(pid)
            except OSError:
                continue
            for tid in tids:
                if (pid, tid) in self._tasks:
                    continue
                try:
                    self._tasks[(pid, tid)] = _Task(pid, tid)
                except OSError:
                    continue
                comm = read_text(f"/proc/{pid}/task/{tid}/comm").strip()
                entry: dict[str, object] = {"kind": "thread", "t": now_ns, "pid": pid, "tid": tid,
                                            "comm": comm}
                if pid == tid:
                    entry["cmdline"] = read_text(f"/proc/{pid}/cmdline").split("\0")[:-1]
                    entry["ppid"] = parent_pid(pid)
                    process = self._processes.get(pid)
                    stat = process.read() if process is not None else None
                    if stat is not None:
                        entry["start_ticks"] = stat[1]
                self._write(entry)

    def _process_tree(self) -> list[int]:
        """The target and every descendant; not ourselves (recording ourselves, the API, is
        not the goal)."""
        return descendants(self._root_pid, exclude=os.getpid())


def _since_boot_ns() -> int:
    """Now on the clock ``/proc/PID/stat``'s start times count from (boot), to tell a process
    born during the recording (all its CPU time is in it) from one that existed before."""
    try:
        return time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic_ns()
