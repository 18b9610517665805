"""Runs inside the target process: set up in-process recording, wait for the go signal, run the
user's program exactly as ``python`` would, and always leave what was recorded on disk.

Started by the session as ``python -m tracer.bootstrap CONFIG.json``. Standard library only, like
:mod:`tracer.inprocess`, because ``--python`` may name an interpreter with nothing installed.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Any, NoReturn

from tracer import raw_files
from tracer.inprocess import InProcessRecording, is_internal
from tracer.instrument import faults


class _Target:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        # "recording" is RecordOptions.for_target(): the session's options for this side.
        self.recording = InProcessRecording(config["raw_dir"], **config["recording"])

    def prepare(self) -> None:
        self.recording.prepare()
        self._patch_os_exit()
        signal.signal(signal.SIGTERM, _raise_interrupt)
        # A forked child (multiprocessing's fork start method) is not the recorded process: it
        # must neither save the target's record nor turn SIGTERM into KeyboardInterrupt. SIGTERM
        # is blocked across the fork: one sent to the child before its handler is reset would
        # otherwise be swallowed (a pool terminating a worker it has just forked waited forever).
        os.register_at_fork(before=_block_sigterm, after_in_parent=_unblock_sigterm,
                            after_in_child=_forget_in_child)

    def _patch_os_exit(self) -> None:
        """``os._exit`` skips every finally block; save what was recorded before it happens."""
        real_exit = os._exit
        recording = self.recording

        def _exit(status: int) -> NoReturn:
            if os.getpid() != recording.pid:  # a forked child (multiprocessing's workers)
                _flush_child_locks()
                real_exit(status)
            try:  # the program asked to leave now: whatever we fail to save, it leaves
                recording.exit_code = status
                recording.status = "ok" if status == 0 else "failed"
                recording.finish(reason="os._exit")
            except Exception:  # nowhere left to write it, and no time
                pass
            real_exit(status)

        os._exit = _exit

    def run(self) -> int:
        recording = self.recording
        sys.argv = list(self.config["argv"])
        recording.begin()
        try:
            try:
                self._run_user_code()
            finally:
                _wait_for_non_daemon_threads()
        except SystemExit as exc:
            recording.exit_code = _exit_code(exc.code)
            recording.status = "ok" if recording.exit_code == 0 else "failed"
        except KeyboardInterrupt as exc:
            _ignore_stop_signals()
            if self._stopped_for() == "timeout":
                print(f"threadscope: --timeout reached; the program was stopped "
                      f"{_where_stopped(exc)}", file=sys.stderr)
            else:
                traceback.print_exc()
            recording.exit_code = 130
            recording.status = "interrupted"
        except BaseException as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
            recording.exit_code = 1
            recording.status = "failed"
            recording.error = f"{type(exc).__name__}: {exc}"
        return recording.exit_code or 0

    def _stopped_for(self) -> str:
        """Why the session stopped us, if it said (raw_files.STOP_REASON): "" for a Ctrl-C."""
        try:
            with open(os.path.join(self.config["raw_dir"], raw_files.STOP_REASON),
                      encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            return ""

    def _run_user_code(self) -> None:
        kind, what = self.config["kind"], self.config["run"]
        if kind == "script":
            sys.path[0] = os.path.dirname(os.path.abspath(what))
            runpy.run_path(what, run_name="__main__")
        else:
            sys.path[0] = os.getcwd()
            runpy.run_module(what, run_name="__main__", alter_sys=True)


def _where_stopped(exc: BaseException) -> str:
    """ "in join() (app.py:4)": the program's innermost frame outside the standard library and
    us, from the interrupt's traceback (the whole stack is in the report)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stdlib = os.path.dirname(os.__file__)
    mine = [f for f in frames if not f.filename.startswith((ours, stdlib, "<frozen"))]
    if not mine:
        return "(the report has its stacks)"
    last = mine[-1]
    return f"in {last.name} ({os.path.basename(last.filename)}:{last.lineno})"


def _wait_for_non_daemon_threads() -> None:
    """What the interpreter does at exit, done here so the threads are still traced."""
    main = threading.main_thread()
    while True:
        pending = [t for t in threading.enumerate() if t is not main and not t.daemon
                   and t.is_alive() and not is_internal(t)]
        if not pending:
            return
        for thread in pending:
            thread.join()


def _flush_child_locks() -> None:
    """A forked child leaving through ``os._exit`` skips atexit: write its lock and task events
    now."""
    for name in ("tracer.instrument.locks", "tracer.instrument.tasks"):
        recorder = sys.modules.get(name)
        if recorder is None:
            continue
        try:
            recorder.flush()
        except Exception as exc:
            faults.note("lock_events_lost", exc)


# Forking thread -> whether the program itself had SIGTERM blocked (then it stays blocked).
_sigterm_was_blocked: dict[int, bool] = {}


def _block_sigterm() -> None:
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        _sigterm_was_blocked[threading.get_ident()] = signal.SIGTERM in before
    except Exception as exc:  # no pthread_sigmask: the old window remains
        faults.note("fork_handler", exc)


def _unblock_sigterm() -> None:
    """After the fork (either side): a SIGTERM that came meanwhile is delivered now."""
    try:
        if not _sigterm_was_blocked.pop(threading.get_ident(), True):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    except Exception as exc:
        faults.note("fork_handler", exc)


def _forget_in_child() -> None:
    """Runs in every forked child of the program: SIGTERM back to the default if the handler
    is still ours (the program's own stays), then unblocked, so one already sent kills the
    child as it would untraced. It must not raise there (a fork from a thread other than the
    main one cannot set a signal handler on some versions)."""
    try:
        if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except Exception as exc:
        faults.note("fork_handler", exc)
    _unblock_sigterm()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _ignore_stop_signals() -> None:
    """Once the program has ended, a second Ctrl-C or SIGTERM must not cut the save of its record
    in half; the session stops a target that takes too long with SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
    _ignore_stop_signals()
    interrupted = target.recording.status == "interrupted"
    target.recording.finish()
    sys.stdout.flush()
    sys.stderr.flush()
    if interrupted:
        # Non-daemon threads may still be stuck (that is often why we were interrupted):
        # leave now rather than wait for them in the interpreter's shutdown.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
