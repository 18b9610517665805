"""Pool work items and asyncio task steps, recorded from inside the target (standard library
only).

What is hooked, and why there:

* ``concurrent.futures.thread._WorkItem``: a subclass stamps the submit (time, thread, pool,
  function) when ``ThreadPoolExecutor.submit`` makes it, and its ``run`` stamps start, end,
  worker and outcome. The pool comes from a thread-local that our ``submit`` wrapper sets just
  before calling the real one (the work item does not know its executor).
* ``ProcessPoolExecutor.submit``: submit in the parent, and the future's end there (a done
  callback: the process pool already runs one per item). When the pool forks its workers they
  are recorded too (they inherit this recorder), so the submitted callable goes wrapped in a
  :class:`_RunInChild`, which stamps start, end and worker inside the child; a spawned or
  forkserver worker is not recorded, so its items stay as the parent sees them.
* ``asyncio.events.Handle._run``: every callback the event loop runs, timed. A task's step and
  wake-up are callbacks whose ``__self__`` is the task (checked on 3.10-3.13, C and Python
  tasks); that names the task without touching the C ``Task.__step``. ``BaseEventLoop.create_task``
  stamps creation and the creating task.

The modules are patched when the program imports them (a finder on ``sys.meta_path`` that
steps aside once all are patched), so a program that never uses them never loads them.

Cost: per work item one clock read and a few attribute writes at submit, two clock reads and one
tuple appended at the end; per loop callback two clock reads and one tuple. The hooks on that
path are C (``_taskcore.c``: as Python they cost 1.2-1.4x on a pool of ~15 us tasks); the Python
hooks here are the same hooks for a machine without a compiler (``THREADSCOPE_PURE_TASKS=1``
asks for them), and :data:`NATIVE` says which is in use. Nothing is encoded on
the program's threads: a writer thread (``_thread``, like the lock recorder's) appends the tuples
to ``raw/tasks.bin`` every ``FLUSH_INTERVAL_S`` with ``marshal`` (C, no dict per event: JSON
encoding of 100,000 items held the GIL long enough to be measured), and :func:`finish`,
``atexit`` and a forked child's ``os._exit`` flush what is left.

Nothing here may raise into the program: every hook calls the original first or last, and a
failure of ours is counted in :mod:`tracer.instrument.faults`.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import itertools
import marshal
import os
import struct
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from tracer.instrument import faults

FORMAT_VERSION = 2  # 2: chunks carry the C hooks' records
# A crash loses at most this much of the tail; a 4 Hz wake-up costs nothing measurable.
FLUSH_INTERVAL_S = 0.25
MARSHAL_VERSION = 4  # the same on 3.4-3.13: a target on any of them writes what 3.11 reads
# Each chunk: its length, then marshalled (pid, [events], records): the C hooks' fixed records
# (RECORD, native byte order) of the commonest events, as bytes.
CHUNK = struct.Struct("<I")
RECORD = struct.Struct("=10q")  # kind, then 9 values (see _taskcore.c)
REC_ITEM, REC_STEP = 1, 2

# Event tags (the first element of each tuple; tracer.model.tasks reads them).
START = "start"  # (START, format, pid, t_ns, python, "c" or why the hooks are Python)
# (POOL, pool, pid, kind, name, max_workers, t_ns[, a process pool's start method or None])
POOL = "pool"
FUNCTION = "fn"  # (FUNCTION, fn, qualname, site)
# A work item: (ITEM, stamp, start_ns, end_ns, worker tid[, outcome, error]) where the stamp
# is (item, pool, fn, submit_ns, submit_tid, asyncio task or 0); outcome "ok" when left out.
# Start, end and worker are None for what the parent of a process pool does not see, and for
# an item cancelled before it started.
ITEM = "item"
# A process-pool item's run in a forked worker, written by the worker (the chunk's pid):
# (RUN, pid of the process that submitted it, its item number there, start_ns, end_ns, tid)
RUN = "run"
LOOP = "loop"  # (LOOP, loop, pid, tid, t_ns)
TASK = "task"  # (TASK, task, pid, loop, name, fn, created_ns, parent task or 0)
STEP = "step"  # (STEP, loop, task or 0, start_ns, end_ns, fn of a slow non-task callback or 0)
DONE = "done"  # (DONE, task, t_ns, outcome, error[, name])

OK, ERROR, CANCELLED, UNFINISHED = "ok", "error", "cancelled", "unfinished"
THREAD_POOL, PROCESS_POOL = "thread_pool", "process_pool"
# A callback that is not a task step is named only when it runs this long (naming costs more
# than timing); the model's slow-step threshold is at least this.
NAME_CALLBACK_NS = 10_000_000

_mono = time.monotonic_ns
_native_id = _thread.get_native_id
_ATTR = "_threadscope_task"  # our number on a pool executor or an event loop
_FORKS = "_threadscope_forks"  # on a process pool: whether it forks its workers

_events: list[tuple[Any, ...]] = []
_tls = _thread._local()
_flush_lock = _thread.allocate_lock()
_pending: dict[int, Any] = {}  # item number -> a thread-pool work item not yet run
_process_pending: dict[int, tuple[Any, ...]] = {}  # item number -> (future, its stamp)
_item_numbers = itertools.count(1)
_task_numbers: dict[int, int] = {}  # id(asyncio task) -> our number, until it is done
# asyncio's functions the hooks call, once asyncio is imported (None before).
_asyncio: dict[str, Any] = {"running_loop": None, "current_task": None}
_functions: dict[Any, int] = {}  # code object (or name) -> fn number
_next = {"item": 0, "pool": 0, "fn": 0, "loop": 0, "task": 0}
_state: dict[str, Any] = {"sink": None, "installed": False, "pid": os.getpid(), "writer": 0,
                          "saved": [], "finder": None, "flushed": 0}


def _load_core() -> tuple[Any, str]:
    """The C hooks, or None and why not (as :mod:`tracer.instrument.lock_core` does)."""
    if os.environ.get("THREADSCOPE_PURE_TASKS") == "1":
        return None, "turned off by THREADSCOPE_PURE_TASKS=1"
    try:
        from tracer.instrument import _taskcore  # type: ignore[attr-defined]
    except ImportError:
        return None, "the C core was not built (no C compiler when threadscope was installed?)"
    before = _mono()
    if not before <= _taskcore.monotonic_ns() <= _mono():  # the hooks must share our clock
        return None, "the C core's clock differs from time.monotonic_ns"
    if (RECORD.size, REC_ITEM, REC_STEP) != \
            (_taskcore.RECORD_SIZE, _taskcore.REC_ITEM, _taskcore.REC_STEP):
        return None, "the C core was built for another threadscope version (reinstall it)"
    return _taskcore, ""


_core, WHY_PURE = _load_core()
NATIVE = _core is not None


def _fault(exc: BaseException) -> None:
    """What the C hooks call when a step of theirs fails."""
    faults.note("task_event_lost", exc)


# ----------------------------------------------------------------------------------------------
# Names


def _number(kind: str) -> int:
    _next[kind] += 1
    return _next[kind]


# Work item and task numbers: one count each, which the C hooks keep when they are in use.
_next_item: Callable[[], int] = _core.next_item if _core is not None \
    else partial(next, _item_numbers)
_next_task: Callable[[], int] = _core.next_task if _core is not None \
    else partial(_number, "task")
_safe_name = partial(faults.safe_text, kind="task_name")


def _target_of(fn: Any) -> Any:
    """What a submitted callable runs: through ``functools.partial`` and ``Context.run``
    (``asyncio.to_thread`` submits ``partial(context.run, func, *args)``)."""
    for _ in range(4):
        if type(fn) is partial:
            inner = fn.func
            name = getattr(inner, "__name__", None)
            in_context = name == "run" and \
                type(getattr(inner, "__self__", None)).__name__ == "Context"
            # _process_chunk: ProcessPoolExecutor.map's batches of the mapped function
            unwrap = bool(fn.args) and (in_context or name == "_process_chunk")
            fn = fn.args[0] if unwrap else inner
        else:
            return fn
    return fn


def _function_id(fn: Any) -> int:
    """The number of ``fn``'s (qualified name, file:line), declared once per code object."""
    target = _target_of(fn)
    code = getattr(target, "__code__", None) or getattr(
        getattr(target, "__func__", None), "__code__", None)
    key = code if code is not None else getattr(target, "__qualname__", None) or type(target)
    found = _functions.get(key)
    if found is not None:
        return found
    if code is not None:
        name = getattr(code, "co_qualname", None) or getattr(target, "__qualname__", None) \
            or code.co_name
        site = f"{code.co_filename}:{code.co_firstlineno}"
    else:
        name = getattr(target, "__qualname__", None) or type(target).__qualname__
        site = ""
    number = _number("fn")
    _functions[key] = number
    _events.append((FUNCTION, number, faults.safe_text(name, "task_name"), site))
    return number


def _coroutine_id(coro: Any) -> int:
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    key = code if code is not None else type(coro)
    found = _functions.get(key)
    if found is not None:
        return found
    name = getattr(coro, "__qualname__", None) or type(coro).__qualname__
    site = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    number = _number("fn")
    _functions[key] = number
    _events.append((FUNCTION, number, faults.safe_text(name, "task_name"), site))
    return number


def _error_of(exc: Any) -> str:
    try:
        return faults.safe_text(type(exc).__qualname__, "task_error")
    except Exception:
        return faults.PLACEHOLDER


# ----------------------------------------------------------------------------------------------
# Thread pools


def _pool_id(executor: Any, kind: str) -> int:
    number = executor.__dict__.get(_ATTR)
    if number is None:
        number = _number("pool")
        executor.__dict__[_ATTR] = number
        if kind == THREAD_POOL:
            name = executor.__dict__.get("_thread_name_prefix") or f"ThreadPoolExecutor-{number}"
        else:
            name = f"ProcessPoolExecutor-{number}"
        method = _start_method(executor) if kind == PROCESS_POOL else None
        _events.append((POOL, number, _state["pid"], kind, faults.safe_text(name, "task_name"),
                        executor.__dict__.get("_max_workers"), _mono(), method))
        executor.__dict__["_threadscope_workers"] = 0
        executor.__dict__[_FORKS] = method == "fork"  # its workers record their runs
    return int(number)


def _tid() -> int:
    """This thread's native id, read once per thread: ``get_native_id`` is a system call
    (gettid), 0.6 us each on this machine, three per work item when it was called every time."""
    tid = getattr(_tls, "tid", None)
    if tid is None:
        tid = _tls.tid = _native_id()
    return int(tid)


def _asyncio_task_now() -> int:
    """Our number of the asyncio task running on this thread (work sent to a thread from a
    coroutine, ``asyncio.to_thread`` or ``run_in_executor``), or 0."""
    running = _asyncio["running_loop"]
    if running is None:
        return 0
    loop = running()
    if loop is None:
        return 0
    task = _asyncio["current_task"](loop)
    return _task_numbers.get(id(task), 0) if task is not None else 0


def _wrap_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    if _core is not None:
        return cast(Callable[..., Any], _core.Hook(_core.SUBMIT, original))

    def submit(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tls.pool = self
        try:
            return original(self, *args, **kwargs)
        finally:
            _tls.pool = None

    _copy_names(submit, original)
    return submit


def _traced_work_item(base: Any) -> type:
    """A ``_WorkItem`` that stamps its submit when made and its run when run. The stamp is one
    tuple on the item; a pending item is kept by number until it has run (for what
    :func:`finish` says of those still queued or running). Written for speed: it runs twice per
    task, and a pool of short tasks spends about 15 us on each, so every global lookup and
    function call here shows (the benchmark's bar is 10%)."""
    base_init = base.__init__
    base_run = base.run
    # _WorkItem.__init__ stores its four arguments and nothing else (3.10-3.13): done here
    # without calling it, one Python call less per task; another version's is called as it is.
    plain_init = getattr(base_init, "__code__", None) is not None and \
        base_init.__code__.co_names == ("future", "fn", "args", "kwargs")
    append = _events.append
    functions = _functions
    pending = _pending
    numbers = _item_numbers
    tls = _tls
    mono = _mono
    asyncio_hooks = _asyncio
    if _core is not None:
        return type(base.__name__, (base,), {
            "__init__": _core.Hook(_core.ITEM_INIT, base_init, None, plain_init),
            "run": _core.Hook(_core.ITEM_RUN, base_run),
            "__module__": base.__module__, "__qualname__": base.__qualname__,
            "__doc__": base.__doc__})

    class WorkItem(base):
        def __init__(self, future: Any, fn: Any, args: Any, kwargs: Any) -> None:
            if plain_init:
                self.future = future
                self.fn = fn
                self.args = args
                self.kwargs = kwargs
            else:
                base_init(self, future, fn, args, kwargs)
            try:
                executor = getattr(tls, "pool", None)
                pool = executor.__dict__.get(_ATTR) or _pool_id(executor, THREAD_POOL) \
                    if executor is not None else 0
                number = next(numbers)
                self._threadscope = (
                    number, pool,
                    functions.get(getattr(fn, "__code__", None)) or _function_id(fn), mono(),
                    getattr(tls, "tid", None) or _tid(),
                    _asyncio_task_now() if asyncio_hooks["running_loop"] is not None
                    and asyncio_hooks["running_loop"]() is not None else 0)
                pending[number] = self
            except Exception as exc:
                faults.note("task_event_lost", exc)

        def run(self) -> None:
            start = self._threadscope_start = mono()
            future = None
            try:
                base_run(self)
            finally:
                end = mono()
                try:
                    stamp = self.__dict__.get("_threadscope")
                    if stamp is not None:
                        pending.pop(stamp[0], None)
                        future = self.future
                        if future._state == "FINISHED" and future._exception is None:
                            append((ITEM, stamp, start, end, getattr(tls, "tid", None) or _tid()))
                        else:
                            outcome, error = _outcome(future)
                            append((ITEM, stamp, None if outcome == CANCELLED else start, end,
                                    getattr(tls, "tid", None) or _tid(), outcome, error))
                except Exception as exc:
                    faults.note("task_event_lost", exc)
                # _WorkItem.run breaks the same cycle (an exception's traceback keeps the
                # frames it passed, and their locals): this frame must not keep the item.
                self = future = None  # type: ignore[assignment]

    WorkItem.__name__ = WorkItem.__qualname__ = base.__name__
    WorkItem.__module__ = base.__module__
    return WorkItem


def _outcome(future: Any) -> tuple[str, str | None]:
    """A done future's outcome (without retrieving its exception: ``_exception`` is read)."""
    state = future._state
    if state == "FINISHED":
        exc = future._exception
        return (OK, None) if exc is None else (ERROR, _error_of(exc))
    if state in ("CANCELLED", "CANCELLED_AND_NOTIFIED"):
        return CANCELLED, None
    return UNFINISHED, None


# ----------------------------------------------------------------------------------------------
# Process pools: submit and end, seen from the parent


class _RunInChild:
    """What a forking process pool's worker runs instead of the submitted callable: the
    callable, timed, on the worker. Pickled by reference to this module, which the forked worker
    already has; the callable is pickled as it would have been (an unpicklable one fails the
    same way). Its one visible trace: a frame of ours in a remote traceback."""

    __slots__ = ("fn", "number", "owner")

    def __init__(self, fn: Any, owner: int, number: int) -> None:
        self.fn, self.owner, self.number = fn, owner, number

    def __reduce__(self) -> tuple[Any, ...]:
        return _RunInChild, (self.fn, self.owner, self.number)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:  # "self" may be a keyword
        start = _mono()
        try:
            return self.fn(*args, **kwargs)
        finally:
            end = _mono()
            if _state["installed"]:
                try:
                    _events.append((RUN, self.owner, self.number, start, end, _tid()))
                    if _state["writer"] == -1:  # a forked worker: no writer thread of its own
                        _write_as_a_worker(end)
                except Exception as exc:
                    faults.note("task_event_lost", exc)


def _write_as_a_worker(now: int) -> None:
    """A worker writes every so often (one killed later loses at most that much) and when it
    leaves: multiprocessing ends a worker with ``os._exit`` after its finalizers, and
    ``atexit`` does not run (the bootstrap's ``os._exit`` flushes, but a program recorded by
    ``tracer.record()`` has no bootstrap)."""
    if _state.get("finalized") != _state["pid"]:
        _state["finalized"] = _state["pid"]
        util = sys.modules.get("multiprocessing.util")
        if util is not None:
            util.Finalize(None, flush, exitpriority=-1_000_000)  # after the program's own
    if now - _state["flushed"] > FLUSH_INTERVAL_S * 1e9:
        _state["flushed"] = now
        flush()


def _start_method(executor: Any) -> str | None:
    """How a process pool starts its workers: only forked ones record their runs."""
    context = executor.__dict__.get("_mp_context")
    try:
        method = context.get_start_method() if context is not None else None
    except Exception:  # a context of another kind: its workers are not known to be ours
        return None
    return method if isinstance(method, str) else None


def _wrap_process_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    def submit(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        submitted = _mono()
        head = None
        try:
            fn = args[0] if args else kwargs.get("fn")
            number = _next_item()
            head = (number, _pool_id(self, PROCESS_POOL), _function_id(fn), submitted, _tid(),
                    _asyncio_task_now())
            if args and self.__dict__.get(_FORKS):
                args = (_RunInChild(fn, _state["pid"], number), *args[1:])
        except Exception as exc:
            faults.note("task_event_lost", exc)
        future = original(self, *args, **kwargs)  # raises like the original (after shutdown)
        if head is not None:
            try:
                _process_pending[head[0]] = (future, head)
                future.add_done_callback(partial(_process_item_done, head[0]))
            except Exception as exc:
                faults.note("task_event_lost", exc)
        return future

    _copy_names(submit, original)
    return submit


def _process_item_done(number: int, future: Any) -> None:
    end = _mono()
    try:
        entry = _process_pending.pop(number, None)
        if entry is None:
            return
        outcome, error = _outcome(future)
        _events.append((ITEM, entry[1], None, end, None, outcome, error))
    except Exception as exc:
        faults.note("task_event_lost", exc)


# ----------------------------------------------------------------------------------------------
# asyncio


def _loop_id(loop: Any) -> int:
    number = loop.__dict__.get(_ATTR)
    if number is None:
        number = _number("loop")
        loop.__dict__[_ATTR] = number
        _events.append((LOOP, number, _state["pid"], _tid(), _mono()))
    return int(number)


def _task_id(task: Any, loop: int, created: int, parent: int, coro: Any = None) -> int:
    """Our number of ``task``, declared with its name and coroutine the first time. Kept by
    ``id(task)`` until the task is done, not as an attribute: a C task's first attribute costs
    it a ``__dict__`` of its own."""
    key = id(task)
    number = _task_numbers.get(key)
    if number is not None:
        return number
    number = _next_task()
    _task_numbers[key] = number
    if coro is None and not task.done():
        # Never get_coro() of a done task: 3.12.1's C task crashes (a NULL coroutine) on an
        # eager task that finished inside create_task. create_task passes its argument instead.
        coro = task.get_coro()
    _events.append((TASK, number, _state["pid"], loop,
                    faults.safe_text(task.get_name(), "task_name"),
                    _coroutine_id(coro), created, parent))
    return number


def _task_done(task: Any, number: int, t: int) -> None:
    """Write the end of a task (once: it is forgotten then)."""
    _task_numbers.pop(id(task), None)
    if task.cancelled():
        outcome, error = CANCELLED, None
    else:
        exc = task._exception  # never exception(): it would mark the exception as retrieved
        outcome, error = (OK, None) if exc is None else (ERROR, _error_of(exc))
    # Read again: asyncio.create_task(coro, name=...) names the task after loop.create_task.
    _events.append((DONE, number, t, outcome, error, faults.safe_text(task.get_name())))


def _wrap_handle_run(original: Callable[..., Any], task_types: tuple[type, ...]
                     ) -> Callable[..., Any]:
    """Every callback the loop runs, timed; a task's step (its callback's ``__self__`` is the
    task) is written with the task's number. Inlined for speed like the work item's hooks:
    it runs for every callback of every loop."""
    if _core is not None:
        return cast(Callable[..., Any], _core.Hook(_core.HANDLE_RUN, original, task_types))
    mono = _mono

    def _run(self: Any) -> Any:
        start = mono()
        try:
            return original(self)
        finally:
            end = mono()
            try:
                _step_ran(self._loop.__dict__.get(_ATTR) or _loop_id(self._loop),
                          self._callback, start, end, task_types)
            except Exception as exc:
                faults.note("task_event_lost", exc)
            # As Handle._run does ("self = None"): a task that raised keeps its traceback, whose
            # finished frames keep their callers' frames (3.11+), this one among them; what its
            # locals held would live on with it, and a task that died unreferenced would not be
            # collected when the program expects ("Task exception was never retrieved" then
            # came late or never: CPython's test_task_exc_handler_correct_context, 3.13).
            self = None

    _copy_names(_run, original)
    return _run


_has_self: dict[type, bool] = {}  # callback type -> has __self__ (a task step's, a method's)


def _step_ran(loop: int, callback: Any, start: int, end: int,
              task_types: tuple[type, ...]) -> None:
    """Write one callback the loop ran: a task's step (its callback's ``__self__`` is the
    task) with the task's number, any other with its function when it ran long."""
    kind = type(callback)
    has_self = _has_self.get(kind)
    if has_self is None:  # once per type: a plain function's miss raises inside
        has_self = _has_self[kind] = hasattr(callback, "__self__")
    owner: Any = callback.__self__ if has_self else None
    number = _task_numbers.get(id(owner)) if owner is not None else None
    if number is not None:
        _events.append((STEP, loop, number, start, end, 0))
        if owner.done():
            _task_done(owner, number, end)
    elif owner is not None and isinstance(owner, task_types):
        _untracked_step(owner, loop, start, end)
    else:
        _events.append((STEP, loop, 0, start, end,
                        _function_id(callback) if end - start >= NAME_CALLBACK_NS else 0))


def _untracked_step(task: Any, loop: int, start: int, end: int) -> None:
    """A step of a task we have no number for: made as ``asyncio.Task(coro)`` directly (its
    first step declares it), or a late callback of one already done."""
    if task.done():
        _events.append((STEP, loop, 0, start, end, 0))
        return
    number = _task_id(task, loop, start, 0)
    _events.append((STEP, loop, number, start, end, 0))
    if task.done():
        _task_done(task, number, end)


def _declare_task(task: Any, loop: int) -> None:
    """What the C create_task hook asks of a task made without a coroutine argument."""
    number = _task_id(task, loop, _mono(), 0)
    if task.done():
        _task_done(task, number, _mono())


def _wrap_create_task(original: Callable[..., Any]) -> Callable[..., Any]:
    if _core is not None:
        return cast(Callable[..., Any], _core.Hook(_core.CREATE_TASK, original))

    def create_task(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        created = _mono()
        parent = None
        task = original(self, *args, **kwargs)
        try:
            parent = _asyncio["current_task"](self)
            number = _task_id(task, _loop_id(self), created,
                              _task_numbers.get(id(parent), 0) if parent is not None else 0,
                              args[0] if args else kwargs.get("coro"))
            if task.done():  # an eager task (3.12+) that finished inside create_task
                _task_done(task, number, _mono())
        except Exception as exc:
            faults.note("task_event_lost", exc)
        try:
            return task
        finally:  # an eager task's finished frames keep this one (see _wrap_handle_run)
            self = args = kwargs = task = parent = None  # type: ignore[assignment]

    _copy_names(create_task, original)
    return create_task


# ----------------------------------------------------------------------------------------------
# uvloop: its loop is Cython and its handles never call asyncio's Handle._run, but a task (C or
# Python) schedules each step through the loop's Python-visible call_soon, and
# asyncio.create_task calls loop.create_task: both can be wrapped on uvloop.Loop, the Python
# subclass that uvloop.new_event_loop() makes. Callbacks uvloop schedules inside its Cython code
# (protocols' data_received, its own I/O) are not seen, so a uvloop loop's busy time counts
# what its tasks and the program's own callbacks ran.

_COROUTINE_FLAGS = 0x80 | 0x100 | 0x200  # CO_COROUTINE, CO_ITERABLE_COROUTINE, CO_ASYNC_GENERATOR


class _TimedCallback:
    """A callback handed to a uvloop loop, timed when the loop runs it. It answers for the
    callback (name, ``__self__``, repr), which uvloop reads to name a handle in its debug-mode
    and error messages."""

    __slots__ = ("callback", "loop", "task_types")

    def __init__(self, callback: Any, loop: int, task_types: tuple[type, ...]) -> None:
        self.callback, self.loop, self.task_types = callback, loop, task_types

    def __getattr__(self, name: str) -> Any:
        return getattr(self.callback, name)

    def __repr__(self) -> str:
        return repr(self.callback)

    def __call__(self, /, *args: Any) -> Any:
        start = _mono()
        try:
            return self.callback(*args)
        finally:
            end = _mono()
            try:
                _step_ran(self.loop, self.callback, start, end, self.task_types)
            except Exception as exc:
                faults.note("task_event_lost", exc)


def _timeable(callback: Any) -> bool:
    """Whether wrapping hides nothing: a non-callable, a coroutine or a coroutine function
    (refused by asyncio's debug mode, perhaps by uvloop's one day) meets uvloop as it is."""
    if not callable(callback):
        return False
    code = getattr(getattr(callback, "__func__", callback), "__code__", None)
    return code is None or not code.co_flags & _COROUTINE_FLAGS


def _wrap_uvloop_schedule(original: Callable[..., Any], where: int,
                          task_types: tuple[type, ...]) -> Callable[..., Any]:
    """``call_soon(callback, ...)`` (``where`` 0: the callback after the loop) or
    ``call_later(delay, callback, ...)`` (``where`` 1): the callback goes in timed. The C hook
    calls the original itself, so no frame of ours is where the loop's debug mode notes that
    the handle was made; the Python one's is (and debug mode times slow callbacks itself, so
    there the callback goes in as it is)."""
    at = where + 1  # in the arguments, after the loop

    def rewrite(args: tuple[Any, ...]) -> tuple[Any, ...]:
        try:
            if len(args) > at and _timeable(args[at]):
                loop = args[0]
                number = loop.__dict__.get(_ATTR) or _loop_id(loop)
                return (*args[:at], _TimedCallback(args[at], number, task_types),
                        *args[at + 1:])
        except Exception as exc:
            faults.note("task_event_lost", exc)
        return args

    if _core is not None and hasattr(_core, "SCHEDULE"):
        return cast(Callable[..., Any], _core.Hook(_core.SCHEDULE, original, rewrite))

    def schedule(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self.get_debug():
            return original(self, *args, **kwargs)
        return original(*rewrite((self, *args)), **kwargs)

    _copy_names(schedule, original)
    return schedule


def _patch_uvloop(module: Any) -> None:
    loop = module.Loop
    task_types = _task_types()
    for name, where in (("call_soon", 0), ("call_soon_threadsafe", 0), ("call_later", 1),
                        ("call_at", 1)):
        _patch(loop, name, _wrap_uvloop_schedule(getattr(loop, name), where, task_types))
    _patch(loop, "create_task", _wrap_create_task(loop.create_task))


# ----------------------------------------------------------------------------------------------
# Patching at import


def _copy_names(wrapper: Callable[..., Any], original: Callable[..., Any]) -> None:
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(wrapper, attr, getattr(original, attr))
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]


def _patch(owner: Any, name: str, replacement: Any) -> None:
    """Put ``replacement`` on ``owner`` (an inherited attribute is shadowed, and removed again
    by :func:`uninstall`)."""
    _state["saved"].append((owner, name, owner.__dict__.get(name, _INHERITED)))
    setattr(owner, name, replacement)


_INHERITED = object()


def _patch_thread_pool(module: Any) -> None:
    _patch(module, "_WorkItem", _traced_work_item(module._WorkItem))
    executor = module.ThreadPoolExecutor
    _patch(executor, "submit", _wrap_submit(executor.__dict__["submit"]))


def _patch_process_pool(module: Any) -> None:
    executor = module.ProcessPoolExecutor
    _patch(executor, "submit", _wrap_process_submit(executor.__dict__["submit"]))


def _task_types() -> tuple[type, ...]:
    """asyncio's task classes, C and Python."""
    types: list[type] = []
    for source in (sys.modules.get("asyncio.tasks"), sys.modules.get("_asyncio")):
        for name in ("Task", "_CTask", "_PyTask"):
            candidate = getattr(source, name, None) if source is not None else None
            if isinstance(candidate, type) and candidate not in types:
                types.append(candidate)
    return tuple(types)


def _patch_events(module: Any) -> None:
    handle = module.Handle
    _patch(handle, "_run", _wrap_handle_run(handle.__dict__["_run"], _task_types()))


def _patch_base_events(module: Any) -> None:
    loop = module.BaseEventLoop
    _patch(loop, "create_task", _wrap_create_task(loop.__dict__["create_task"]))


def _patch_asyncio() -> None:
    _asyncio["running_loop"] = sys.modules["asyncio.events"]._get_running_loop
    _asyncio["current_task"] = sys.modules["asyncio.tasks"].current_task
    if _core is not None:
        _core.watch_asyncio(_asyncio["running_loop"], _asyncio["current_task"])
    _patch_events(sys.modules["asyncio.events"])
    _patch_base_events(sys.modules["asyncio.base_events"])


# Module -> what to patch once it is imported. asyncio.events is patched after asyncio.tasks
# exists (asyncio imports base_events, events... then tasks), so the hook waits for the package.
_WATCHED: dict[str, Callable[[Any], None]] = {
    "concurrent.futures.thread": _patch_thread_pool,
    "concurrent.futures.process": _patch_process_pool,
    "asyncio": lambda package: _patch_asyncio(),
    "uvloop": _patch_uvloop,  # imports asyncio first: patched after it
}


class _PatchOnImport:
    """A meta-path finder that finds nothing itself: it lets the normal finders find a watched
    module and patches the module after it has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _WATCHED or name in _state["done"]:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        loader = spec.loader
        real_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            try:
                real_exec(module)
            finally:
                with contextlib.suppress(AttributeError):
                    del loader.exec_module  # the class's again
            _patch_now(name)

        # On this module's own loader object, so that __loader__ and __spec__.loader stay the
        # standard library's (importlib.resources, inspect and reload read them).
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _patch_now(name: str) -> None:
    if name in _state["done"] or not _state["installed"]:
        return
    _state["done"].add(name)
    try:
        _WATCHED[name](sys.modules[name])
    except Exception as exc:  # the program goes on unrecorded there
        faults.note("task_hook_failed", exc)
    if len(_state["done"]) == len(_WATCHED):
        _remove_finder()


def _remove_finder() -> None:
    finder = _state["finder"]
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)
    _state["finder"] = None


# ----------------------------------------------------------------------------------------------
# Writing


def _take() -> list[tuple[Any, ...]]:
    n = len(_events)
    batch = _events[:n]
    del _events[:n]  # appends made meanwhile land after index n and stay for the next flush
    return batch


def flush() -> None:
    """Append the buffered events to the sink as one marshalled chunk."""
    sink = _state["sink"]
    if sink is None or not _flush_lock.acquire(True, 2.0):
        return
    try:
        # The C records first: what they refer to (a function, a loop, a task) was declared
        # before them, so it is in this batch of events or an earlier one.
        records, dropped = _core.drain() if _core is not None else (b"", 0)
        if dropped:
            faults.note("task_event_lost", OverflowError(f"{dropped} events: buffer full"))
        batch = _take()
        if not batch and not records:
            return
        pid = _state["pid"]  # each chunk says whose it is: a forked child appends to the file
        try:
            data = marshal.dumps((pid, batch, records), MARSHAL_VERSION)
        except ValueError as exc:  # a value marshal cannot write: keep what it can
            faults.note("task_event_lost", exc)
            data = marshal.dumps((pid, [e for e in batch if _marshallable(e)], records),
                                 MARSHAL_VERSION)
        with open(sink, "ab") as out:
            out.write(CHUNK.pack(len(data)) + data)  # one write: a forked child's never interleave
    finally:
        _flush_lock.release()


def _marshallable(event: tuple[Any, ...]) -> bool:
    try:
        marshal.dumps(event, MARSHAL_VERSION)
    except ValueError:
        return False
    return True


def finish() -> None:
    """The end of the recording: work items and tasks still open are written as they stand."""
    if not _state["installed"]:
        return
    try:
        waiting = _core.take_pending() if _core is not None else [
            (item, item._threadscope, item.__dict__.get("_threadscope_start"))
            for item in _pending.values()]
        _pending.clear()
        for work_item, stamp, start in waiting:
            # Cancelled in the queue (shutdown(cancel_futures=True)), or still queued or running.
            outcome = CANCELLED if _outcome(work_item.future)[0] == CANCELLED else UNFINISHED
            _events.append((ITEM, stamp, start, None, None, outcome, None))
        for number, (future, head) in list(_process_pending.items()):
            _process_pending.pop(number, None)
            outcome = CANCELLED if _outcome(future)[0] == CANCELLED else UNFINISHED
            _events.append((ITEM, head, None, None, None, outcome, None))
        for number in list(_task_numbers.values()):
            _events.append((DONE, number, None, UNFINISHED, None))
        _task_numbers.clear()
        flush()
    except Exception as exc:
        faults.note("task_event_lost", exc)


def _writer_loop(generation: int) -> None:
    """Never raises: an exception leaving a ``_thread`` thread is printed in the program's
    output."""
    try:
        while _state["installed"] and _state["writer"] == generation:
            time.sleep(FLUSH_INTERVAL_S)
            try:
                flush()
            except Exception as exc:
                faults.note("task_event_lost", exc)
    except Exception:  # interpreter shutdown: nowhere left to say so
        pass


def _at_exit() -> None:
    try:
        if os.getpid() == _state["pid"]:
            finish()
        else:
            flush()
    except Exception as exc:
        faults.note("task_event_lost", exc)


def _after_fork_in_child() -> None:
    """A forked child starts with the parent's unwritten events: drop them. It writes its own
    at exit (atexit, or the bootstrap's ``os._exit``), without a writer thread of its own."""
    global _flush_lock
    try:
        if not _state["installed"]:
            return
        _flush_lock = _thread.allocate_lock()
        _state["pid"] = os.getpid()
        _state["writer"] = -1
        _state["flushed"] = _mono()
        _tls.__dict__.clear()  # the forking thread's cached tid is the parent's, not this one's
        del _events[:]
        _functions.clear()  # declared again under the child's pid, which the model keys them by
        if _core is not None:
            _core.forget()
        _pending.clear()
        _process_pending.clear()
        _task_numbers.clear()
        _events.append(_start_event())
    except Exception as exc:
        faults.note("fork_handler", exc)


def _start_event() -> tuple[Any, ...]:
    return (START, FORMAT_VERSION, _state["pid"], _mono(),
            ".".join(map(str, sys.version_info[:3])), "c" if NATIVE else WHY_PURE)


def install(sink_path: str) -> None:
    """Start recording into ``sink_path``: patch what is already imported, and the rest when the
    program imports it. Call before user code runs."""
    if _state["installed"]:
        return
    _state.update(sink=os.path.abspath(sink_path), installed=True, pid=os.getpid(), done=set())
    if _core is not None:
        _core.configure(sys.modules[__name__])
    _events.append(_start_event())
    finder = _PatchOnImport()
    _state["finder"] = finder
    sys.meta_path.insert(0, finder)
    for name in _WATCHED:
        if name in sys.modules:
            _patch_now(name)
    if not _state.get("hooks"):
        _state["hooks"] = True
        atexit.register(_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
    _state["writer"] += 1
    _thread.start_new_thread(_writer_loop, (_state["writer"],))


def uninstall() -> None:
    """Put back what was patched and write what was recorded."""
    if not _state["installed"]:
        return
    finish()
    _remove_finder()
    for owner, name, original in reversed(_state["saved"]):
        if original is _INHERITED:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _state["saved"] = []
    _state["installed"] = False
