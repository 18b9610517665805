"""Lock-wait instrumentation that runs inside the target (standard library, plus the optional C
core of lock_core.py).

VizTracer cannot see ``with lock:`` (CPython calls ``__enter__`` without a profile event), so
:func:`install` replaces ``threading.Lock``/``RLock`` with thin wrappers and wraps the blocking
calls of ``Condition``, ``Semaphore``, ``Event``, ``Barrier`` and ``queue.Queue``.

Cost model, because instrumented programs must not slow to a crawl:

* an uncontended acquire is one non-blocking try on the real lock plus a few field writes and one
  clock read; its release adds one more clock read. No event is written: counters on the lock
  (acquisitions, total and max hold) carry it. This fast path is C where the extension was built
  (see lock_core.py for why that matters far more than the nanoseconds).
* only a failed try is a contended wait. It is timed and written as events (``wait`` at its start,
  ``wait_end`` when it ends), and the hold that follows, or any hold that hands the lock to a
  waiter or lasts ``LONG_HOLD_NS`` or more, is written as a ``release`` event with its start.
* with the C core, a Lock/RLock wait without a timeout and those holds are fixed records in the
  core's buffer: no Python runs on that path, which is where contended threads queue, and the
  writer appends the buffer as it is to a binary file next to the JSON lines (``records`` in the
  header names it). A lock-contended LRU cache ran 3-4x slower when these were Python dicts
  written as JSON by the writer thread, which holds the GIL while it encodes.
* other events are dicts appended to a list (``list.append`` is atomic under the GIL); all are
  written as JSON lines by a daemon thread every ``FLUSH_INTERVAL_S``, by :func:`flush`, and at
  exit.

Our own bookkeeping uses raw ``_thread`` locks, so the instrumentation never records itself, and
threads started with ``_thread`` so ``threading.enumerate()`` in the target is unchanged.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import itertools
import json
import linecache
import os
import queue
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from tracer.instrument import faults
from tracer.instrument.lock_core import (
    LONG_HOLD_NS,
    NATIVE,
    RECORD_FORMAT,
    RECORDER,
    WHY_PURE,
    LockCore,
    RLockCore,
)

FORMAT_VERSION = 1

# A crash loses at most this much of the event tail; a 4 Hz wake-up costs nothing measurable.
FLUSH_INTERVAL_S = 0.25
# Counters change on every acquire, so they are written less often than events (every 2 s).
STATS_EVERY_TICKS = 8
# A wait this long may be a deadlock: the writer then also saves a state snapshot (at most once
# per second), so a run killed by a timeout still names the cycle.
STUCK_WAIT_NS = 1_000_000_000

_ACTIVE: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
_ATTR = "_threadscope_id"  # identity stored on Condition/Semaphore/Event/Barrier/Queue instances
_INTERNAL = 0  # identity of primitives made by threading.Thread itself: never recorded

_mono = time.monotonic_ns
_get_ident = _thread.get_ident
_native_id = _thread.get_native_id
_raw_lock = _thread.allocate_lock
_orig_lock: Callable[..., Any] = threading.Lock
_orig_rlock: Callable[..., Any] = threading.RLock
_LOCK_TYPES: tuple[type, ...] = (_thread.LockType,)
_RLOCK_TYPES: tuple[type, ...] = tuple(
    t for t in (getattr(threading, "_CRLock", None), getattr(threading, "_PyRLock", None))
    if isinstance(t, type)
)

Origin = tuple[Any, ...]  # (file, line, qualname, module, stdlib (module, qualname, file, line))

_events: list[dict[str, Any]] = []
_book = _raw_lock()  # guards _waiting and per-lock waiter counts
_flush_lock = _raw_lock()
# thread ident -> (id, kind, since ns, native tid, holder ident)
_waiting: dict[int, tuple[int, str, int, int, int | None]] = {}
_registry: dict[int, weakref.ref[Any]] = {}  # id -> traced lock (for stats, names, snapshots)
_declared: dict[int, dict[str, Any]] = {}  # id -> lock record already written
# id -> (kind, origin, object) of every primitive that appears in an event: its record can be
# written, with a name, even after the object is gone.
_seen: dict[int, tuple[str, Origin | None, weakref.ref[Any] | None]] = {}
_core_seen: list[int] = []  # ids the C core put in records since the last flush
_dead_totals: dict[tuple[Any, ...], list[int]] = {}  # origin key -> [instances, n, hold, max]
_site_ids: dict[tuple[Any, ...], int] = {}
_site_origins: dict[tuple[Any, ...], Origin] = {}  # origin key -> where such locks are made
_ids = itertools.count(1)
_tls = _thread._local()
_state: dict[str, Any] = {"sink": None, "installed": False, "pid": os.getpid(), "saved": {},
                          "writer_wanted": False}
_file_kind: dict[str, int] = {}
_USER, _STDLIB, _OURS = 0, 1, 2
_STDLIB_DIR = os.path.dirname(threading.__file__) + os.sep
# Our package: a frame of ours (this file, the task hooks' wrapped submit) is never "made at"
_OUR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_THREAD_INIT = threading.Thread.__init__.__code__
_ASSIGN = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?::[^=]*)?=(?!=)")



# ----------------------------------------------------------------------------------------------
# Where a primitive was made


def _classify(filename: str) -> int:
    kind = _file_kind.get(filename)
    if kind is None:
        if filename.startswith(_OUR_DIR):
            kind = _OURS
        elif filename.startswith(_STDLIB_DIR) and "-packages" not in filename:
            kind = _STDLIB
        else:
            kind = _USER
        _file_kind[filename] = kind
    return kind


def _qualname(frame: FrameType) -> str:
    """``Account.__init__``: 3.11+ has ``co_qualname``; on 3.10 the class comes from ``self``."""
    code = frame.f_code
    qualname = getattr(code, "co_qualname", None)
    if qualname is not None:
        return str(qualname)
    if code.co_argcount and code.co_varnames[0] == "self":
        owner = frame.f_locals.get("self")
        if owner is not None:
            return f"{type(owner).__qualname__}.{code.co_name}"
    return code.co_name


def _creation_origin() -> Origin | None:
    """The first frame outside the standard library, and the stdlib frame that made the primitive
    on the user's behalf (e.g. ``queue.Queue.__init__``). ``None`` for threading.Thread's own
    primitives: every thread start would otherwise show up as a wait."""
    frame: FrameType | None = sys._getframe(2)
    made_by: tuple[Any, ...] | None = None
    while frame is not None:
        code = frame.f_code
        kind = _classify(code.co_filename)
        if kind == _USER:
            return (code.co_filename, frame.f_lineno, _qualname(frame),
                    frame.f_globals.get("__name__"), made_by)
        if kind == _STDLIB:
            if code is _THREAD_INIT:
                return None
            if made_by is None:
                made_by = (frame.f_globals.get("__name__"), _qualname(frame),
                           code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return (None, None, None, None, made_by)


def _new_identity() -> int:
    return next(_ids)


# ----------------------------------------------------------------------------------------------
# Recording waits (the slow path: only reached when a thread really blocks)


def _native_of(ident: int | None) -> int | None:
    """Native thread id of another thread, without a syscall on the hot path: threading knows it."""
    if ident is None:
        return None
    thread = _ACTIVE.get(ident)
    return getattr(thread, "native_id", None)


def _emit(event: dict[str, Any]) -> None:
    event["pid"] = _state["pid"]
    _events.append(event)
    if _state["writer_wanted"]:
        _start_wanted_writer()


def _start_wanted_writer() -> None:
    """A forked child starts its writer thread when it first has something to write, not in
    the fork handler: a child that only checks ``sys._current_frames()`` (CPython's
    test_clear_threads_states_after_fork does) must find itself alone."""
    _state["writer_wanted"] = False
    _start_writer()


def _wait_begin(prim_id: int, kind: str, holder: int | None) -> tuple[Any, ...]:
    """Register the calling thread as waiting (for snapshots) and write a ``wait`` event, unless
    this wait is the lock re-acquire inside a condition wait that is already being recorded."""
    t0 = _mono()
    tid = _native_id()
    ident = _get_ident()
    nested = getattr(_tls, "depth", 0) > 0
    with _book:
        previous = _waiting.get(ident)
        _waiting[ident] = (prim_id, kind, t0, tid, holder)
    if not nested:
        _emit({"ev": "wait", "id": prim_id, "kind": kind, "tid": tid, "t": t0,
               "holder": _native_of(holder)})
    return (prim_id, kind, t0, tid, ident, previous, nested)


def _wait_end(rec: tuple[Any, ...], ok: bool) -> None:
    prim_id, kind, t0, tid, ident, previous, nested = rec
    t1 = _mono()
    with _book:
        if previous is None:
            _waiting.pop(ident, None)
        else:
            _waiting[ident] = previous
    if not nested:
        _emit({"ev": "wait_end", "id": prim_id, "kind": kind, "tid": tid, "t0": t0, "t": t1,
               "ok": ok})


def _wait_end_quietly(rec: tuple[Any, ...], ok: bool) -> None:
    """:func:`_wait_end` in a ``finally``: never replaces the program's own exception (or its
    result) with one of ours."""
    try:
        _wait_end(rec, ok)
    except Exception as exc:
        faults.note("lock_wait_lost", exc)


def _valid_timeout(blocking: Any, timeout: Any) -> bool:
    """True when the real lock would accept these arguments; otherwise we let it raise."""
    try:
        return bool(blocking) and 0 <= timeout <= _thread.TIMEOUT_MAX
    except TypeError:
        return False


# ----------------------------------------------------------------------------------------------
# Lock and RLock: the fast path is the core (C, or its Python twin; see lock_core.py), the rest
# is here


class _TracedMeta(type):
    """Keeps ``isinstance(x, threading.Lock)`` true for locks made before install (3.13+ allows
    the check; on 3.10-3.12 ``threading.Lock`` was a function and the check raised)."""

    _plain: tuple[type, ...] = ()

    def __instancecheck__(cls, obj: Any) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, cls._plain)


def _refuses(action: Callable[[], Any]) -> bool:
    """Does the real lock type refuse this (raise TypeError)? Asked once, at import."""
    try:
        action()
    except TypeError:
        return True
    except Exception:
        return False
    return False


class _Traced:
    """What a traced Lock and RLock share beyond the core: the slow paths the core calls back,
    identity, and the rest of the lock protocol. Its attributes live in the core."""

    if not TYPE_CHECKING:  # the checker cannot see the core's slots from here
        __slots__ = ()
    _kind = "lock"
    _factory: Callable[..., Any] = staticmethod(_orig_lock)
    # What the real type refuses, refused alike (see _pose_as): ``type(lock)()`` (3.10-3.12's
    # ``_thread.lock``), and subclassing (``_thread.lock`` everywhere).
    _no_direct = False
    _final = False
    _real_name = "_thread.lock"  # the real type's, for those refusals' messages
    _lock: Any
    _try: Callable[..., bool]
    _free: Callable[[], None]
    _id: int
    _origin: Origin
    _owner: int | None
    _t_acq: int
    _n: int
    _contended: int
    _hold_ns: int
    _hold_max: int
    _written: int
    _waiters: int
    _log: bool
    _depth: int
    _set_lock: Callable[[Any], None]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._no_direct:
            raise TypeError(f"cannot create '{cls._real_name}' instances")
        return cls._make(args, kwargs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        for base in cls.__bases__:
            if base.__dict__.get("_final"):
                real = base.__dict__["_real_name"]
                raise TypeError(f"type '{real}' is not an acceptable base type")
        super().__init_subclass__(**kwargs)

    @classmethod
    def _make(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A traced lock, or the real one when it is not worth recording (threading.Thread's
        own) or recording it failed: the program gets a working lock whatever happens here."""
        raw = cls._factory(*args, **kwargs)  # wrong arguments raise here, like the original
        try:
            origin = _creation_origin()
            if origin is None:
                return raw
            self = object.__new__(cls)
            self._set_lock(raw)
            self._id = next(_ids)
            self._origin = origin
            _registry[self._id] = weakref.ref(self, _forget(self._id))
        except Exception as exc:  # e.g. RecursionError: our frames on top of a deep stack
            faults.note("lock_untraced", exc)
            return raw
        return self

    # -- slow paths (the core calls these) ------------------------------------------------------
    def _seen_once(self) -> None:
        """The C core is about to put this lock in a record for the first time: the next flush
        declares it (names it) in the JSON lines."""
        _mark_seen(self._id, self._kind, self._origin, self)
        _core_seen.append(self._id)
        if _state["writer_wanted"]:
            _start_wanted_writer()

    def _acquire_slow(self, blocking: Any, timeout: Any) -> bool:
        """Reached after a failed fast try (timeout -1) or with a timeout."""
        if timeout != -1:
            if not _valid_timeout(blocking, timeout):
                return bool(self._lock.acquire(blocking, timeout))  # raises like the original
            if self._try(False):
                self._took(_mono(), False)
                return True
            if timeout == 0:
                return False
        elif not blocking:
            return False
        return self._wait(timeout)

    def _wait(self, timeout: float) -> bool:
        rec: tuple[Any, ...] | None = None
        try:
            _mark_seen(self._id, self._kind, self._origin, self)
            rec = _wait_begin(self._id, self._kind, self._owner)
        except Exception as exc:  # the wait goes on unrecorded
            faults.note("lock_wait_lost", exc)
        with _book:
            self._waiters += 1
        ok = False
        try:
            ok = self._lock.acquire(True, timeout)
        finally:
            with _book:
                self._waiters -= 1
            if rec is not None:
                _wait_end_quietly(rec, ok)
        if ok:
            self._took(_mono(), True)
        return ok

    def _took(self, t: int, contended: bool) -> None:
        self._owner = _get_ident()
        self._t_acq = t
        self._n += 1
        if contended:
            self._contended += 1
            self._log = True

    def _log_hold(self, t_acq: int, held: int) -> None:
        """Write a hold that a waiter saw, that followed a wait, or that was long. Never raises:
        the C core calls it after the release, the caller must not see recording fail."""
        try:
            _mark_seen(self._id, self._kind, self._origin, self)
            _emit({"ev": "release", "id": self._id, "kind": self._kind, "tid": _native_id(),
                   "t_acq": t_acq, "t": t_acq + held})
        except Exception:
            pass

    def _close_hold(self) -> None:
        """Account the hold that ends now, before a release the core does not see (RLock's
        ``_release_save`` inside ``Condition.wait``)."""
        t_acq = self._t_acq
        held = _mono() - t_acq
        self._hold_ns += held
        if held > self._hold_max:
            self._hold_max = held
        if self._log or self._waiters or held >= LONG_HOLD_NS:
            self._log = False
            self._log_hold(t_acq, held)

    # -- the rest of the lock protocol ----------------------------------------------------------
    def locked(self) -> bool:
        return bool(self._lock.locked())

    locked_lock = locked

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._owner = None
        self._waiters = 0
        self._log = False
        self._depth = 0

    # No __getattr__ delegation: it would stop CPython specialising every attribute load on
    # these objects and cost ~200 ns per acquire/release pair.

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickling and copying fail exactly as the real lock does (wording varies by version)."""
        return self._lock.__reduce_ex__(protocol)

    def __repr__(self) -> str:
        return f"{repr(self._lock)[:-1]} (threadscope #{self._id} {_site_text(self._origin)})>"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at shutdown, module globals may be gone
            _fold_dead(self)


class TracedLock(LockCore, _Traced, metaclass=_TracedMeta):
    """Drop-in for ``threading.Lock`` that records contended waits and long holds."""

    __slots__ = ("__weakref__",)
    _plain = _LOCK_TYPES


class TracedRLock(RLockCore, _Traced, metaclass=_TracedMeta):
    """Drop-in for ``threading.RLock``: a hold is the outermost acquire to the last release."""

    __slots__ = ("__weakref__",)
    _plain = _RLOCK_TYPES
    _kind = "rlock"
    _factory = staticmethod(_orig_rlock)

    def _took(self, t: int, contended: bool) -> None:
        if self._owner == _get_ident():  # a re-entrant acquire that took a slow path
            self._depth += 1
            return
        super()._took(t, contended)
        self._depth = 1

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    def _recursion_count(self) -> int:
        """3.11+ (used by the stdlib's own tests); on 3.10 the real RLock has no such method."""
        return int(self._lock._recursion_count())

    def _release_save(self) -> Any:
        """Condition.wait releases an RLock fully; keep our depth with the real lock's state."""
        if self._owner != _get_ident():
            return self._lock._release_save()  # raises like the original
        depth = self._depth
        try:
            self._close_hold()
        finally:
            self._owner = None
            self._depth = 0
        return (self._lock._release_save(), depth)

    def _acquire_restore(self, saved: Any) -> None:
        inner, depth = saved
        count = inner[0]
        if self._try(False):
            self._took(_mono(), False)
        else:
            self._wait(-1)
        for _ in range(count - 1):  # same thread: these recursive acquires cannot block
            self._lock.acquire()
        self._depth = depth


def _pose_as(traced: type, real: type) -> None:
    """Give the traced type the real one's names (tests that look, such as CPython's
    ``test__all__``, find ``_thread.lock`` where they expect it) and refuse what the real type
    refuses: direct instantiation, subclassing."""
    for attr in ("__module__", "__name__", "__qualname__"):
        setattr(traced, attr, getattr(real, attr))
    traced._real_name = f"{real.__module__}.{real.__qualname__}"  # type: ignore[attr-defined]
    traced._no_direct = _refuses(lambda: real())  # type: ignore[attr-defined]
    traced._final = _refuses(lambda: type("probe", (real,), {}))  # type: ignore[attr-defined]


def _posing_function(original: Callable[..., Any],
                     make: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> Callable[..., Any]:
    """A function that makes traced locks and carries the original function's names."""

    def factory(*args: Any, **kwargs: Any) -> Any:
        return make(args, kwargs)

    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(factory, attr, getattr(original, attr))
    factory.__wrapped__ = original  # type: ignore[attr-defined]  # inspect.signature: the original's
    return factory


def _pickled_as_threading(obj: Any, name: str) -> Any:
    """Name what install() puts in ``threading`` as ``threading.<name>``: pickle finds a class
    or function by its names, and must find this very object (multiprocessing's managers
    pickle ``threading.Lock`` for a spawned manager, which unpickles the real one). CPython's
    test__all__ asks only that the module be ``threading`` or ``_thread``."""
    obj.__module__ = "threading"
    obj.__name__ = obj.__qualname__ = name
    return obj


_pose_as(TracedLock, type(_orig_lock()))
_pose_as(TracedRLock, type(_orig_rlock()))
# What install() puts in ``threading``: a class where the original is a class (``threading.Lock``
# on 3.13+ is ``_thread.lock``), else a function (on 3.10-3.12 ``threading.Lock`` was
# ``_thread.allocate_lock``; ``threading.RLock`` is a function on every version).
TRACED_LOCK: Callable[..., Any] = _pickled_as_threading(
    TracedLock if isinstance(_orig_lock, type) else _posing_function(_orig_lock, TracedLock._make),
    "Lock")
TRACED_RLOCK: Callable[..., Any] = _pickled_as_threading(
    TracedRLock if isinstance(_orig_rlock, type)
    else _posing_function(_orig_rlock, TracedRLock._make), "RLock")


def _forget(lock_id: int) -> Callable[[Any], None]:
    def callback(_ref: Any) -> None:
        _registry.pop(lock_id, None)

    return callback


def _origin_key(kind: str, origin: Origin) -> tuple[Any, ...]:
    made_by = origin[4]
    return (kind, origin[0], origin[1], made_by[1] if made_by else None)


def _fold_dead(lock: _Traced) -> None:
    """A lock that dies keeps its counters: in its own record if it was ever in an event, else in
    a per-site total (a program may make a million Future locks; one line per site is enough)."""
    if lock._n == 0:
        return
    if lock._id in _seen:
        _emit(_stats_record(lock._id, lock._n, lock._contended, lock._hold_ns, lock._hold_max, 1))
        return
    key = _origin_key(lock._kind, lock._origin)
    totals = _dead_totals.setdefault(key, [0, 0, 0, 0])
    totals[0] += 1
    totals[1] += lock._n
    totals[2] += lock._hold_ns
    totals[3] = max(totals[3], lock._hold_max)
    _site_origins.setdefault(key, lock._origin)


# ----------------------------------------------------------------------------------------------
# Condition, Semaphore, Event, Barrier, queue.Queue


def _identity_of(obj: Any) -> int:
    ident = obj.__dict__.get(_ATTR)
    if ident is None:  # made before install
        ident = next(_ids)
        obj.__dict__[_ATTR] = ident
        obj.__dict__["_threadscope_origin"] = None
    return int(ident)


def _wrap_init(orig: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        try:
            origin = _creation_origin()
            self.__dict__[_ATTR] = _INTERNAL if origin is None else next(_ids)
            self.__dict__["_threadscope_origin"] = origin
        except Exception as exc:  # an object without a __dict__, a deep stack: not recorded
            faults.note("primitive_untraced", exc)

    __init__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __init__


def _wrap_condition_wait(orig: Callable[..., bool]) -> Callable[..., bool]:
    """Record the blocking part of ``Condition.wait`` (and so ``wait_for``, which calls it). When
    an Event, Semaphore, Barrier or Queue is the caller, the wait is named after that object."""

    def wait(self: Any, timeout: float | None = None) -> bool:
        try:
            owner = getattr(_tls, "ctx", None)
            kind, obj = owner if owner is not None else ("condition", self)
            prim_id = _identity_of(obj)
            if prim_id == _INTERNAL or (timeout is not None and timeout <= 0):
                return orig(self, timeout)  # a zero timeout is a try (e.g. acquire(timeout=0))
            if prim_id not in _seen:
                _mark_seen(prim_id, kind, obj.__dict__.get("_threadscope_origin"), obj)
            rec = _wait_begin(prim_id, kind, None)
        except Exception as exc:  # an odd timeout or object: the original decides, unrecorded
            faults.note("wait_untraced", exc)
            return orig(self, timeout)
        _tls.depth = getattr(_tls, "depth", 0) + 1
        ok: Any = False
        try:
            ok = orig(self, timeout)
            return ok
        finally:
            _tls.depth -= 1
            _wait_end_quietly(rec, bool(ok))

    wait.__wrapped__ = orig  # type: ignore[attr-defined]
    return wait


def _wrap_blocking(orig: Callable[..., Any], kind: str) -> Callable[..., Any]:
    """Name any condition wait inside ``orig`` after the calling object (e.g. a ``queue_get``)."""

    def blocking_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        previous = getattr(_tls, "ctx", None)
        _tls.ctx = (kind, self)
        try:
            return orig(self, *args, **kwargs)
        finally:
            _tls.ctx = previous

    blocking_call.__wrapped__ = orig  # type: ignore[attr-defined]
    blocking_call.__name__ = getattr(orig, "__name__", "blocking_call")
    blocking_call.__doc__ = orig.__doc__
    return blocking_call


def _mark_seen(prim_id: int, kind: str, origin: Origin | None, obj: Any) -> None:
    if prim_id not in _seen:
        try:
            ref: weakref.ref[Any] | None = weakref.ref(obj)
        except TypeError:
            ref = None
        _seen[prim_id] = (kind, origin, ref)


# ----------------------------------------------------------------------------------------------
# Names: lazily, at flush time, only for locks that appear in events


def _site_text(origin: Origin | None) -> str:
    if origin is None or origin[0] is None:
        return "unknown site"
    return f"{origin[0]}:{origin[1]}"


def _assign_target(filename: str | None, lineno: int | None) -> str | None:
    if not filename or not lineno:
        return None
    match = _ASSIGN.match(linecache.getline(filename, lineno))
    return match.group(1) if match else None


def _attr_name(target: str | None, qualname: str | None) -> str | None:
    """``self._lock`` in ``Account.__init__`` -> ``Account._lock``; ``lock`` -> ``lock`` (a local
    or a global: only a verified global gets its module's name, see :func:`_global_name`)."""
    if target is None:
        return None
    if target.startswith("self.") and qualname and "." in qualname:
        owner = qualname.rsplit(".", 2)[-2]
        target = f"{owner}.{target[5:]}"
    return target


def _global_name(obj: Any, module: str | None) -> str | None:
    """A module global that is this very object (exact, unlike reading the source line)."""
    mod = sys.modules.get(module or "__main__")
    if mod is None or obj is None:
        return None
    for key, value in list(vars(mod).items()):
        if value is obj:
            return key if module in (None, "__main__") else f"{module}.{key}"
    return None


def _lock_record(prim_id: int, kind: str, origin: Origin | None, obj: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"ev": "lock", "id": prim_id, "kind": kind, "site": None,
                              "func": None, "made_by": None, "name": None}
    if origin is None:
        record["site"] = "unknown (made before install)"
        record["name"] = f"{kind} #{prim_id}"
        return record
    filename, lineno, qualname, module, made_by = origin
    record["site"] = _site_text(origin)
    record["func"] = qualname
    user = _global_name(obj, module) or _attr_name(_assign_target(filename, lineno), qualname)
    if made_by is not None:
        std_module, std_qual, std_file, std_line = made_by
        target = _assign_target(std_file, std_line)
        attr = _attr_name(target, std_qual) if target and target.startswith("self.") else None
        record["made_by"] = f"{std_module}.{attr}" if attr else f"{std_module}.{std_qual}"
        record["name"] = f"{record['made_by']} of {user}" if user else record["made_by"]
    else:
        record["name"] = user or record["site"]
    return record


# ----------------------------------------------------------------------------------------------
# Writing


def _stats_record(prim_id: int, n: int, contended: int, hold: int, hold_max: int,
                  instances: int) -> dict[str, Any]:
    return {"ev": "stats", "id": prim_id, "n": n, "contended": contended, "hold_ns": hold,
            "hold_max_ns": hold_max, "instances": instances, "pid": _state["pid"]}


def _live_locks() -> list[_Traced]:
    for _ in range(3):
        try:
            refs = list(_registry.copy().values())
            break
        except RuntimeError:  # a weakref callback resized it mid-copy; try again
            continue
    else:
        return []
    return [lock for lock in (ref() for ref in refs) if lock is not None]


def _stats_lines() -> list[dict[str, Any]]:
    """Cumulative counters: one record per lock that is in events, one per site for the rest."""
    out: list[dict[str, Any]] = []
    sites: dict[tuple[Any, ...], list[int]] = {k: list(v) for k, v in _dead_totals.items()}
    examples: dict[tuple[Any, ...], _Traced] = {}
    for lock in _live_locks():
        n = lock._n
        if n == 0:
            continue
        if lock._id in _seen:
            if n != lock._written:
                lock._written = n
                out.append(_stats_record(lock._id, n, lock._contended, lock._hold_ns,
                                         lock._hold_max, 1))
            continue
        key = _origin_key(lock._kind, lock._origin)
        totals = sites.setdefault(key, [0, 0, 0, 0])
        totals[0] += 1
        totals[1] += n
        totals[2] += lock._hold_ns
        totals[3] = max(totals[3], lock._hold_max)
        examples.setdefault(key, lock)
        _site_origins.setdefault(key, lock._origin)
    for key, (instances, n, hold, hold_max) in sites.items():
        if key not in _site_ids:
            _site_ids[key] = next(_ids)
        site_id = _site_ids[key]
        if site_id not in _declared:
            example = examples.get(key)  # one instance alive: its global name can be checked
            record = _lock_record(site_id, key[0], _site_origins.get(key),
                                  example if instances == 1 else None)
            record["per_site"] = True
            record["pid"] = _state["pid"]
            _declared[site_id] = record
            out.append(record)
        out.append(_stats_record(site_id, n, 0, hold, hold_max, instances))
    return out


def _with_declarations(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch, with a ``lock`` record (and its name) just before the first event that
    mentions each primitive, so the ``start`` header stays the file's first line."""
    out: list[dict[str, Any]] = []
    for event in batch:
        prim_id = event.get("id")
        if event["ev"] not in ("lock", "stats") and prim_id is not None and (
            prim_id not in _declared
        ):
            record = _record_of(prim_id, event.get("kind", "lock"))
            record["pid"] = _state["pid"]
            _declared[prim_id] = record
            out.append(record)
        out.append(event)
    return out


def _take_events() -> list[dict[str, Any]]:
    n = len(_events)
    batch = _events[:n]
    del _events[:n]  # appends made meanwhile land after index n and stay for the next flush
    return batch


def core_records_path(sink: str) -> str:
    """Where the C core's records go: the sink's name with ``.bin`` for its suffix, so a run's
    ``raw_files.LOCKS`` gets ``raw_files.LOCK_RECORDS`` beside it, and two sinks in one folder
    never share a file."""
    return os.path.splitext(sink)[0] + ".bin"


def _write_core_records(sink: str) -> list[dict[str, Any]]:
    """Append the C core's records since the last drain to the binary file in one write (a
    forked child appends to the same file; records carry their pid). Returns the events that
    must go to the JSON lines: a ``lock`` record for each primitive first seen in them, and how
    many records the full buffer dropped."""
    if RECORDER is None:
        return []
    data, dropped = RECORDER.drain()
    if data:
        with open(core_records_path(sink), "ab") as out:
            out.write(data)
    n = len(_core_seen)
    fresh = _core_seen[:n]
    del _core_seen[:n]  # ids appended meanwhile stay for the next flush
    lines: list[dict[str, Any]] = []
    for prim_id in fresh:
        if prim_id in _declared:
            continue
        record = _record_of(prim_id, "lock")
        record["pid"] = _state["pid"]
        _declared[prim_id] = record
        lines.append(record)
    if dropped:
        lines.append({"ev": "dropped", "n": dropped, "t": _mono(), "pid": _state["pid"]})
    return lines


def flush(with_stats: bool = True) -> None:
    """Write buffered events (and counters) to the sink as JSON lines."""
    sink = _state["sink"]
    if sink is None or not _flush_lock.acquire(True, 2.0):
        return
    try:
        batch = _take_events()
        lines = _with_declarations(batch) + _write_core_records(sink)
        if with_stats:
            lines += _stats_lines()
        if not lines:
            return
        text = "".join(_json_line(line) for line in lines)
        with open(sink, "a", encoding="utf-8") as out:
            out.write(text)  # one write: lines from a forked child never interleave mid-line
    finally:
        _flush_lock.release()


def _json_line(record: dict[str, Any]) -> str:
    """One JSON line; a value JSON cannot encode (a name that is a MagicMock) is written as
    text (counted), so the line is kept."""
    return json.dumps(record, separators=(",", ":"), default=faults.json_default) + "\n"


def write_state() -> None:
    """Append a snapshot of who holds and who waits for what (names a deadlock on timeout)."""
    sink = _state["sink"]
    if sink is None:
        return
    record = {"ev": "state", **snapshot_state()}
    with open(sink, "a", encoding="utf-8") as out:
        out.write(_json_line(record))


# The writer's name as the OS sees it (15 bytes at most): a ``_thread`` thread has no
# threading name, and in a forked child nothing else says the thread is ours, not the program's.
WRITER_OS_NAME = b"threadscope-lw"


def _name_pthread(ident: int, name: bytes) -> None:
    """pthread_setname_np from the thread that started it (the new thread renames itself too,
    for a libc without it); never raises."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.pthread_setname_np(ctypes.c_ulong(ident), ctypes.c_char_p(name))
    except Exception:
        pass


def _name_os_thread(name: bytes) -> None:
    """prctl(PR_SET_NAME) on Linux; elsewhere, or if refused, the thread keeps its name."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)  # 15: PR_SET_NAME
    except Exception:
        pass


def _writer_loop(generation: int) -> None:
    """Never raises: an exception leaving a ``_thread`` thread is printed in the program's
    output (at interpreter shutdown, even ``time.sleep`` may fail)."""
    try:  # not contextlib.suppress: it may already be torn down when this runs
        _name_os_thread(WRITER_OS_NAME)
        _write_every_tick(generation)
    except Exception:  # shutting down: nowhere left to say so
        pass


def _write_every_tick(generation: int) -> None:
    tick = 0
    last_state = 0
    while _state["installed"] and _state.get("generation") == generation:
        time.sleep(FLUSH_INTERVAL_S)
        tick += 1
        try:
            flush(with_stats=tick % STATS_EVERY_TICKS == 0)
            now = _mono()
            stuck = any(now - entry[2] >= STUCK_WAIT_NS for entry in list(_waiting.values()))
            if stuck and now - last_state >= STUCK_WAIT_NS:
                last_state = now
                write_state()
        except Exception as exc:  # never let the recorder take the target down
            faults.note("lock_events_lost", exc)


def _start_writer() -> None:
    _state["generation"] = _state.get("generation", 0) + 1
    ident = _thread.start_new_thread(_writer_loop, (_state["generation"],))
    _name_pthread(ident, WRITER_OS_NAME)  # at once, before a sampler lists it: see below


def _at_exit() -> None:
    """Never raises: an atexit handler's exception would be printed in the program's output."""
    if not _state["installed"]:
        return
    try:
        flush()
        write_state()
    except Exception as exc:
        faults.note("lock_events_lost", exc)


def _after_fork_in_child() -> None:
    """Never raises: it runs in every forked child of the program (see _start_afresh)."""
    try:
        _start_afresh()
    except Exception as exc:
        faults.note("fork_handler", exc)


def _start_afresh() -> None:
    """The child inherits the parent's unwritten events and counters: drop them, start afresh."""
    global _book, _flush_lock
    if not _state["installed"]:
        return
    _book = _raw_lock()
    _flush_lock = _raw_lock()
    _state["pid"] = os.getpid()
    if RECORDER is not None:
        RECORDER.forget()
    del _events[:]
    del _core_seen[:]
    _waiting.clear()
    _declared.clear()
    _seen.clear()
    _dead_totals.clear()
    _site_ids.clear()
    _site_origins.clear()
    for lock in _live_locks():
        lock._n = lock._contended = lock._hold_ns = lock._hold_max = lock._written = 0
    header = _header()
    header["pid"] = _state["pid"]
    _events.append(header)
    _state["writer_wanted"] = True  # see _start_wanted_writer


def _header() -> dict[str, Any]:
    return {"ev": "start", "format": FORMAT_VERSION, "t": _mono(),
            "python": ".".join(map(str, sys.version_info[:3])), "long_hold_ns": LONG_HOLD_NS,
            "core": "c" if NATIVE else "python", "why_python": WHY_PURE,
            "records": os.path.basename(core_records_path(_state["sink"]))
            if RECORDER is not None and _state.get("sink") else None,
            "record_format": RECORD_FORMAT}


# ----------------------------------------------------------------------------------------------
# Snapshot


def snapshot_state() -> dict[str, Any]:
    """Who holds which lock and who waits for what, right now. Takes no lock, so it is safe from
    a signal handler or while the program is deadlocked."""
    live = {lock._id: lock for lock in _live_locks()}
    threads = {}
    for thread in list(_ACTIVE.values()):
        if getattr(thread, "native_id", None) is not None:
            threads[str(thread.native_id)] = _thread_name(thread)
    held = []
    for lock in live.values():
        owner = lock._owner
        if owner is not None:
            held.append({"id": lock._id, "kind": lock._kind, "name": _name_now(lock._id),
                         "tid": _native_of(owner), "since": lock._t_acq,
                         "depth": lock._depth if lock._kind == "rlock" else 1})
    waiting = []
    for prim_id, kind, since, tid, holder in list(_waiting.values()):
        waited = live.get(prim_id)
        now_holder = waited._owner if waited is not None else holder
        waiting.append({"tid": tid, "id": prim_id, "kind": kind, "name": _name_now(prim_id),
                        "since": since, "holder": _native_of(now_holder)})
    return {"pid": _state["pid"], "t": _mono(), "threads": threads, "held": held,
            "waiting": waiting}


def _thread_name(thread: Any) -> str:
    try:
        return faults.safe_text(thread.name, "thread_name")
    except Exception as exc:
        faults.note("thread_name", exc)
        return faults.PLACEHOLDER


def _name_now(prim_id: int) -> str:
    record = _declared.get(prim_id)
    if record is None:
        record = _record_of(prim_id, "lock")
    return str(record["name"])


def _record_of(prim_id: int, kind: str) -> dict[str, Any]:
    seen = _seen.get(prim_id)
    if seen is not None:
        kind, origin, ref = seen
        return _lock_record(prim_id, kind, origin, ref() if ref is not None else None)
    ref = _registry.get(prim_id)
    lock = ref() if ref is not None else None
    if lock is not None:
        return _lock_record(prim_id, lock._kind, lock._origin, lock)
    return _lock_record(prim_id, kind, None, None)


# ----------------------------------------------------------------------------------------------
# Install / uninstall

_PATCHES: list[tuple[Any, str, Callable[[Any], Any]]] = [
    (threading.Condition, "__init__", _wrap_init),
    (threading.Condition, "wait", _wrap_condition_wait),
    (threading.Semaphore, "__init__", _wrap_init),
    (threading.Semaphore, "acquire", lambda f: _wrap_blocking(f, "semaphore")),
    (threading.Semaphore, "__enter__", lambda f: _wrap_blocking(f, "semaphore")),
    (threading.Event, "__init__", _wrap_init),
    (threading.Event, "wait", lambda f: _wrap_blocking(f, "event")),
    (threading.Barrier, "__init__", _wrap_init),
    (threading.Barrier, "wait", lambda f: _wrap_blocking(f, "barrier")),
    (queue.Queue, "__init__", _wrap_init),
    (queue.Queue, "get", lambda f: _wrap_blocking(f, "queue_get")),
    (queue.Queue, "put", lambda f: _wrap_blocking(f, "queue_put")),
]


def install(sink_path: str) -> None:
    """Start recording lock waits into ``sink_path`` (JSON lines, appended). Call before user code
    runs: locks the program made earlier keep working but are not recorded."""
    if _state["installed"]:
        return
    saved: dict[tuple[Any, str], Any] = {}
    for owner, name, wrap in _PATCHES:
        original = owner.__dict__[name]
        saved[(owner, name)] = original
        setattr(owner, name, wrap(original))
    saved[(threading, "Lock")] = threading.Lock
    saved[(threading, "RLock")] = threading.RLock
    threading.Lock = TRACED_LOCK  # type: ignore[assignment]
    threading.RLock = TRACED_RLOCK  # type: ignore[assignment]
    _state.update(sink=os.path.abspath(sink_path), installed=True, saved=saved,
                  pid=os.getpid(), writer_wanted=False)
    if RECORDER is not None:
        RECORDER.configure(_waiting)
    _emit(_header())
    if not _state.get("hooks"):
        _state["hooks"] = True
        atexit.register(_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
    _start_writer()


def uninstall() -> None:
    """Restore the original classes and functions and write what was recorded. Locks made while
    installed keep working (and keep counting) but are no longer written."""
    if not _state["installed"]:
        return
    for (owner, name), original in _state["saved"].items():
        setattr(owner, name, original)
    if RECORDER is not None:
        RECORDER.stop_recording()
    flush()
    _state["installed"] = False
    _state["saved"] = {}
