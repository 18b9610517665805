"""Which PyThreadState is which OS thread, in a process we attach to.

The GIL sampler reads the holder as a ``PyThreadState`` address; when threadscope starts the
target, its bootstrap logs each thread's address to ``threads.jsonl`` as the thread starts. An
attached process has no such log, so this module walks the interpreter's own thread list from
outside (``_PyRuntime.interpreters.head`` -> each interpreter's ``threads.head`` -> ``next``) and
reads each thread state's OS thread id, then logs ``threads.jsonl`` records in the bootstrap's
format: ``main``/``existing`` for threads alive at attach time, ``start``/``end`` for those that
appear or vanish while recording, each with the process's pid (the GIL sampler also walks the
child processes of a target it follows, into the same log).

Offsets were measured per version with ctypes in pyenv's 3.10.13, 3.11.7, 3.12.1 and 3.13.0 and
Debian's 3.11.2 (``threading.get_native_id()`` against the memory at ``PyThreadState_Get() + k``);
3.13 publishes them itself in ``_PyRuntime.debug_offsets``, which is read instead. A walk is
trusted only if every thread state points back at its interpreter and the thread ids it yields
are threads of the process: wrong offsets cannot pass that, a walk torn by a thread starting or
ending is retried.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from tracer.errors import RecorderUnavailable
from tracer.gil_locate import Interpreter
from tracer.inprocess import EventLog


@dataclass(frozen=True)
class ThreadOffsets:
    interpreters_head: int  # in _PyRuntime: PyInterpreterState *
    interp_next: int  # in PyInterpreterState
    threads_head: int  # in PyInterpreterState: the newest PyThreadState *
    tstate_next: int
    tstate_interp: int
    native_thread_id: int | None  # None before 3.11: read glibc's struct pthread instead
    thread_id: int  # pthread_t, glibc: the address of the thread's struct pthread


THREAD_OFFSETS = {
    (3, 10): ThreadOffsets(32, 0, 8, 8, 16, None, 176),
    (3, 11): ThreadOffsets(40, 0, 16, 8, 16, 160, 152),
    (3, 12): ThreadOffsets(40, 0, 72, 8, 16, 144, 136),
    (3, 13): ThreadOffsets(632, 7264, 7344, 8, 16, 160, 152),
}
# glibc 2.36 on x86_64: ``pid_t tid`` sits 0x2d0 bytes into struct pthread (measured as above
# against pthread_self(); the validation against /proc/PID/task catches another glibc's layout).
PTHREAD_TID_OFFSET = 720
_DEBUG_COOKIE = b"xdebugpy"
# Byte offsets inside 3.13's _Py_DebugOffsets (Include/internal/pycore_runtime.h, 3.13.0).
_DEBUG_13 = {"interpreters_head": 40, "interp_next": 64, "threads_head": 72,
             "tstate_next": 168, "tstate_interp": 176, "thread_id": 192, "native_thread_id": 200}
MAX_INTERPRETERS = 256
MAX_THREADS = 100_000


def thread_offsets(interpreter: Interpreter) -> ThreadOffsets:
    if interpreter.version == (3, 13):
        try:
            head = interpreter.memory.read(interpreter.runtime_addr, 208)
        except OSError as exc:
            raise RecorderUnavailable(f"cannot read _PyRuntime.debug_offsets: {exc}") from exc
        if head[:8] == _DEBUG_COOKIE:
            word = {name: struct.unpack_from("<Q", head, at)[0] for name, at in _DEBUG_13.items()}
            return ThreadOffsets(**word)
    offsets = THREAD_OFFSETS.get(interpreter.version)
    if offsets is None:
        raise RecorderUnavailable(f"thread state layout of CPython {interpreter.version_text} "
                                  "is not known")
    return offsets


def python_threads(interpreter: Interpreter, offsets: ThreadOffsets,
                   tasks: set[int] | None = None) -> dict[int, int]:
    """tid -> PyThreadState address, for every thread state of every interpreter whose thread
    is one of ``tasks`` (default: the process's threads now); RecorderUnavailable if the walk
    does not hold together (see the module doc)."""
    memory = interpreter.memory
    if tasks is None:
        tasks = _tasks(interpreter.pid)
    found: dict[int, int] = {}
    seen: set[int] = set()
    try:
        interp = memory.word(interpreter.runtime_addr + offsets.interpreters_head)
        for _ in range(MAX_INTERPRETERS):
            if not interp:
                break
            tstate = memory.word(interp + offsets.threads_head)
            for _ in range(MAX_THREADS):
                if not tstate:
                    break
                if tstate in seen:
                    raise RecorderUnavailable(f"thread state {tstate:#x} seen twice: a loop")
                seen.add(tstate)
                if memory.word(tstate + offsets.tstate_interp) != interp:
                    raise RecorderUnavailable(f"thread state {tstate:#x} does not point back at "
                                              f"its interpreter {interp:#x}")
                tid = _native_id(interpreter, offsets, tstate)
                if tid in tasks:  # else not bound to a thread yet, or its thread just ended
                    if tid in found:
                        raise RecorderUnavailable(f"thread {tid} has two thread states")
                    found[tid] = tstate
                tstate = memory.word(tstate + offsets.tstate_next)
            interp = memory.word(interp + offsets.interp_next)
    except OSError as exc:
        raise RecorderUnavailable(f"cannot read the interpreter's thread list: {exc}") from exc
    if not found:
        raise RecorderUnavailable(f"none of the {len(seen)} thread states of CPython "
                                  f"{interpreter.version_text} names a thread of process "
                                  f"{interpreter.pid}: unknown thread state layout")
    return found


def _native_id(interpreter: Interpreter, offsets: ThreadOffsets, tstate: int) -> int:
    memory = interpreter.memory
    if offsets.native_thread_id is not None:
        return memory.word(tstate + offsets.native_thread_id) & 0xFFFFFFFF
    pthread = memory.word(tstate + offsets.thread_id)
    if not pthread:
        return 0
    tid: int = struct.unpack("<i", memory.read(pthread + PTHREAD_TID_OFFSET, 4))[0]
    return tid


def _tasks(pid: int) -> set[int]:
    try:
        return {int(name) for name in os.listdir(f"/proc/{pid}/task")}
    except OSError:
        return set()


class AttachedThreads:
    """Keeps ``threads.jsonl`` up to date with the target's thread states while attach records.

    :meth:`poll` is cheap when nothing changed (one stat of ``/proc/PID/task``); it walks the
    thread list after the thread count changed, for a few polls after that (a new thread binds
    its thread state a moment after it appears in ``/proc``), and every ``REWALK_S`` in case one
    thread ended and another started in between.
    """

    REWALK_S = 0.5
    POLLS_AFTER_CHANGE = 5
    ATTEMPTS = 5  # a walk torn by a starting thread is retried this many times at attach

    def __init__(self, interpreter: Interpreter, log_path: str) -> None:
        self._interpreter = interpreter
        self._offsets = thread_offsets(interpreter)
        self._known: dict[int, int] = {}
        self._log_path = log_path
        self._log: EventLog | None = None
        self._links = 0
        self._pending = 0
        self._last_poll_ns = 0
        self._last_walk_ns = 0

    def start(self) -> None:
        """The first walk, logged as ``main``/``existing``; RecorderUnavailable if no walk of
        ``ATTEMPTS`` holds together."""
        error: RecorderUnavailable | None = None
        for _ in range(self.ATTEMPTS):
            try:
                threads = python_threads(self._interpreter, self._offsets)
                break
            except RecorderUnavailable as exc:
                error = exc
                time.sleep(0.005)
        else:
            assert error is not None
            raise error
        self._log = EventLog(self._log_path)
        now = time.monotonic_ns()
        main = self._interpreter.pid  # main first, then by tid: a stable order to read
        for tid, tstate in sorted(threads.items(), key=lambda item: (item[0] != main, item[0])):
            kind = "main" if tid == main else "existing"
            self._log.write({"ev": kind, "pid": self._interpreter.pid, "tid": tid,
                             "tstate": tstate, "t_ns": now})
        self._known = threads
        self._links = self._task_links()
        self._last_poll_ns = self._last_walk_ns = now

    def poll(self) -> None:
        """Log threads that started or ended since the last walk; never raises."""
        if self._log is None:
            return
        now = time.monotonic_ns()
        links = self._task_links()
        if links != self._links:
            self._links = links
            self._pending = self.POLLS_AFTER_CHANGE
        if self._pending or now - self._last_walk_ns > self.REWALK_S * 1e9:
            self._pending = max(0, self._pending - 1)
            self._walk(now)
        self._last_poll_ns = now

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _walk(self, now: int) -> None:
        assert self._log is not None
        try:
            threads = python_threads(self._interpreter, self._offsets)
        except RecorderUnavailable:
            return  # torn by a thread starting or ending, or the target is exiting: next poll
        self._last_walk_ns = now
        for tid in sorted(set(self._known) - set(threads)):
            self._log.write({"ev": "end", "pid": self._interpreter.pid, "tid": tid, "t_ns": now})
        for tid, tstate in sorted(threads.items()):
            if self._known.get(tid) != tstate:
                # From the previous poll on, the earliest it can have started: samples where its
                # thread state holds the GIL must map to it (its tid is in no sample before it
                # existed, so an early start costs nothing).
                self._log.write({"ev": "start", "pid": self._interpreter.pid, "tid": tid,
                                 "tstate": tstate, "t_ns": self._last_poll_ns})
        self._known = threads

    def _task_links(self) -> int:
        try:
            return os.stat(f"/proc/{self._interpreter.pid}/task").st_nlink
        except OSError:
            return 0
