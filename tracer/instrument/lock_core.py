"""The hot path of the traced Lock and RLock: the C extension ``_lockcore`` when it was built,
else the pure-Python twins below, which keep the same attribute names and behaviour.

Why two: the Python twin runs bytecode between the real acquire and the real release, and
CPython may switch threads at any such point while the lock is held. On a tight
``with lock: counter += 1`` loop that creates contention the untraced program never has
(measured: 40x slower). The C core switches threads exactly where the real lock does. The twin
is there for machines without a compiler; :data:`NATIVE` says which one is in use, and the
report says so.

Off the fast path, the C core records a contended wait without a timeout and the holds worth
writing itself, into a buffer of fixed records (:data:`RECORDER` drains it; see _lockcore.c for
why). Everything else (waits with a timeout, the twin's contended waits, unusual arguments) is a
method of the class that inherits from the core, in ``locks.py``: ``_wait(timeout)``,
``_acquire_slow(blocking, timeout)`` and ``_log_hold(t_acq, held)``; a core calls ``_log_hold``
only after the real lock is released, and ``_seen_once()`` the first time a lock is in a record.
"""

from __future__ import annotations

import _thread
import os
import struct
import time
from typing import TYPE_CHECKING, Any

# A hold of 1 ms is 1% of the ~100 ms window the report uses to show hand-offs: long enough to be
# seen there, so it is written as an event; shorter uncontended holds only feed counters.
LONG_HOLD_NS = 1_000_000

# One record of the C core's buffer: kind, pid, id, tid, t0, t1, ok, holder (see _lockcore.c).
RECORD_FORMAT = "=8q"

_mono = time.monotonic_ns
_get_ident = _thread.get_ident

_SLOTS = ("_contended", "_depth", "_free", "_hold_max", "_hold_ns", "_id", "_lock", "_log", "_n",
          "_origin", "_owner", "_t_acq", "_try", "_waiters", "_written")


class PyLockCore:
    """Pure-Python twin of ``_lockcore.LockCore``."""

    __slots__ = _SLOTS
    _lock: Any
    _try: Any
    _free: Any
    _origin: Any
    _owner: int | None
    _log: bool
    _depth: int
    _id: int
    _t_acq: int
    _n: int
    _contended: int
    _hold_ns: int
    _hold_max: int
    _written: int
    _waiters: int

    def _set_lock(self, raw: Any) -> None:
        self._lock = raw
        self._try = raw.acquire
        self._free = raw.release
        self._owner = None
        self._origin = None
        self._log = False
        self._depth = self._id = self._t_acq = self._n = self._contended = 0
        self._hold_ns = self._hold_max = self._written = self._waiters = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and self._try(False):
            self._owner = _get_ident()
            self._t_acq = _mono()
            self._n += 1
            return True
        return bool(self._acquire_slow(blocking, timeout))

    def __enter__(self) -> bool:
        if self._try(False):
            self._owner = _get_ident()
            self._t_acq = _mono()
            self._n += 1
            return True
        return bool(self._wait(-1))

    def release(self) -> None:
        if self._owner is None:  # not held through us: the real lock raises or releases
            self._lock.release()
            return
        self._finish_hold()

    def __exit__(self, *exc: object) -> None:
        # The body of release() again: one Python call less per ``with`` is ~15% of the cost.
        if self._owner is None:
            self._lock.release()
            return
        self._finish_hold()

    acquire_lock = acquire
    release_lock = release

    def _finish_hold(self) -> None:
        t_acq = self._t_acq
        held = _mono() - t_acq
        self._hold_ns += held
        if held > self._hold_max:
            self._hold_max = held
        write = self._log or self._waiters or held >= LONG_HOLD_NS
        self._log = False
        self._owner = None
        self._free()
        if write:
            self._log_hold(t_acq, held)

    if TYPE_CHECKING:  # provided by the class in locks.py, which comes after the core in MRO
        def _wait(self, timeout: float) -> bool: ...
        def _acquire_slow(self, blocking: Any, timeout: Any) -> bool: ...
        def _log_hold(self, t_acq: int, held: int) -> None: ...


class PyRLockCore(PyLockCore):
    """Pure-Python twin of ``_lockcore.RLockCore``: a hold is the outermost acquire to the last
    release."""

    __slots__ = ()

    def _enter_owned(self) -> None:
        me = _get_ident()
        if self._owner != me:
            self._owner = me
            self._t_acq = _mono()
            self._n += 1
            self._depth = 1
        else:
            self._depth += 1

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and self._try(False):
            self._enter_owned()
            return True
        return bool(self._acquire_slow(blocking, timeout))

    def __enter__(self) -> bool:
        if self._try(False):
            self._enter_owned()
            return True
        return bool(self._wait(-1))

    def release(self) -> None:
        if self._owner != _get_ident():  # not ours: the real RLock raises RuntimeError
            self._lock.release()
            return
        if self._depth > 1:
            self._depth -= 1
            self._free()
            return
        self._depth = 0
        self._finish_hold()

    def __exit__(self, *exc: object) -> None:
        if self._owner != _get_ident():
            self._lock.release()
            return
        if self._depth > 1:
            self._depth -= 1
            self._free()
            return
        self._depth = 0
        self._finish_hold()

    acquire_lock = acquire
    release_lock = release


def _load_native() -> tuple[Any, str]:
    """The C cores, or None and why not: THREADSCOPE_PURE_LOCKS=1 asks for the twins (tests and
    benchmarks compare both), or the extension was not built."""
    if os.environ.get("THREADSCOPE_PURE_LOCKS") == "1":
        return None, "turned off by THREADSCOPE_PURE_LOCKS=1"
    try:
        from tracer.instrument import _lockcore  # type: ignore[attr-defined]
    except ImportError:
        return None, "the C core was not built (no C compiler when threadscope was installed?)"
    before = _mono()
    if not before <= _lockcore.monotonic_ns() <= _mono():  # the cores must share our clock
        return None, "the C core's clock differs from time.monotonic_ns"
    if getattr(_lockcore, "RECORD_SIZE", None) != struct.calcsize(RECORD_FORMAT):
        return None, "the C core was built for another threadscope version (reinstall it)"
    _lockcore.set_long_hold_ns(LONG_HOLD_NS)
    return _lockcore, ""


_native, WHY_PURE = _load_native()
NATIVE = _native is not None
# The C module's record buffer (configure, drain, stop_recording, forget), or None with the twins.
RECORDER: Any = _native
if TYPE_CHECKING:  # the C cores have the twins' attributes and methods
    LockCore = PyLockCore
    RLockCore = PyRLockCore
else:
    LockCore = _native.LockCore if _native else PyLockCore
    RLockCore = _native.RLockCore if _native else PyRLockCore
