"""Run independent parts of the analysis at the same time, in forked processes.

Why: the analysis is pure Python on one core, and for a long or many-threaded recording most of
it is a few independent parts (the exact GIL events, the GIL samples, each thread's samples). A
forked child sees the recorded data already in memory without copying or pickling it; only its
result travels back, pickled through a pipe. What a child computes is exactly what the parent
would have computed inline, so the model is the same either way (tests check it).

It stays inline where forking would not pay or cannot work: no ``os.fork``, one usable core,
``THREADSCOPE_SERIAL_ANALYSIS=1``, in a grandchild (:data:`MAX_DEPTH`), or inside the user's
own process (:func:`inline`). A child that dies
(killed, out of memory) makes the parent do the work itself; an exception in the child is raised
in the parent, as inline.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

SERIAL_ENV = "THREADSCOPE_SERIAL_ANALYSIS"
# How many forks deep this process is: a child may split its own work once more (the GIL
# samples, read beside the exact events, split their threads), a grandchild may not.
MAX_DEPTH = 2
_depth = 0
_inline = False


@contextlib.contextmanager
def inline() -> Iterator[None]:
    """Everything inside runs in this process: for an analysis inside the user's own program
    (``tracer.record()``, a notebook), whose threads and libraries a fork would copy."""
    global _inline
    before, _inline = _inline, True
    try:
        yield
    finally:
        _inline = before


def usable_cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_available() -> int:
    """How many children may run beside the parent now (0: run everything inline)."""
    if _depth >= MAX_DEPTH or _inline or not hasattr(os, "fork"):
        return 0
    if os.environ.get(SERIAL_ENV, "") not in ("", "0"):
        return 0
    return max(0, usable_cores() - 1)


class Pending(Generic[T]):
    """Work started beside the caller; :meth:`result` waits for it (or does it, if no child ran
    it). Use as a context manager, or call :meth:`result` or :meth:`cancel`, so that a caller
    that fails first does not leave a child waiting to write."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._pid: int | None = None
        self._read_fd: int | None = None
        if workers_available():
            self._fork()

    def _fork(self) -> None:
        read_fd, write_fd = os.pipe()
        # Frozen objects are not traversed by the child's collector, which would otherwise write
        # to every object's header and so copy every page the parent shares with it.
        gc.freeze()
        try:
            with warnings.catch_warnings():
                # 3.12+ warns that forking a process with threads may deadlock the child: the
                # child here only computes and writes its pipe, taking no lock a thread may hold.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:  # no memory or process slots for a child: do it inline
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            return
        if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(read_fd)
            _run_child(self._work, write_fd)
        gc.unfreeze()
        os.close(write_fd)
        self._pid, self._read_fd = pid, read_fd

    def result(self) -> T:
        if self._read_fd is None:
            return self._work()
        with os.fdopen(self._read_fd, "rb") as pipe:
            self._read_fd = None
            payload = pipe.read()
        self._reap()
        if not payload:  # the child died before it could answer
            return self._work()
        ok, value = pickle.loads(payload)
        if ok:
            return value
        raise value

    def cancel(self) -> None:
        """Stop waiting for the child (it dies on its closed pipe, or is killed)."""
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        if self._pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None

    def __enter__(self) -> Pending[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def _run_child(work: Callable[[], object], write_fd: int) -> None:  # pragma: no cover
    """The child's whole life: compute, answer, leave without running the parent's exit code
    (atexit handlers, buffered output, recorders' cleanup belong to the parent)."""
    global _depth
    _depth += 1
    code = 0
    try:
        # Ctrl-C reaches the whole process group; the parent decides what it means.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            payload = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:
            try:
                payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def split_evenly(items: list[T], weight: Callable[[T], int], parts: int) -> list[list[T]]:
    """``items`` in ``parts`` groups of about equal total weight (largest first, each to the
    lightest group so far), each group in the items' original order."""
    order = {id(item): n for n, item in enumerate(items)}
    groups: list[list[T]] = [[] for _ in range(max(1, parts))]
    totals = [0] * len(groups)
    for item in sorted(items, key=weight, reverse=True):
        lightest = totals.index(min(totals))
        groups[lightest].append(item)
        totals[lightest] += weight(item)
    return [sorted(group, key=lambda item: order[id(item)]) for group in groups if group]
