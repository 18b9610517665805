"""Reading one process's GIL and its threads' waits from outside: the primitives the GIL
sampler ticks with, for the target and for each child process it follows.

See :mod:`tracer.recorders.gil_sampler` for what is read, in which order, and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Callable
from typing import Any

RUNNABLE, GIL_WAIT, HANDOFF_WAIT, BLOCKED = "R", "G", "H", "B"
CODES = {
    RUNNABLE: "runnable: on a CPU or ready for one (the holder, or native code without the GIL)",
    GIL_WAIT: "asleep in futex on the GIL's cond/mutex: waiting for the GIL",
    HANDOFF_WAIT: "asleep in futex on the GIL's switch_cond/mutex: dropped it, awaits hand-off",
    BLOCKED: "asleep in any other syscall: sleep, lock, I/O, join",
}

# The futex syscall number per machine (``uname -m``): /proc/TID/syscall prints numbers, not
# names. x86_64: 202 (arch/x86/entry/syscalls/syscall_64.tbl); aarch64: 98 (the generic table).
FUTEX_NR = {"x86_64": 202, "aarch64": 98}

# ``interval, last_holder, locked, switch_number`` with the C compiler's alignment ("@").
GIL_HEAD = struct.Struct("@LPiL")


class Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class GilReader:
    """One ``process_vm_readv`` of the GIL's head into a buffer allocated once."""

    def __init__(self, pid: int, address: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._call = libc.process_vm_readv
        self._call.argtypes = (ctypes.c_int, ctypes.POINTER(Iovec), ctypes.c_ulong,
                               ctypes.POINTER(Iovec), ctypes.c_ulong, ctypes.c_ulong)
        self._call.restype = ctypes.c_ssize_t
        self._pid = pid
        self._buffer = ctypes.create_string_buffer(GIL_HEAD.size)
        self._local = Iovec(ctypes.addressof(self._buffer), GIL_HEAD.size)
        self._remote = Iovec(address, GIL_HEAD.size)

    def read(self) -> tuple[int, int, int, int]:
        """(interval_us, last_holder, locked, switch_number); OSError once the target is gone."""
        got = self._call(self._pid, ctypes.byref(self._local), 1, ctypes.byref(self._remote), 1, 0)
        if got != GIL_HEAD.size:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno) if got < 0 else f"short read ({got} bytes)")
        interval, holder, locked, switches = GIL_HEAD.unpack_from(self._buffer)
        return interval, holder or 0, locked, switches


class ThreadWatch:
    """One thread's ``syscall`` and ``schedstat``, kept open: ``pread`` at 0 re-reads a ``/proc``
    file without open/close.

    ``schedstat`` (on-CPU ns, run-queue ns, times scheduled) only changes when the thread runs.
    While it is unchanged the thread has not run since the last tick, so it still sleeps in the
    same wait (or was woken and waits for a CPU, still inside that wait): the last code stands and
    ``syscall`` is not read. That is cheaper (4 us against ~10 us per sleeping thread here) and
    truer: a GIL waiter woken by the holder reads ``running`` in ``syscall`` until it gets a CPU,
    yet it still waits for the GIL.
    """

    __slots__ = ("code", "nr", "sched", "sched_fd", "syscall_fd", "tid")

    def __init__(self, pid: int, tid: int) -> None:
        base = f"/proc/{pid}/task/{tid}"
        self.tid = tid
        self.syscall_fd = os.open(f"{base}/syscall", os.O_RDONLY)
        try:
            self.sched_fd = os.open(f"{base}/schedstat", os.O_RDONLY)
        except OSError:
            os.close(self.syscall_fd)
            raise
        self.sched = b""
        self.code = ""
        self.nr = -1  # the syscall a BLOCKED thread sleeps in

    def read(self, classify: Callable[[bytes], tuple[str, int]]
             ) -> tuple[str, int, int, int, int] | None:
        """This tick's code and the thread's ``schedstat`` totals: run-queue wait (ns), times
        scheduled, on-CPU time (ns); then the syscall number (-1 unless blocked); None once it
        exited."""
        try:
            sched = os.pread(self.sched_fd, 96, 0)
            if sched != self.sched or not self.code:
                line = os.pread(self.syscall_fd, 64, 0)
                if not line:
                    return None
                self.code, self.nr = classify(line)
                self.sched = sched
            on_cpu, run_queue, scheduled = sched.split()[:3]
            return self.code, int(run_queue), int(scheduled), int(on_cpu), self.nr
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        for fd in (self.syscall_fd, self.sched_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class Classifier:
    """Turns one ``syscall`` line into a code and, for ``BLOCKED``, the syscall's number (-1
    otherwise); knows the futex number and the GIL's addresses."""

    def __init__(self, futex_nr: int, layout: dict[str, Any]) -> None:
        gil = int(layout["gil_addr"])
        self._futex = str(futex_nr).encode()
        self._wait = (gil + layout["wait_range"][0], gil + layout["wait_range"][1])
        self._handoff = (gil + layout["handoff_range"][0], gil + layout["handoff_range"][1])

    def code(self, line: bytes) -> tuple[str, int]:
        if line.startswith(b"running"):
            return RUNNABLE, -1
        fields = line.split(None, 2)
        if len(fields) < 2 or fields[0] != self._futex:
            # "-1 sp pc": blocked outside a syscall (e.g. a page fault); otherwise its number
            return BLOCKED, int(fields[0]) if fields and fields[0].isdigit() else -1
        address = int(fields[1], 16)
        if self._wait[0] <= address < self._wait[1]:
            return GIL_WAIT, -1
        if self._handoff[0] <= address < self._handoff[1]:
            return HANDOFF_WAIT, -1
        return BLOCKED, int(fields[0])


class ProcessThreads:
    """One process's threads, each with its :class:`ThreadWatch`: the target's for the GIL
    sampler and each followed child's read the same way."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.watches: dict[int, ThreadWatch] = {}

    def refresh(self) -> None:
        """Watch the threads that appeared since the last listing."""
        try:
            tids = [int(name) for name in os.listdir(f"/proc/{self.pid}/task")]
        except OSError:
            return
        for tid in tids:
            if tid not in self.watches:
                try:
                    self.watches[tid] = ThreadWatch(self.pid, tid)
                except OSError:
                    continue

    def rows(self, classify: Callable[[bytes], tuple[str, int]]) -> list[tuple[Any, ...]]:
        """Each thread's row of one sample (``gil_samples.jsonl``'s ``th``); a thread that
        exited is dropped."""
        rows: list[tuple[Any, ...]] = []
        gone: list[int] = []
        for tid, watch in self.watches.items():
            got = watch.read(classify)
            if got is None:
                gone.append(tid)
            elif got[0] == BLOCKED and got[4] >= 0:
                rows.append((tid, *got))  # the syscall only where it says why: a blocked row
            else:
                rows.append((tid, *got[:4]))
        for tid in gone:
            self.watches.pop(tid).close()
        return rows

    def close(self) -> None:
        for watch in self.watches.values():
            watch.close()
        self.watches.clear()
