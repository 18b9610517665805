"""Runs inside the target process: set up in-process recording, wait for the go signal, run the
user's program exactly as ``python`` would, and always leave what was recorded on disk.

Started by the session as ``python -m tracer.bootstrap CONFIG.json``. Standard library only
(VizTracer and our lock instrumentation are imported when enabled), because ``--python`` may
point at an interpreter that has nothing else installed.
"""

from __future__ import annotations

import _thread
import ctypes
import json
import os
import runpy
import signal
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any, NoReturn

THREADS_RAW = "threads.jsonl"
TARGET_RAW = "target.json"
VIZTRACER_RAW = "viztracer.json"
VIZTRACER_CLOCK_RAW = "viztracer_clock.json"
GIL_LAYOUT_RAW = "gil_layout.json"


class _EventLog:
    """Append-only JSON lines, flushed per line: thread starts and ends must survive a crash."""

    def __init__(self, path: str) -> None:
        self._lock = _thread.allocate_lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _allow_ptrace_from_anyone() -> None:
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


def _hook_threads(log: _EventLog) -> None:
    """Record every threading.Thread's start and end with its native id, name and daemon flag."""
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def _bootstrap_inner(self: threading.Thread) -> None:
        log.write({"ev": "start", "t_ns": time.monotonic_ns(), "tid": threading.get_native_id(),
                   "ident": threading.get_ident(), "name": self.name, "daemon": self.daemon,
                   "tstate": _thread_state_address()})
        try:
            original(self)
        finally:
            log.write({"ev": "end", "t_ns": time.monotonic_ns(), "tid": threading.get_native_id(),
                       "name": self.name})

    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]


class _Target:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.raw_dir: str = config["raw_dir"]
        self.log = _EventLog(os.path.join(self.raw_dir, THREADS_RAW))
        self.viztracer: Any = None
        self.clock_pairs: list[tuple[float, int]] = []
        self.viztracer_error = ""
        self.finished = False
        self.t0_ns = 0
        self.exit_code = 0
        self.status = "ok"
        self.error: str | None = None

    def prepare(self) -> None:
        _allow_ptrace_from_anyone()
        _hook_threads(self.log)
        self._calibrate_gil_probe()
        if self.config.get("locks"):
            try:
                from tracer.instrument import locks

                locks.install(os.path.join(self.raw_dir, "locks.jsonl"))
            except Exception as exc:  # the run goes on without lock data, and says so
                self.log.write({"ev": "locks_unavailable", "reason": repr(exc)})
        if self.config.get("viztracer"):
            self._prepare_viztracer()
        self._patch_os_exit()
        signal.signal(signal.SIGTERM, _raise_interrupt)

    def _calibrate_gil_probe(self) -> None:
        """Find the GIL's address in this interpreter for the out-of-process GIL sampler; done
        before the ready signal so the sampler can attach at once."""
        try:
            from tracer.instrument import gil_probe

            layout: dict[str, Any] = gil_probe.calibrate()
        except Exception as exc:
            layout = {"error": f"{type(exc).__name__}: {exc}"}
        with open(os.path.join(self.raw_dir, GIL_LAYOUT_RAW), "w", encoding="utf-8") as handle:
            json.dump(layout, handle)

    def _prepare_viztracer(self) -> None:
        try:
            from viztracer import VizTracer
        except ImportError:
            self.viztracer_error = (f"viztracer is not installed for {sys.executable} "
                                    f"({sys.executable} -m pip install viztracer)")
            return
        try:
            self.viztracer = VizTracer(
                output_file=os.path.join(self.raw_dir, VIZTRACER_RAW),
                tracer_entries=int(self.config.get("tracer_entries", 1_000_000)),
                verbose=0,
                pid_suffix=False,
                register_global=True,
            )
        except Exception as exc:
            self.viztracer_error = f"{type(exc).__name__}: {exc}"
            self.viztracer = None

    def _patch_os_exit(self) -> None:
        """``os._exit`` skips every finally block; save what was recorded before it happens."""
        real_exit = os._exit

        def _exit(status: int) -> NoReturn:
            code = status
            self.exit_code = code
            self.status = "ok" if code == 0 else "failed"
            self.finish(reason="os._exit")
            real_exit(code)

        os._exit = _exit

    def run(self) -> int:
        self.log.write({"ev": "main", "t_ns": time.monotonic_ns(), "tid": threading.get_native_id(),
                        "ident": threading.get_ident(), "name": threading.current_thread().name,
                        "tstate": _thread_state_address()})
        for tid in _own_helper_threads():
            self.log.write({"ev": "internal", "tid": tid})
        sys.argv = list(self.config["argv"])
        self.t0_ns = time.monotonic_ns()
        self.log.write({"ev": "run_start", "t_ns": self.t0_ns})
        if self.viztracer is not None:
            self.viztracer.getts()  # the first call initialises the clock: keep it out of the pair
            self.clock_pairs.append((self.viztracer.getts(), time.monotonic_ns()))
            self.viztracer.start()
        try:
            try:
                self._run_user_code()
            finally:
                self._wait_for_non_daemon_threads()
        except SystemExit as exc:
            self.exit_code = _exit_code(exc.code)
            self.status = "ok" if self.exit_code == 0 else "failed"
        except KeyboardInterrupt:
            traceback.print_exc()
            self.exit_code = 130
            self.status = "interrupted"
        except BaseException as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
            self.exit_code = 1
            self.status = "failed"
            self.error = f"{type(exc).__name__}: {exc}"
        return self.exit_code

    def _run_user_code(self) -> None:
        kind, what = self.config["kind"], self.config["run"]
        if kind == "script":
            sys.path[0] = os.path.dirname(os.path.abspath(what))
            runpy.run_path(what, run_name="__main__")
        else:
            sys.path[0] = os.getcwd()
            runpy.run_module(what, run_name="__main__", alter_sys=True)

    def _wait_for_non_daemon_threads(self) -> None:
        """What the interpreter does at exit, done here so the threads are still traced."""
        main = threading.main_thread()
        while True:
            pending = [t for t in threading.enumerate() if t is not main and not t.daemon
                       and t.is_alive() and not t.name.startswith("threadscope-")]
            if not pending:
                return
            for thread in pending:
                thread.join()

    def finish(self, reason: str = "exit") -> None:
        """Stop recording and write everything down; safe to call twice."""
        if self.finished:
            return
        self.finished = True
        end_ns = time.monotonic_ns()
        alive = _daemon_threads_alive()
        if self.viztracer is not None:
            try:
                self.viztracer.stop()
                self.clock_pairs.append((self.viztracer.getts(), time.monotonic_ns()))
                self.viztracer.save()
            except Exception as exc:
                self.viztracer_error = f"saving the VizTracer trace failed: {exc}"
        if self.config.get("locks"):
            try:
                from tracer.instrument import locks

                locks.flush()
                self.log.write({"ev": "lock_state", "state": locks.snapshot_state()})
            except Exception:
                pass
        summary = {
            "t0_ns": self.t0_ns, "end_ns": end_ns, "exit_code": self.exit_code,
            "status": self.status, "error": self.error, "end_reason": reason,
            "python": sys.executable, "python_version": sys.version.split()[0],
            "viztracer_error": self.viztracer_error, "viztracer_clock": self.clock_pairs,
            "viztracer_entries": self.config.get("tracer_entries"),
            "daemon_alive": alive, "pid": os.getpid(),
        }
        with open(os.path.join(self.raw_dir, TARGET_RAW), "w", encoding="utf-8") as handle:
            json.dump(summary, handle)
        self.log.close()


def _own_helper_threads() -> list[int]:
    """Threads that exist before user code runs, besides the main one, are ours (the lock
    recorder's writer, for one): the model leaves them out."""
    try:
        tids = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return []
    return [tid for tid in tids if tid != threading.get_native_id()]


def _daemon_threads_alive() -> list[dict[str, Any]]:
    """Threads still running when the program ends: the interpreter kills them at exit."""
    frames = sys._current_frames()
    alive = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or not thread.is_alive():
            continue
        if thread.name.startswith("threadscope-"):
            continue
        frame = frames.get(thread.ident or -1)
        alive.append({"tid": thread.native_id, "name": thread.name, "daemon": thread.daemon,
                      "stack": _stack_labels(frame)})
    return alive


def _stack_labels(frame: FrameType | None) -> list[str]:
    labels: list[str] = []
    while frame is not None and len(labels) < 40:
        code = frame.f_code
        labels.append(f"{code.co_name} ({os.path.basename(code.co_filename)}:{frame.f_lineno})")
        frame = frame.f_back
    return labels


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _await_go(config: dict[str, Any]) -> None:
    """Tell the session we are ready, then wait until its recorders are attached."""
    os.write(int(config["ready_fd"]), b"R")
    os.close(int(config["ready_fd"]))
    go = os.read(int(config["go_fd"]), 1)
    os.close(int(config["go_fd"]))
    if go != b"G":
        os._exit(70)  # the session went away before starting us


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    target = _Target(config)
    target.prepare()
    _await_go(config)
    code = target.run()
    interrupted = target.status == "interrupted"
    target.finish()
    sys.stdout.flush()
    sys.stderr.flush()
    if interrupted:
        # Non-daemon threads may still be stuck (that is often why we were interrupted):
        # leave now rather than wait for them in the interpreter's shutdown.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
