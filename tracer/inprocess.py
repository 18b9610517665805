"""In-process recording, shared by the bootstrap (``tracer run``) and the Python API
(``with tracer.record()``): thread start/end hooks, the GIL probe's calibration, lock
instrumentation and VizTracer, all written to the run's ``raw/`` folder.

Standard library only (VizTracer and our lock instrumentation are imported when enabled), because
``--python`` may point at an interpreter that has nothing else installed.
"""

from __future__ import annotations

import _thread
import ctypes
import json
import mmap
import os
import sys
import threading
import time
from types import FrameType
from typing import Any

from tracer import raw_files
from tracer.instrument import faults

INTERNAL_PREFIX = "threadscope-"
# VizTracer's circular buffer, in events. It costs about 90 bytes per event in the target while
# recording (measured: 88), touched as it fills, so a short run pays for what it records only;
# the analysis then keeps each event as its JSON (a 5M-event trace peaked at 0.86 GB). Five
# million is a 10 s run at 500k calls a second, the rate of call-heavy real programs traced:
# 0.45 GB in the target at most. Faster callers overflow it, and the report says so first.
DEFAULT_TRACER_ENTRIES = 5_000_000


class EventLog:
    """Append-only JSON lines, flushed per line: thread starts and ends must survive a crash.
    :meth:`write` never raises (it runs in the user's threads): a line it cannot write is
    counted in :mod:`tracer.instrument.faults` instead."""

    def __init__(self, path: str) -> None:
        self._lock = _thread.allocate_lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        try:
            line = json.dumps(record, separators=(",", ":"), default=faults.json_default) + "\n"
            with self._lock:
                if not self._file.closed:
                    self._file.write(line)
        except Exception as exc:  # an unencodable value, a full disk, interpreter shutdown
            faults.note("thread_event_lost", exc)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def allow_ptrace_from_anyone() -> None:
    """Let py-spy (our sibling, not our ancestor) read this process under Yama ptrace_scope=1."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_ptracer, pr_set_ptracer_any = 0x59616D61, ctypes.c_ulong(-1)
        libc.prctl(pr_set_ptracer, pr_set_ptracer_any, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _thread_state_address() -> int | None:
    """This thread's PyThreadState address: the GIL sampler sees the holder as one."""
    try:
        from tracer.instrument import gil_probe
    except ImportError:
        return None
    try:
        return gil_probe.thread_tstate()
    except Exception:
        return None


def thread_name(thread: Any) -> str:
    """A thread's name as text for the record, whatever the program put there (a ``MagicMock``,
    an object whose ``__str__`` raises, a property that raises): never raises."""
    try:
        name = thread.name
    except Exception as exc:
        faults.note("thread_name", exc)
        return faults.PLACEHOLDER
    return faults.safe_text(name, "thread_name")


def _thread_daemon(thread: Any) -> bool | None:
    try:
        return bool(thread.daemon)
    except Exception as exc:
        faults.note("thread_daemon", exc)
        return None


def is_internal(thread: Any) -> bool:
    """One of our own helper threads (named with :data:`INTERNAL_PREFIX`)? A name that is not a
    string is the program's, not ours (``MagicMock().startswith`` would say yes)."""
    try:
        name = thread.name
    except Exception:
        return False
    return isinstance(name, str) and str.startswith(name, INTERNAL_PREFIX)


def _thread_event(ev: str, thread: Any, started: bool) -> dict[str, Any]:
    # pid: a forked child's threads write to the same log as the target's
    record: dict[str, Any] = {"ev": ev, "t_ns": time.monotonic_ns(), "pid": os.getpid(),
                              "tid": threading.get_native_id(), "name": thread_name(thread)}
    if started:
        record.update(ident=threading.get_ident(), daemon=_thread_daemon(thread),
                      tstate=_thread_state_address())
    return record


def hook_threads(log: EventLog) -> Any:
    """Record every threading.Thread's start and end with its native id, name and daemon flag;
    returns the original method, for :func:`unhook_threads`. The hook never raises into the
    thread: a start it cannot record is counted, and the thread runs its target regardless."""
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def _bootstrap_inner(self: threading.Thread) -> None:
        try:
            log.write(_thread_event("start", self, True))
        except Exception as exc:
            faults.note("thread_start_lost", exc)
        try:
            original(self)
        finally:
            try:
                log.write(_thread_event("end", self, False))
            except Exception as exc:
                faults.note("thread_end_lost", exc)

    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]
    return original


def unhook_threads(original: Any) -> None:
    threading.Thread._bootstrap_inner = original  # type: ignore[attr-defined]


def write_gil_layout(raw_dir: str, layout: dict[str, Any]) -> None:
    """``raw/gil_layout.json`` for the GIL recorders: where the GIL is, or ``{"error": why}``.
    Written from inside the target (the probe) and by ``tracer attach`` (found from outside)."""
    with open(os.path.join(raw_dir, raw_files.GIL_LAYOUT), "w", encoding="utf-8") as handle:
        json.dump(layout, handle)




class InProcessRecording:
    """What the target records about itself. ``prepare`` before user code, ``begin`` at its first
    line (t0), ``finish`` at the end, however it ended (idempotent)."""

    def __init__(self, raw_dir: str, viztracer: bool, locks: bool, tracer_entries: int,
                 tasks: bool = True) -> None:
        self.raw_dir = raw_dir
        self.pid = os.getpid()
        self.want_viztracer = viztracer
        self.want_locks = locks
        self.want_tasks = tasks
        self.tasks_installed = False
        self.tracer_entries = tracer_entries
        self.log = EventLog(os.path.join(raw_dir, raw_files.THREADS))
        self.viztracer: Any = None
        self.viztracer_error = ""
        self.viztracer_cost: dict[str, float] = {}
        self.clock_pairs: list[tuple[float, int]] = []
        self.locks_installed = False
        self.original_bootstrap: Any = None
        self.finished = False
        self.t0_ns = 0
        self.exit_code: int | None = 0
        self.status = "ok"
        self.error: str | None = None

    def prepare(self) -> None:
        faults.reset()
        allow_ptrace_from_anyone()
        self.original_bootstrap = hook_threads(self.log)
        self._calibrate_gil_probe()
        if self.want_locks:
            try:
                from tracer.instrument import locks

                locks.install(os.path.join(self.raw_dir, raw_files.LOCKS))
                self.locks_installed = True
            except Exception as exc:  # the run goes on without lock data, and says so
                self.log.write({"ev": "locks_unavailable", "reason": repr(exc)})
        if self.want_tasks:
            try:
                from tracer.instrument import tasks

                tasks.install(os.path.join(self.raw_dir, raw_files.TASKS))
                self.tasks_installed = True
            except Exception as exc:  # the run goes on without pool and asyncio data
                self.log.write({"ev": "tasks_unavailable", "reason": repr(exc)})
        if self.want_viztracer:
            self._prepare_viztracer()

    def _calibrate_gil_probe(self) -> None:
        """Find the GIL's address in this interpreter for the out-of-process GIL sampler; done
        before recording starts so the sampler can attach at once."""
        try:
            from tracer.instrument import gil_probe

            layout: dict[str, Any] = gil_probe.calibrate()
        except Exception as exc:
            layout = {"error": f"{type(exc).__name__}: {exc}"}
        write_gil_layout(self.raw_dir, layout)

    def _prepare_viztracer(self) -> None:
        try:
            from viztracer import VizTracer
        except ImportError:
            self.viztracer_error = (f"viztracer is not installed for {sys.executable} "
                                    f"({sys.executable} -m pip install viztracer)")
            return
        try:
            self.viztracer = VizTracer(
                output_file=os.path.join(self.raw_dir, raw_files.VIZTRACER),
                tracer_entries=self.tracer_entries,
                verbose=0,
                pid_suffix=False,
                register_global=True,
                # Written by its C code straight to the file: its Python save builds a dict per
                # event first (measured: ~700 bytes per event at the peak, against ~90 for the
                # buffer itself, and 3x slower), which a long run's target could not afford.
                dump_raw=True,
            )
        except Exception as exc:
            self.viztracer_error = f"{type(exc).__name__}: {exc}"
            self.viztracer = None
            return
        self.viztracer_cost = measure_viztracer_cost(self.viztracer)

    def begin(self) -> int:
        """Mark t0 and start tracing; returns t0 (CLOCK_MONOTONIC ns)."""
        self.log.write({"ev": "main", "t_ns": time.monotonic_ns(), "tid": threading.get_native_id(),
                        "ident": threading.get_ident(),
                        "name": thread_name(threading.current_thread()),
                        "tstate": _thread_state_address()})
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and thread.native_id is not None:
                self.log.write({"ev": "existing", "tid": thread.native_id,
                                "name": thread_name(thread), "daemon": _thread_daemon(thread)})
        for tid in _own_helper_threads():
            self.log.write({"ev": "internal", "tid": tid})
        self.t0_ns = time.monotonic_ns()
        self.log.write({"ev": "run_start", "t_ns": self.t0_ns})
        if self.viztracer is not None:
            self.viztracer.getts()  # the first call initialises the clock: keep it out of the pair
            self.clock_pairs.append((self.viztracer.getts(), time.monotonic_ns()))
            self.viztracer.start()
        return self.t0_ns

    def finish(self, reason: str = "exit") -> None:
        """Stop recording and write everything down; safe to call twice. A forked child (which
        inherits this object) never writes: the record is the parent's."""
        if self.finished or os.getpid() != self.pid:
            return
        self.finished = True
        end_ns = time.monotonic_ns()
        try:
            alive = threads_alive_at_exit()
        except Exception as exc:
            faults.note("threads_alive_lost", exc)
            alive = []
        cost_at_exit: dict[str, float] = {}
        if self.viztracer is not None:
            try:
                self.viztracer.stop()
                self.clock_pairs.append((self.viztracer.getts(), time.monotonic_ns()))
                self.viztracer.save()
            except Exception as exc:
                self.viztracer_error = f"saving the VizTracer trace failed: {exc}"
            else:
                # Once more now that the trace is saved (the buffer is free again): the machine's
                # speed drifts, and the two measurements bracket the run (about 0.15 s).
                cost_at_exit = measure_viztracer_cost(self.viztracer)
        if self.locks_installed:
            try:
                from tracer.instrument import locks

                locks.flush()
                locks.write_state()
            except Exception as exc:
                self.log.write({"ev": "locks_unavailable", "reason": repr(exc)})
        if self.tasks_installed:
            from tracer.instrument import tasks

            tasks.finish()
        summary = {
            "t0_ns": self.t0_ns, "end_ns": end_ns, "exit_code": self.exit_code,
            "status": self.status, "error": self.error, "end_reason": reason,
            "python": sys.executable, "python_version": sys.version.split()[0],
            "viztracer_error": self.viztracer_error, "viztracer_clock": self.clock_pairs,
            "viztracer_entries": self.tracer_entries,
            "viztracer_cost": self.viztracer_cost,
            "viztracer_cost_end": cost_at_exit,
            "daemon_alive": alive, "pid": os.getpid(),
            # What our hooks inside the program could not record as it was (see faults.py).
            "hook_faults": faults.snapshot(),
        }
        text = json.dumps(summary, default=faults.json_default)
        with open(os.path.join(self.raw_dir, raw_files.TARGET), "w", encoding="utf-8") as handle:
            handle.write(text)
        self.log.close()

    def undo(self) -> None:
        """Leave the process as it was (the API records a block, then the program goes on)."""
        if self.original_bootstrap is not None:
            unhook_threads(self.original_bootstrap)
        if self.locks_installed:
            from tracer.instrument import locks

            locks.uninstall()
        if self.tasks_installed:
            from tracer.instrument import tasks

            tasks.uninstall()


def _loop(n: int) -> None:
    total = 0
    for i in range(n):
        total += i


def _noop() -> None:
    pass


def _python_calls(n: int) -> None:
    for _ in range(n):
        _noop()


def _c_calls(n: int) -> None:
    empty: list[int] = []
    for _ in range(n):
        len(empty)


def _median(values: list[float]) -> float:
    """The middle value (``statistics`` would import ``decimal`` and ``fractions`` into the
    target, at start-up, for one number)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _seconds(fn: Any, arg: int) -> float:
    began = time.perf_counter()
    fn(arg)
    return time.perf_counter() - began


# Short rounds, many of them, and the median of each: a round the OS interrupts (a busy 2-core
# machine does that often) is an outlier the median ignores, where a mean or a single long round
# would carry it. 21 rounds of 2,000 calls of each kind take about 80 ms in all.
COST_ROUNDS = 21
COST_CALLS = 2_000
COST_LOOP = 20_000
# Bytes of VizTracer's buffer per event (VizTracer 1.1: the resident memory grew by 88 bytes per
# recorded call), and how much memory the first-touch measurement faults in.
ENTRY_BYTES = 88
TOUCH_BYTES = 16 << 20
PAGE_BYTES = 4096


def measure_viztracer_cost(viztracer: Any) -> dict[str, float]:
    """What VizTracer costs in this interpreter, measured here before the program starts: the
    extra time of one recorded Python call and of one recorded C call (the two kinds of event it
    logs), how much slower a call-free loop runs under its profile hook (on Python 3.11 the hook
    takes the interpreter off its fast path; 3.12+ barely notice), and what it costs to fault in
    the fresh memory each of its buffer's entries takes the first time (4 us a page on a virtual
    machine here: about 90 ns an event, a third of a call's cost). Plain and traced rounds
    alternate in the same interpreter; the model multiplies these by the calls this run recorded
    to estimate how much VizTracer slowed it."""
    samples: dict[str, tuple[list[float], list[float]]] = {
        "python": ([], []), "c": ([], []), "loop": ([], [])}
    kinds = (("python", _python_calls, COST_CALLS), ("c", _c_calls, COST_CALLS),
             ("loop", _loop, COST_LOOP))
    try:
        # First, discarded: one round of each (the adaptive interpreter specialises the plain
        # code, VizTracer's first events touch cold code) and enough traced calls to fault in
        # the part of the buffer the measured rounds will use, so that their figures are the
        # calls' own cost; the first touch of the buffer is measured on its own below.
        for _, fn, n in kinds:
            fn(n)
        viztracer.start()
        try:
            _python_calls(COST_ROUNDS * (2 * COST_CALLS + 50))
        finally:
            viztracer.stop()
        viztracer.clear()
        for _ in range(COST_ROUNDS):
            plain = [(name, _seconds(fn, n)) for name, fn, n in kinds]
            viztracer.start()
            try:
                traced = [(name, _seconds(fn, n)) for name, fn, n in kinds]
            finally:
                viztracer.stop()
            for (name, untraced_round), (_, traced_round) in zip(plain, traced):
                samples[name][0].append(untraced_round)
                samples[name][1].append(traced_round)
        viztracer.clear()
    except Exception:
        return {}
    plain_s = {name: _median(runs[0]) for name, runs in samples.items()}
    traced_s = {name: _median(runs[1]) for name, runs in samples.items()}

    def extra_ns(name: str) -> float:
        return round(max(0.0, traced_s[name] - plain_s[name]) / COST_CALLS * 1e9, 1)

    return {
        "python_call_ns": extra_ns("python"),
        "c_call_ns": extra_ns("c"),
        "loop_slowdown": round(traced_s["loop"] / plain_s["loop"], 3) if plain_s["loop"] > 0
        else 0.0,
        "fresh_entry_ns": round(_first_touch_ns() * ENTRY_BYTES / PAGE_BYTES, 1),
        "rounds": COST_ROUNDS,
    }


def _first_touch_ns() -> float:
    """Nanoseconds to fault in one page of fresh anonymous memory (what VizTracer's buffer is),
    less the cost of writing to it once it is there."""
    try:
        memory = mmap.mmap(-1, TOUCH_BYTES)
    except OSError:
        return 0.0
    with memory:
        offsets = range(0, TOUCH_BYTES, PAGE_BYTES)
        began = time.perf_counter()
        for offset in offsets:
            memory[offset] = 1
        cold = time.perf_counter() - began
        began = time.perf_counter()
        for offset in offsets:
            memory[offset] = 2
        warm = time.perf_counter() - began
    return max(0.0, cold - warm) / len(offsets) * 1e9


def _own_helper_threads() -> list[int]:
    """Threads that exist before user code runs, besides the main one, are ours (the lock
    recorder's writer, for one): the model leaves them out."""
    try:
        tids = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return []
    known = {t.native_id for t in threading.enumerate()}
    return [tid for tid in tids if tid != threading.get_native_id() and tid not in known]


def threads_alive_at_exit() -> list[dict[str, Any]]:
    """Threads still running when the program ends: daemon ones are killed at exit."""
    frames = sys._current_frames()
    alive = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or not thread.is_alive():
            continue
        if is_internal(thread):
            continue
        frame = frames.get(thread.ident or -1)
        alive.append({"tid": thread.native_id, "name": thread_name(thread),
                      "daemon": _thread_daemon(thread), "stack": _stack_labels(frame)})
    return alive


_OWN_CODE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _stack_labels(frame: FrameType | None) -> list[str]:
    """Innermost first, without our own frames (a lock wait sits inside our lock wrapper: the
    user wants to see their ``with lock:`` line, not ours)."""
    labels: list[str] = []
    while frame is not None and len(labels) < 40:
        code = frame.f_code
        if not os.path.abspath(code.co_filename).startswith(_OWN_CODE):
            labels.append(f"{code.co_name} ({os.path.basename(code.co_filename)}:"
                          f"{frame.f_lineno})")
        frame = frame.f_back
    return labels
