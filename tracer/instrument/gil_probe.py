"""Find the GIL in this interpreter's memory, so a process outside can watch who holds it.

Runs inside the target, before user code (called by :mod:`tracer.bootstrap`). Standard library and
ctypes only; it never prints and never raises: a failure is returned as ``{"error": reason}`` and
the run goes on without the GIL sampler.

How: CPython's ``struct _gil_runtime_state`` starts, on 3.11, 3.12 and 3.13 alike, with::

    unsigned long interval;         /* the switch interval in microseconds */
    PyThreadState *last_holder;     /* the holder while ``locked`` is 1 */
    int locked;
    unsigned long switch_number;    /* +1 on every GIL acquisition */
    pthread_cond_t cond;            /* waiters for the GIL sleep on this ... */
    pthread_mutex_t mutex;          /* ... and this */
    pthread_cond_t switch_cond;     /* a holder asked to drop it waits here for the hand-off */
    pthread_mutex_t switch_mutex;

It is not an exported symbol, but it lives in ``_PyRuntime`` (3.11: ``_PyRuntime.ceval.gil``;
3.12+: the main interpreter, embedded in ``_PyRuntime``), i.e. in the writable data mapping of
libpython (or of the ``python`` executable for static builds). Setting an unusual switch interval
(4321 us) and searching that mapping for ``(4321, this thread's PyThreadState*)`` finds exactly one
place: the first two fields of the GIL, as the calling thread holds it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

# An interval no build uses by default (5000 us) and no program is likely to set: the search key.
_PROBE_INTERVAL_S = 0.004321

# glibc (and musl) on 64-bit Linux: pthread_cond_t is 48 bytes, pthread_mutex_t 40. The sampler
# uses these to tell a GIL waiter (cond/mutex) from a holder waiting for its hand-off (switch_*).
_COND_SIZE = 48
_MUTEX_SIZE = 40
# glibc's condition variable (2.25 and later) ends with ``unsigned int __g_signals[2]``: its waiters
# sleep in futex on one of these two words and a signal wakes them there. The mutex's futex word
# is its first int. The exact recorder filters the futex tracepoint on exactly these addresses.
_COND_SIGNALS_OFFSET = 40


class _GilHead(ctypes.Structure):
    """The first four fields of ``_gil_runtime_state``; what the sampler reads each tick."""

    _fields_ = (
        ("interval", ctypes.c_ulong),
        ("last_holder", ctypes.c_void_p),
        ("locked", ctypes.c_int),
        ("switch_number", ctypes.c_ulong),
    )


def thread_tstate() -> int | None:
    """The calling thread's ``PyThreadState`` address: the sampler sees the GIL holder as one."""
    try:
        get = ctypes.pythonapi.PyThreadState_Get
        get.restype = ctypes.c_void_p
        get.argtypes = ()
        address = get()
    except Exception:
        return None
    return int(address) if address else None


def calibrate() -> dict[str, Any]:
    """Where the GIL is: ``{"gil_addr", "map_lo", "map_hi", "mapping", ...}`` or ``{"error"}``."""
    try:
        return _calibrate()
    except Exception as exc:  # the target must run whatever happens here
        return {"error": f"GIL calibration failed: {type(exc).__name__}: {exc}"}


def _calibrate() -> dict[str, Any]:
    if not sys.platform.startswith("linux"):
        return {"error": f"the GIL sampler needs Linux /proc (this is {sys.platform})"}
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None and not is_gil_enabled():
        return {"error": "free-threaded build: there is no GIL to measure"}
    try:
        base = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    except ValueError:
        return {"error": "this interpreter exports no _PyRuntime symbol"}
    mapping = _mapping_of(base)
    if mapping is None:
        return {"error": f"no writable mapping in /proc/self/maps holds _PyRuntime ({base:#x})"}
    lo, hi, path = mapping
    tstate = thread_tstate()
    if tstate is None:
        return {"error": "PyThreadState_Get returned no thread state"}
    interval_us = int(1e6 * _PROBE_INTERVAL_S)  # the same double arithmetic sys.c does
    found = _search(base, hi, bytes(ctypes.c_ulong(interval_us)) + bytes(ctypes.c_void_p(tstate)))
    if len(found) != 1:
        return {"error": f"found the GIL signature {len(found)} times in {path or 'anonymous'} "
                         "(expected exactly once); unknown interpreter layout"}
    gil = found[0]
    head = _GilHead.from_address(gil)
    if head.locked != 1:
        return {"error": f"the GIL candidate at {gil:#x} is not locked by the calling thread"}
    head_size = ctypes.sizeof(_GilHead)
    return {
        "gil_addr": gil,
        "map_lo": lo,
        "map_hi": hi,
        "mapping": path,
        "python_version": sys.version.split()[0],
        "pid": os.getpid(),
        "head_size": head_size,
        "offsets": {name: getattr(_GilHead, name).offset for name, _ in _GilHead._fields_},
        # [start, end) of what GIL waiters sleep on, and of the hand-off wait, relative to gil_addr.
        "wait_range": [head_size, head_size + _COND_SIZE + _MUTEX_SIZE],
        "handoff_range": [head_size + _COND_SIZE + _MUTEX_SIZE,
                          head_size + 2 * (_COND_SIZE + _MUTEX_SIZE)],
        "pointer_size": ctypes.sizeof(ctypes.c_void_p),
        "libc": _libc(),
    }


def _libc() -> str:
    """``glibc 2.36``, or what the C library calls itself; "" when it does not say (musl)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return ""


class FutexWords:
    """The futex words of the GIL that tell its story, for a GIL head at ``gil_addr``.

    ``cond``: where GIL requesters sleep (a futex WAIT here is a request that found the GIL held)
    and where a releaser wakes them (a WAKE here is a release while someone waited);
    ``mutex``: the GIL's own mutex (a WAIT is a thread blocked inside take_gil/drop_gil);
    ``switch``: where a holder forced to drop the GIL waits for the hand-off (WAIT) and where the
    thread that took it tells that holder so (WAKE).
    """

    def __init__(self, gil_addr: int, head_size: int = 32) -> None:
        cond = gil_addr + head_size
        mutex = cond + _COND_SIZE
        switch_cond = mutex + _MUTEX_SIZE
        self.cond = (cond + _COND_SIGNALS_OFFSET, cond + _COND_SIGNALS_OFFSET + 4)
        self.mutex = mutex
        self.switch = (switch_cond + _COND_SIGNALS_OFFSET, switch_cond + _COND_SIGNALS_OFFSET + 4)

    def all(self) -> tuple[int, ...]:
        return (*self.cond, self.mutex, *self.switch)


def _search(base: int, end: int, needle: bytes) -> list[int]:
    """Addresses of ``needle`` in [base, end) while the switch interval is the probe value."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(_PROBE_INTERVAL_S)
    try:
        blob = ctypes.string_at(base, end - base)
    finally:
        sys.setswitchinterval(old)
    step = ctypes.alignment(ctypes.c_ulong)
    found: list[int] = []
    at = blob.find(needle)
    while at >= 0:
        if at % step == 0:
            found.append(base + at)
        at = blob.find(needle, at + 1)
    return found


def _mapping_of(address: int) -> tuple[int, int, str] | None:
    """The writable ``/proc/self/maps`` mapping holding ``address``: (start, end, path)."""
    with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 5:
                continue
            lo_text, _, hi_text = fields[0].partition("-")
            lo, hi = int(lo_text, 16), int(hi_text, 16)
            if lo <= address < hi:
                if not fields[1].startswith("rw"):
                    return None
                return lo, hi, fields[5].strip() if len(fields) > 5 else ""
    return None
