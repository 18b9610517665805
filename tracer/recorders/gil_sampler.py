"""Sampled GIL recorder: who holds the GIL and who waits for it, read from outside at ~1 kHz.

It needs neither perf nor symbols nor ptrace-attach, and it costs the target nothing: it runs in the
controller, the target's parent, which may read the target's memory (``process_vm_readv``) and its
threads' ``/proc/PID/task/TID/syscall`` (root, or Yama ``ptrace_scope`` <= 1 for a parent).

Each tick it reads, in this order:

1. every thread's ``/proc/PID/task/TID/syscall``: ``running`` means runnable (on a CPU or ready for
   one; the kernel prints it whenever the task's state is TASK_RUNNING), otherwise the syscall the
   thread sleeps in and its arguments. A ``futex`` on the GIL's ``cond``/``mutex`` (addresses from
   :mod:`tracer.instrument.gil_probe`) is a GIL waiter; on its ``switch_cond``/``switch_mutex`` a
   holder that was asked to drop the GIL and waits for the hand-off; any other wait is ``blocked``.
   ``/proc/TID/stat`` is not read: its R/S letter says nothing ``syscall`` does not already say.
   ``schedstat`` is read first, and ``syscall`` only if the thread ran since the last tick (see
   :class:`tracer.recorders.gil_reading.ThreadWatch`).
2. the GIL's first 32 bytes (``interval, last_holder, locked, switch_number``) with one
   ``process_vm_readv``. Reading the GIL *after* the threads means a thread that took the GIL in
   between is credited as the holder for the tick that follows, which is where its time goes.

Raw file ``raw/gil_samples.jsonl``: a ``{"kind": "meta", ...}`` line, then one line per tick
``{"t": t_ns, "h": last_holder, "l": locked, "n": switch_number,
"th": [[tid, code, rq_ns, runs, cpu_ns(, syscall)], ...]}`` with ``code`` one of :data:`CODES`,
for a ``B`` row the number of the syscall it sleeps in (what it is blocked by:
:mod:`tracer.model.blocked` names it, with the meta line's ``machine``), and the
thread's ``schedstat`` totals: ``rq_ns`` (field 2) its time spent runnable but waiting for a CPU
(it tells a thread running native code from one merely ready to), ``runs`` (field 3) how many
times it was scheduled onto a CPU, ``cpu_ns`` (field 1) its time on one. Then
``{"kind": "end", "t", "ticks", "cpu_ns", "error"}``: ``cpu_ns / ticks`` is what one tick cost.
Recordings made before ``runs`` and ``cpu_ns`` were written have three-element rows, and ones
made before the syscall number was written have no sixth element; both still load. The
sampler writes what it saw; which thread held the GIL (``h`` is a PyThreadState
address, mapped to a tid through the bootstrap's ``threads.jsonl``) and what that makes each
thread's state is decided by :mod:`tracer.model.gil_sampled`.

Why the counters: a thread can get the GIL, run for microseconds and wait again between two
ticks (an echo round trip next to a CPU-bound thread), and both ticks then see it waiting. The
GIL's ``switch_number`` (one more per change of holder) and the threads' ``runs`` say when that
must or may have happened (:mod:`tracer.model.gil_turns`). ``cpu_ns`` lags for a thread on a CPU
(the kernel brings it up to date at scheduler ticks), so it is trusted only across samples that
saw the thread asleep.

Why 1 kHz: CPython hands the GIL over every switch interval (5 ms), so 1 ms samples draw each turn
as ~5 samples, enough to see turns in a 100 ms window; measured against perf's exact timeline
(1-8 CPU threads, hashing threads, 3.11-3.13) per-thread held and wait shares agreed within 5
percentage points, mostly within 2. One tick costs ~40-80 us of controller CPU with 4-9 threads
(4-8% of one core here) and nothing in the target; faster sampling would mostly buy cost.

The target's child processes are followed too (:mod:`tracer.recorders.child_gil`): each has its
own GIL, found from outside, and its lines carry ``"p": pid``; lines without one are the
target's. A ``{"kind": "child", "t", "pid", "gil_addr"}`` line says where a child's GIL was
found, before its first sample (a fork's is at the target's address, a spawned interpreter's
elsewhere: the model tells them apart by it).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tracer import raw_files
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import check_has_gil
from tracer.model.schema import Method, Source
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext
from tracer.recorders.child_gil import ChildFollower, child_notes
from tracer.recorders.gil_reading import (
    CODES,
    FUTEX_NR,
    Classifier,
    GilReader,
    ProcessThreads,
)
from tracer.recorders.sampling import SamplingRecorder, pace, rate_notes

DEFAULT_RATE_HZ = 1000.0
# New threads are noticed within one tick: ``/proc/PID/task``'s link count is 2 + the number of
# threads, and one stat() of it (~2.5 us) says when to list it again. Every 50 ms it is listed
# anyway, in case one thread ended and another started within the same tick.
TASKS_REFRESH_S = 0.05

def read_layout(raw_dir: Path) -> dict[str, Any]:
    """The bootstrap's GIL layout, or RecorderUnavailable saying why there is none."""
    path = raw_dir / raw_files.GIL_LAYOUT
    try:
        layout = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise RecorderUnavailable(
            f"no {raw_files.GIL_LAYOUT}: the target did not run threadscope's bootstrap") from exc
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RecorderUnavailable(f"cannot read {path}: {exc}") from exc
    if not isinstance(layout, dict):
        raise RecorderUnavailable(f"{path} is not a JSON object")
    if layout.get("error"):
        raise RecorderUnavailable(str(layout["error"]))
    missing = {"gil_addr", "wait_range", "handoff_range"} - set(layout)
    if missing:
        raise RecorderUnavailable(f"{path} lacks {', '.join(sorted(missing))}")
    return layout


class GilSampler(SamplingRecorder):
    """Per-thread GIL state (holder, waiting, runnable, blocked) of one process, sampled."""

    name = SourceName.GIL_SAMPLER

    def __init__(self) -> None:
        super().__init__()
        self._threads: ProcessThreads | None = None
        self._task_links = 0  # st_nlink of /proc/PID/task at the last listing
        self._reader: GilReader | None = None
        self._classifier: Classifier | None = None
        self._pid = 0
        self._rate_hz = DEFAULT_RATE_HZ
        self._max_threads = 0
        self._ticks = 0
        self._last_tick_ns = 0
        self._cpu_ns = 0  # the sampler thread's own CPU time: its cost to the controller
        self._error: str | None = None
        self._realtime = True
        self._notes: list[str] = []
        self._children: ChildFollower | None = None

    def check(self, ctx: RecordContext) -> None:
        if not sys.platform.startswith("linux"):
            raise RecorderUnavailable(f"needs Linux /proc and process_vm_readv ({sys.platform})")
        check_has_gil(ctx.python)  # a free-threaded build: no GIL, so no GIL figures
        machine = platform.machine()
        if machine not in FUTEX_NR:
            raise RecorderUnavailable(
                f"futex syscall number unknown on {machine} (known: {', '.join(FUTEX_NR)})")
        if not hasattr(ctypes.CDLL(None), "process_vm_readv"):
            raise RecorderUnavailable("the C library has no process_vm_readv")

    def start(self, ctx: RecordContext) -> None:
        if ctx.pid <= 0:
            raise ValueError("GilSampler.start needs ctx.pid of the running target")
        self.check(ctx)
        layout = read_layout(ctx.raw_dir)
        if layout.get("pid") not in (None, ctx.pid):
            raise RecorderUnavailable(
                f"{raw_files.GIL_LAYOUT} describes process {layout['pid']}, "
                f"not the target {ctx.pid}")
        self._pid = ctx.pid
        self._rate_hz = float(ctx.options.get("gil_rate_hz", DEFAULT_RATE_HZ))  # type: ignore[arg-type]
        self._realtime = bool(ctx.options.get("gil_realtime", True))
        self._reader = GilReader(ctx.pid, int(layout["gil_addr"]))
        try:
            _, _, locked, _ = self._reader.read()
        except OSError as exc:
            raise RecorderUnavailable(f"cannot read the target's memory: {exc}") from exc
        if locked not in (0, 1):
            raise RecorderUnavailable(f"the GIL at {layout['gil_addr']:#x} reads locked={locked}")
        self._classifier = Classifier(FUTEX_NR[platform.machine()], layout)
        # THREADSCOPE_NO_CHILD_GIL=1: the target alone (benchmarks/children_cost.py compares)
        if os.environ.get("THREADSCOPE_NO_CHILD_GIL") != "1":
            self._children = ChildFollower(ctx.pid, str(ctx.raw_dir / raw_files.THREADS),
                                           FUTEX_NR[platform.machine()])
        self._open(ctx.raw_dir / raw_files.GIL_SAMPLES, {"pid": ctx.pid, "rate_hz": self._rate_hz,
                                            "gil_addr": layout["gil_addr"],
                                            "machine": platform.machine(),
                                            "futex_nr": FUTEX_NR[platform.machine()],
                                            "codes": CODES})
        self._refresh_threads()
        self._sample()
        self._start_sampling(self._loop, "threadscope-gil")

    def stop(self) -> None:
        if self._children is not None:
            self._children.stop()
        self._close_sampling({"ticks": self._ticks, "cpu_ns": self._cpu_ns,
                              "error": self._error})
        if self._threads is not None:
            self._threads.close()

    def describe(self) -> Source:
        if self._started_ns == 0:
            return Source(used=False, reason=self._error or "the GIL sampler was not started")
        # Over the ticks taken: the loop ends by itself once the target has exited.
        seconds = max((self._last_tick_ns - self._started_ns) / 1e9, 1e-9)
        notes = [
            f"GIL holder via process_vm_readv, thread waits via /proc/TID/syscall, "
            f"{self._rate_hz:g} Hz requested",
            f"controller CPU: {self._cpu_ns / 1e9 / seconds:.1%} of one core while sampling",
            *self._notes,
        ]
        notes += rate_notes(self._rate_hz, self._ticks / seconds, self._max_threads)
        if self._children is not None:
            notes += child_notes(self._children.report)
        if self._error:
            notes.append(self._error)
        return Source(used=True, method=Method.SAMPLED, rate_hz=round(self._ticks / seconds, 1),
                      samples=self._ticks, notes=notes)

    def progress(self) -> str:
        return f"{self._ticks:,} GIL samples"

    @property
    def cpu_seconds(self) -> float:
        """CPU time the sampling thread used (after :meth:`stop`)."""
        return self._cpu_ns / 1e9

    def _loop(self) -> None:
        cpu_start = time.thread_time_ns()
        if self._realtime:
            self._notes.append(_make_realtime())
        period_ns = int(1e9 / self._rate_hz)
        next_ns = time.monotonic_ns()
        last_refresh = next_ns
        try:
            while not self._stop.is_set():
                next_ns += period_ns
                tick_cpu = time.thread_time_ns()
                now = time.monotonic_ns()
                if now - last_refresh > TASKS_REFRESH_S * 1e9 or self._threads_changed():
                    self._refresh_threads()
                    if self._children is not None and now - last_refresh > (
                            TASKS_REFRESH_S * 1e9):
                        self._children.discover()
                        self._children.refresh(self._write)
                    last_refresh = now
                if not self._sample():
                    break  # the target is gone
                if self._children is not None:
                    self._children.tick(self._write)
                # Fell behind or costly (very many threads): always leave the CPU for a while,
                # above all at real-time priority.
                delay, next_ns = pace(period_ns, next_ns, time.thread_time_ns() - tick_cpu)
                time.sleep(delay / 1e9)
        except Exception as exc:  # a sampler bug must not take the run down; say it instead
            self._error = f"GIL sampler stopped early: {type(exc).__name__}: {exc}"
        finally:
            self._cpu_ns = time.thread_time_ns() - cpu_start

    def _sample(self) -> bool:
        """One tick; False once the target's memory can no longer be read."""
        assert self._reader is not None and self._classifier is not None
        assert self._threads is not None
        rows = self._threads.rows(self._classifier.code)
        self._max_threads = max(self._max_threads, len(rows))
        t_ns = time.monotonic_ns()
        try:
            _, holder, locked, switches = self._reader.read()
        except OSError:
            return False
        self._write({"t": t_ns, "h": holder, "l": locked, "n": switches, "th": rows})
        self._ticks += 1
        self._last_tick_ns = t_ns
        return True

    def _threads_changed(self) -> bool:
        try:
            return os.stat(f"/proc/{self._pid}/task").st_nlink != self._task_links
        except OSError:
            return False

    def _refresh_threads(self) -> None:
        try:
            self._task_links = os.stat(f"/proc/{self._pid}/task").st_nlink
        except OSError:
            return
        if self._threads is None:
            self._threads = ProcessThreads(self._pid)
        self._threads.refresh()

def _make_realtime() -> str:
    """Give the calling (sampling) thread SCHED_FIFO priority 1, if allowed (root/CAP_SYS_NICE).

    Why: on a busy machine a normal thread wakes late exactly when every CPU is taken, i.e. at GIL
    hand-offs; the sample before such a delay then stands for it, and the shares come out biased.
    At real-time priority the tick wakes on time whatever the target does. It is safe: a tick
    takes tens of microseconds and the loop always sleeps at least a quarter period.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # 0: this thread on Linux
    except (OSError, AttributeError) as exc:
        return f"normal scheduling priority (real-time refused: {exc})"
    return "sampling thread at real-time priority (SCHED_FIFO 1)"
