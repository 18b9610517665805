"""The analysed model: the one value every renderer reads, saved as ``model.json``.

Times are seconds relative to ``t0_ns`` (CLOCK_MONOTONIC when the target began running user code);
``t0_ns`` keeps the absolute anchor. The schema is versioned and loaders refuse versions they do not
know, so a report is never built from a model it would misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer.errors import CorruptRecording, UnknownSchema
from tracer.raw_files import RunStatus, SourceName, Word
from tracer.runfolder import atomic_write_bytes

# 2: GIL figures per thread, figure_sources, locks and lock holds. 3: every part typed (lock
# statistics, wait and hold details, deadlock steps, run metrics, processes, enums for status,
# end reason, method and source names); hand-offs say from_tid/to_tid. docs/model.md has it all.
# 4: where the time went (``where``), who kept whom waiting (``gil_blame``, ``lock_blame``),
# what blocked each thread (``blocked_by``, ``BlockedDetail``).
# 5: child processes (``processes`` with their CPU and GIL figures, concurrency phases).
# 6: tasks as first-class: pool work items and asyncio tasks (``tasks``), per-pool figures
# (``pools``) and per-event-loop figures with its blocked steps (``loops``).
# 7: a process-pool item's run in its forked worker (``tasks[].worker_pid``, start, tid),
# ``pools[].starts_seen`` and ``start_method``.
SCHEMA_VERSION = 7

# Thread states, finest first. ``on_cpu``/``off_cpu`` are what the OS alone can tell; the GIL
# recorders refine them into ``running``/``native`` and ``gil_wait``/``blocked``; the lock
# recorder into ``lock_wait`` (contention) and ``signal_wait`` (a signal no holder owes).
RUNNING = "running"  # holds the GIL and executes Python
NATIVE = "native"  # on a CPU without the GIL (C code that released it)
GIL_WAIT = "gil_wait"  # ready to run Python, waiting for the GIL
LOCK_WAIT = "lock_wait"  # contention: a Lock/RLock/Semaphore acquire blocked by another thread
SIGNAL_WAIT = "signal_wait"  # waiting for a signal: Condition/Event/Barrier wait, queue get/put
BLOCKED = "blocked"  # sleep, I/O, join, queue, condition: not wanting the GIL
CPU_WAIT = "cpu_wait"  # ready to run but no free core: preempted or queued by the OS
ON_CPU = "on_cpu"  # on a CPU, GIL ownership unknown
OFF_CPU = "off_cpu"  # off CPU, reason unknown
LOCK_HOLD = "lock_hold"  # not a thread state: a lock held (ThreadTimeline.holds)
STATES = (RUNNING, NATIVE, ON_CPU, GIL_WAIT, CPU_WAIT, LOCK_WAIT, SIGNAL_WAIT, BLOCKED, OFF_CPU)
ON_CPU_STATES = frozenset({RUNNING, NATIVE, ON_CPU})


class Method(Word):
    """How a figure was obtained, best first."""

    EXACT = "exact"  # every event recorded (perf)
    SAMPLED = "sampled"  # inferred from periodic samples
    INSTRUMENTED = "instrumented"  # recorded by code running inside the target
    MISSING = "missing"  # nothing recorded it


class EndReason(Word):
    """How a thread's life ended, as far as the recording saw it."""

    FINISHED = "finished"  # its run() returned (or raised)
    KILLED_AT_EXIT = "killed_at_exit"  # a daemon thread still running when the interpreter exited
    RUNNING_AT_STOP = "running_at_stop"  # still running when the recording stopped


@dataclass(slots=True)
class WaitDetail:
    """What a ``lock_wait`` or ``signal_wait`` interval waited for: the primitive, who held it
    (contention only: a signal has no holder), how it ended."""

    lock: int  # the primitive's number within its process
    pid: int
    name: str
    kind: str  # lock | rlock | condition | semaphore | event | barrier | queue ...
    holder: int | None  # the tid that held it, when known
    ok: bool  # acquired; False: timed out, interrupted or never ended
    unfinished: bool = False  # still waiting when the recording stopped


@dataclass(slots=True)
class HoldDetail:
    """Which lock a ``lock_hold`` interval held."""

    lock: int
    pid: int
    name: str
    kind: str
    open: bool = False  # still held when the program ended


class BlockedCause(Word):
    """What a ``blocked`` thread was blocked by, from the syscall it slept in and its Python
    stack (:mod:`tracer.model.blocked` decides; docs/model.md lists them)."""

    SLEEP = "sleep"  # nanosleep/clock_nanosleep: time.sleep and the like
    IO = "io"  # read/write/send/recv/accept/connect...: socket, pipe or file I/O
    POLL = "poll"  # select/poll/epoll: waiting for any of several files or sockets
    CHILD = "child"  # wait4/waitid: waiting for a child process
    LOCK = "lock"  # a futex while the lock recorder saw it wait for a contended lock
    SIGNAL = "signal"  # waiting to be signalled: a condition, event, queue, join, or a signal
    FILE_LOCK = "file_lock"  # fcntl/flock: a file lock (SQLite's, fcntl.lockf...)
    OTHER = "other"  # any other wait, or one nothing recorded the cause of


@dataclass(slots=True)
class BlockedDetail:
    """Why a ``blocked`` interval was blocked."""

    cause: BlockedCause


@dataclass(slots=True)
class Interval:
    """A thread was in ``state`` from ``start`` to ``end`` (seconds from t0)."""

    start: float
    end: float
    state: str
    detail: WaitDetail | HoldDetail | BlockedDetail | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class StackSample:
    """What a sampler saw on one thread at one instant: GIL flags and the Python stack."""

    t: float
    owns_gil: bool | None
    active: bool | None
    stack: int  # index into RunModel.stacks (-1: no Python frames)


@dataclass
class SampledGilFigures:
    """How far one thread's sampled GIL figures can be trusted (:mod:`tracer.model.gil_uncertainty`
    says how each is derived). Shares are of the thread's life; ``_pm`` is the half-width of a 95%
    interval (2 standard errors of the sampling), so 0.41 with 0.02 reads "41% ±2 pp". A count or
    longest wait the samples cannot pin down is given as the bounds they prove."""

    period_ms: float  # root-mean-square time between samples
    samples: int  # samples that saw this thread
    gil_held_share: float
    gil_held_share_pm: float
    gil_wait_share: float
    gil_wait_share_pm: float
    gil_waits_low: int  # distinct waits the samples prove
    gil_waits_high: int | None  # most waits the counters allow (None: nothing bounds them)
    max_gil_wait_low_s: float  # the longest wait lasted at least this
    max_gil_wait_high_s: float  # and at most this: no wait can have been longer
    hidden_turns: int  # GIL turns between samples, estimated from the counters, that split waits


@dataclass
class ThreadTimeline:
    tid: int  # OS thread id (Linux: the tid in /proc, ``threading.get_native_id()``)
    pid: int
    name: str
    start_s: float | None
    end_s: float | None
    cpu_s: float
    daemon: bool | None = None
    is_main: bool = False
    end_reason: EndReason | None = None
    intervals: list[Interval] = field(default_factory=list)
    state_s: dict[str, float] = field(default_factory=dict)
    samples: list[StackSample] = field(default_factory=list)
    last_stack: list[str] = field(default_factory=list)  # frames seen last, innermost first
    # GIL figures (None when GIL ownership was not recorded); see RunModel.figure_sources
    gil_held_s: float | None = None
    gil_wait_s: float | None = None
    gil_waits: int | None = None
    max_gil_wait_s: float | None = None
    lock_wait_s: float | None = None  # contention only (lock_wait)
    signal_wait_s: float | None = None  # waiting for a signal (signal_wait)
    holds: list[Interval] = field(default_factory=list)  # lock hold intervals (state lock_hold)
    gil_sampled: SampledGilFigures | None = None  # the uncertainty of sampled GIL figures
    # Blocked seconds per BlockedCause, summing to state_s["blocked"] (time with no evidence of
    # its cause is "other"); empty when the thread was never blocked.
    blocked_by: dict[str, float] = field(default_factory=dict)


TURNED_OFF = "turned off on the command line"  # the reason of a recorder the user left out


@dataclass
class Source:
    """One recorder's contribution: was it used, why not, and how good its figures are."""

    used: bool
    reason: str = ""
    method: Method | None = None  # None: not used
    rate_hz: float | None = None
    samples: int | None = None
    notes: list[str] = field(default_factory=list)
    # Not used because the user (or the default for their kind of target) left it out: said in
    # the sources table, not raised as a warning.
    off_by_choice: bool = False


@dataclass
class Target:
    kind: str  # scenario | script | module
    name: str
    argv: list[str]
    python: str
    python_version: str
    exit_code: int | None
    status: RunStatus
    error: str | None = None


@dataclass
class Marker:
    name: str
    kind: str  # mark | phase
    start: float
    end: float | None
    tid: int | None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Series:
    """A regularly binned curve (e.g. CPU parallelism): ``values[i]`` covers [t[i], t[i]+bin_s)."""

    bin_s: float
    t: list[float]
    values: list[float]


@dataclass
class Claim:
    """A scenario's claim checked against the recording."""

    claim: str
    held: bool | None  # None: could not be checked
    detail: str


@dataclass
class ScenarioInfo:
    """The scenario a run recorded, as the report introduces it."""

    name: str
    concept: str
    section: str
    summary: str
    claim: str
    look_for: str


@dataclass(slots=True)
class LockWaiter:
    """How often, and how long in total, one thread waited for a lock while another held it."""

    tid: int
    holder: int | None  # None: the recorder could not tell who held it
    count: int
    wait_s: float


@dataclass(slots=True)
class LockHandoff:
    """A release followed by a waiter's acquisition: the arrow from one owner to the next."""

    from_tid: int
    to_tid: int
    released_s: float
    acquired_s: float


@dataclass
class LockStats:
    """One primitive's figures over the run, the ones the report ranks locks by."""

    id: int  # the primitive's number within its process
    pid: int
    kind: str  # lock | rlock | condition | semaphore | event | barrier | queue ...
    name: str
    site: str | None  # file:line that made it
    made_by: str | None  # the function that made it
    per_site: bool  # one row for every primitive made at that site (too many to list)
    instances: int
    acquisitions: int
    contended: int  # acquisitions that had to wait
    wait_s: float
    mean_wait_s: float
    p95_wait_s: float
    max_wait_s: float
    hold_s: float
    max_hold_s: float
    waiters: list[LockWaiter] = field(default_factory=list)
    handoffs: list[LockHandoff] = field(default_factory=list)
    # Its waits are contention (Lock, RLock, Semaphore: another thread held it); False: waits
    # for a signal (Condition, Event, Barrier, queue), which no holder owes.
    contention: bool = True


@dataclass
class LockRef:
    """A primitive named in a deadlock step."""

    id: int
    name: str | None
    kind: str | None = None


@dataclass
class DeadlockStep:
    """One thread of a deadlock cycle: it holds ``holds`` and waits for ``waits_for``, which the
    next thread of the cycle (``held_by``) holds."""

    tid: int
    thread: str | None
    holds: list[LockRef]
    waits_for: LockRef
    held_by: int


COMMAND_CHARS = 60  # of a process's command line in a track name


@dataclass
class ProcessGilFigures:
    """One process's own GIL, summed over its threads (each process has its own GIL)."""

    method: Method  # exact | sampled
    held_s: float | None  # GIL-held time of its threads; None: the source cannot tell
    wait_s: float
    waits: int


@dataclass
class ProcessInfo:
    """A process of the recording (the target and its children), with what it used."""

    pid: int
    ppid: int | None = None
    cmdline: list[str] = field(default_factory=list)
    start_s: float | None = None  # first and last seen, seconds from t0
    end_s: float | None = None
    threads: int = 0  # threads seen
    # its own /proc/PID/stat or its threads' schedstat, whichever says more: the stat counts
    # threads that lived between two listings
    cpu_s: float | None = None
    gil: ProcessGilFigures | None = None  # None: no GIL source followed this process

    @property
    def command(self) -> str:
        """Its command line, shortened to what a track name has room for ("" if unknown)."""
        if not self.cmdline:
            return ""
        text = " ".join([Path(self.cmdline[0]).name, *self.cmdline[1:]])
        return text if len(text) <= COMMAND_CHARS else text[:COMMAND_CHARS - 1] + "…"


class PhaseKind(Word):
    """Whose work a phase of the run was."""

    THREADS = "threads"  # the target's own threads, its child processes idle or absent
    PROCESSES = "processes"  # its child processes


@dataclass
class ConcurrencyPhase:
    """A stretch of the run in which the work was done by threads, or by child processes, with
    the CPU parallelism measured in it: what lets the report compare the two when both ran."""

    kind: PhaseKind
    start_s: float
    end_s: float
    workers: int  # threads (besides the main thread) or child processes that used CPU in it
    cpu_s: float  # CPU time of the whole process tree in the stretch
    parallelism: float  # cpu_s per second of the stretch


@dataclass
class GilRunFigures:
    """Run-wide GIL figures (see :func:`tracer.model.gil_exact.gil_metrics`)."""

    method: Method  # exact | sampled
    utilisation: float  # share of the wall time some thread held the GIL
    mean_waiters: float  # time-average number of threads waiting for it
    switches_per_s: float  # hand-offs between different threads
    acquisitions_per_s: float | None = None  # sampled: GIL turns the counters saw
    held_sampled_share: float = 0.0  # exact: share of on-CPU time settled by the sampler


@dataclass
class VizTracerCost:
    """What VizTracer's calls are estimated to have added to this run
    (:mod:`tracer.model.viztracer_cost`)."""

    calls: int
    calls_extrapolated: bool
    call_ns: float
    added_s: float
    added_low_s: float
    added_high_s: float
    slowdown: float
    slowdown_low: float
    slowdown_high: float | None  # None: the calls may account for nearly all of the run


@dataclass
class VizTracerFigures:
    overflow: bool  # its buffer filled and the oldest calls were dropped
    dropped_share: float | None = None  # share of the run the dropped calls covered
    cost: VizTracerCost | None = None  # None: its cost was not measured


@dataclass
class RunMetrics:
    cpu_s: float
    parallelism: float | None  # CPU-seconds per wall-second; None without the OS sampler
    cores: int
    threads: int
    peak_parallelism: float | None = None
    gil: GilRunFigures | None = None  # None: GIL ownership was not recorded
    viztracer: VizTracerFigures | None = None  # None: VizTracer did not run


@dataclass(frozen=True, slots=True)
class Frame:
    """One Python frame: the function (its ``co_qualname`` where the source knew it, e.g.
    ``Class.method``), the file as the stack source named it, and the line running."""

    function: str
    file: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.function} ({self.file}:{self.line})"


Stack = tuple[Frame, ...]  # outermost first: the thread's entry point, then what it called


class StackSource(Word):
    """Where the stacks that attribute time to code came from."""

    VIZTRACER = "viztracer"  # every call, exact: its function slices
    PYSPY = "py-spy"  # sampled out of process
    NONE = "none"  # no stacks were recorded


@dataclass(slots=True)
class WhereRow:
    """``seconds`` that thread ``tid`` spent in ``state`` while running ``stack`` (identical
    (tid, state, stack) rows are merged)."""

    tid: int
    state: str
    stack: Stack
    seconds: float


@dataclass
class Where:
    """Every second of every thread's states attributed to the Python stack it ran. Time a
    thread spent before its first stack sample, or in a process the stack source did not see,
    has no row; ``unattributed_s`` says how much that was, per state."""

    source: StackSource
    rate_hz: float | None  # the stack sampler's rate (None: exact or none)
    rows: list[WhereRow] = field(default_factory=list)
    unattributed_s: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class GilBlame:
    """While ``waiter_tid`` waited for the GIL in ``waiter_stack``, ``holder_tid`` held it
    running ``holder_stack``, for ``seconds`` in all (holder None: nobody held it, or the
    recording cannot tell who did)."""

    waiter_tid: int
    waiter_stack: Stack
    holder_tid: int | None
    holder_stack: Stack
    seconds: float


@dataclass(slots=True)
class LockBlame:
    """While ``waiter_tid`` waited for lock ``lock`` (named ``name``) in ``waiter_stack``,
    ``holder_tid`` held it running ``holder_stack`` (empty when the holder was not sampled)."""

    waiter_tid: int
    waiter_stack: Stack
    lock: int
    name: str
    holder_tid: int | None
    holder_stack: Stack
    seconds: float


class TaskKind(Word):
    """What ran a task."""

    THREAD_POOL = "thread_pool"  # a concurrent.futures.ThreadPoolExecutor work item
    PROCESS_POOL = "process_pool"  # a ProcessPoolExecutor work item (seen from the parent)
    ASYNCIO = "asyncio"  # an asyncio task on an event loop


class TaskOutcome(Word):
    """How a task ended."""

    OK = "ok"  # returned
    ERROR = "error"  # raised (``Task.error`` names the exception type)
    CANCELLED = "cancelled"  # cancelled before or while it ran
    UNFINISHED = "unfinished"  # still queued or running when the recording stopped


@dataclass(slots=True)
class Task:
    """One pool work item or asyncio task. ``submit_s`` is when it was submitted (created, for
    asyncio), ``start_s`` when a worker (the loop, its first step) began it, ``queue_wait_s``
    the difference. For asyncio ``run_s`` is the sum of its steps (``steps``: each time the loop
    ran it, on ``tid``). A process-pool item's start, end and worker are its run in the worker
    process (``worker_pid``) when the pool forked its workers (they record too); otherwise the
    parent sees submit and end only."""

    id: int  # within its process: the order of submission or creation
    kind: TaskKind
    pool: str  # the pool's name (thread name prefix), or the event loop's
    name: str  # asyncio: the task's name; pools: the function and its number in the pool
    function: str  # qualified name of what it ran (the coroutine, for asyncio)
    site: str  # file:line of that function's definition ("" when it has none: a builtin)
    submit_s: float
    start_s: float | None
    end_s: float | None
    tid: int | None  # the worker thread or the loop's thread
    pid: int
    queue_wait_s: float | None
    run_s: float | None
    outcome: TaskOutcome
    error: str | None  # the exception type when outcome is error
    submit_tid: int | None = None  # the thread that submitted it (pools)
    parent: int | None = None  # the asyncio task that created it or submitted it to the pool
    steps: list[tuple[float, float]] = field(default_factory=list)  # asyncio: (start, end)
    # Pools: tasks of the same pool submitted before it and not yet ended when it was: from
    # max_workers on, it had to wait for a free worker (not for a worker thread to start).
    ahead: int | None = None
    # The process whose thread ``tid`` is: ``pid`` for threads and asyncio, the worker process
    # for a process pool; None when no worker was seen running it.
    worker_pid: int | None = None


@dataclass(slots=True)
class PoolStats:
    """One executor's figures. Queue depth is work submitted and not yet started (an item
    whose start was not seen, a process pool's with unrecorded workers: until it was done);
    ``depth_t``/``depth`` are its steps (the depth is ``depth[i]`` from ``depth_t[i]`` on).
    ``utilisation`` is the workers' busy seconds over ``max_workers`` times the pool's active
    span (first submit to last end), when every item's start was seen."""

    name: str
    kind: TaskKind
    pid: int
    max_workers: int | None
    workers_started: int
    tasks: int
    errors: int
    cancelled: int
    unfinished: int
    waited: int  # tasks that started after waiting for a free worker (``Task.ahead``)
    max_queue_wait_s: float | None
    peak_queue_depth: int
    mean_queue_depth: float
    utilisation: float | None
    active_s: float  # first submit to last end
    # Every item that ended was seen starting: false for a process pool whose workers were not
    # recorded (spawned), whose queue depth is then what was in flight.
    starts_seen: bool = True
    start_method: str | None = None  # a process pool's: fork, spawn or forkserver
    depth_t: list[float] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)


@dataclass(slots=True)
class BlockedStep:
    """An event-loop step that ran at least the slow-step threshold: nothing else on that loop
    ran meanwhile. ``function`` is where it spent the time: the innermost user frame of the
    stack that ran longest during it when a stack source saw it, else the task's coroutine (or
    the callback's name)."""

    start_s: float
    end_s: float
    task: str | None  # the task's name; None for a plain callback
    coroutine: str  # the task's coroutine or the callback, qualified
    function: str
    site: str  # file:line of ``function``
    stack: Stack = ()  # outermost first; empty without a stack source


@dataclass(slots=True)
class LoopStats:
    """One asyncio event loop: how busy its thread was running callbacks and task steps, and
    its blocked moments. ``busy`` is the busy share per bin of ``busy.bin_s``."""

    id: int
    pid: int
    tid: int
    start_s: float  # its first callback
    end_s: float  # the end of its last
    busy_s: float
    steps: int  # callbacks run, task steps among them
    tasks: int
    slow_step_s: float  # the threshold ``blocked`` used
    blocked: list[BlockedStep] = field(default_factory=list)
    busy: Series | None = None


@dataclass
class RunModel:
    target: Target
    t0_ns: int
    wall_s: float
    cores: int
    sources: dict[SourceName, Source]
    threads: list[ThreadTimeline]
    metrics: RunMetrics
    parallelism: Series | None = None
    markers: list[Marker] = field(default_factory=list)
    stacks: list[list[str]] = field(default_factory=list)
    processes: list[ProcessInfo] = field(default_factory=list)
    phases: list[ConcurrencyPhase] = field(default_factory=list)  # in time order
    partial: bool = False
    warnings: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    scenario: ScenarioInfo | None = None
    # figure -> how it was obtained, e.g. {"gil": "exact", "cpu": "sampled", "locks": ...}
    figure_sources: dict[str, Method] = field(default_factory=dict)
    # ranked contention first, then by wait, then acquisitions
    locks: list[LockStats] = field(default_factory=list)
    deadlocks: list[list[DeadlockStep]] = field(default_factory=list)  # cycles at stop time
    where: Where | None = None  # None: not attributed (a model built without stacks)
    gil_blame: list[GilBlame] = field(default_factory=list)  # largest first
    lock_blame: list[LockBlame] = field(default_factory=list)  # largest first
    tasks: list[Task] = field(default_factory=list)  # by submit time
    pools: list[PoolStats] = field(default_factory=list)
    loops: list[LoopStats] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_json_bytes(self) -> bytes:
        # orjson serialises dataclasses itself: dataclasses.asdict deep-copies every interval
        # first, which took seconds on a run with a few hundred thousand lock holds. Source
        # names are enum keys, which need OPT_NON_STR_KEYS.
        return orjson.dumps(self, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                            | orjson.OPT_NON_STR_KEYS)

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_json_bytes())

    @classmethod
    def load(cls, path: Path) -> RunModel:
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CorruptRecording(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(raw, origin=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], origin: str = "model") -> RunModel:
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise UnknownSchema(
                f"{origin}: schema_version {version!r} is not {SCHEMA_VERSION}; "
                "rebuild it with `python -m tracer report RUN_DIR`"
            )
        try:
            return cls(
                target=_target(raw["target"]),
                t0_ns=raw["t0_ns"],
                wall_s=raw["wall_s"],
                cores=raw["cores"],
                sources={SourceName(k): source_from_dict(v) for k, v in raw["sources"].items()},
                threads=[_thread_from_dict(t) for t in raw["threads"]],
                metrics=_metrics(raw["metrics"]),
                parallelism=Series(**raw["parallelism"]) if raw.get("parallelism") else None,
                markers=[Marker(**m) for m in raw.get("markers", [])],
                stacks=raw.get("stacks", []),
                processes=[_process(p) for p in raw.get("processes", [])],
                phases=[_phase(p) for p in raw.get("phases", [])],
                partial=raw.get("partial", False),
                warnings=raw.get("warnings", []),
                claims=[Claim(**c) for c in raw.get("claims", [])],
                scenario=ScenarioInfo(**raw["scenario"]) if raw.get("scenario") else None,
                figure_sources={k: Method(v) for k, v in raw.get("figure_sources", {}).items()},
                locks=[_lock_stats(lock) for lock in raw.get("locks", [])],
                deadlocks=[[_deadlock_step(step) for step in cycle]
                           for cycle in raw.get("deadlocks", [])],
                where=_where(raw["where"]) if raw.get("where") else None,
                gil_blame=[GilBlame(**{**b, "waiter_stack": _stack(b["waiter_stack"]),
                                       "holder_stack": _stack(b["holder_stack"])})
                           for b in raw.get("gil_blame", [])],
                lock_blame=[LockBlame(**{**b, "waiter_stack": _stack(b["waiter_stack"]),
                                         "holder_stack": _stack(b["holder_stack"])})
                            for b in raw.get("lock_blame", [])],
                tasks=[_task(t) for t in raw.get("tasks", [])],
                pools=[PoolStats(**{**p, "kind": TaskKind(p["kind"])})
                       for p in raw.get("pools", [])],
                loops=[_loop(loop) for loop in raw.get("loops", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecording(f"{origin}: malformed model ({exc})") from exc


def source_from_dict(raw: dict[str, Any]) -> Source:
    """A source as JSON has it (run.json or model.json): an unused one has no method."""
    raw = dict(raw)
    raw["method"] = Method(raw["method"]) if raw.get("method") else None
    return Source(**raw)


def _target(raw: dict[str, Any]) -> Target:
    return Target(**{**raw, "status": RunStatus(raw["status"])})


def _metrics(raw: dict[str, Any]) -> RunMetrics:
    raw = dict(raw)
    if raw.get("gil") is not None:
        raw["gil"] = GilRunFigures(**{**raw["gil"], "method": Method(raw["gil"]["method"])})
    if raw.get("viztracer") is not None:
        viztracer = dict(raw["viztracer"])
        if viztracer.get("cost") is not None:
            viztracer["cost"] = VizTracerCost(**viztracer["cost"])
        raw["viztracer"] = VizTracerFigures(**viztracer)
    return RunMetrics(**raw)


def _stack(raw: list[dict[str, Any]]) -> Stack:
    return tuple(Frame(str(f["function"]), str(f["file"]), int(f["line"])) for f in raw)


def _where(raw: dict[str, Any]) -> Where:
    return Where(StackSource(raw["source"]), raw.get("rate_hz"),
                 [WhereRow(r["tid"], r["state"], _stack(r["stack"]), r["seconds"])
                  for r in raw.get("rows", [])],
                 dict(raw.get("unattributed_s", {})))


def _process(raw: dict[str, Any]) -> ProcessInfo:
    gil = raw.get("gil")
    return ProcessInfo(**{**raw, "gil": ProcessGilFigures(**{**gil, "method": Method(
        gil["method"])}) if gil else None})


def _phase(raw: dict[str, Any]) -> ConcurrencyPhase:
    return ConcurrencyPhase(**{**raw, "kind": PhaseKind(raw["kind"])})


def _task(raw: dict[str, Any]) -> Task:
    return Task(**{**raw, "kind": TaskKind(raw["kind"]), "outcome": TaskOutcome(raw["outcome"]),
                   "steps": [(float(a), float(b)) for a, b in raw.get("steps", [])]})


def _loop(raw: dict[str, Any]) -> LoopStats:
    return LoopStats(**{**raw, "blocked": [BlockedStep(**{**b, "stack": _stack(b["stack"])})
                                           for b in raw.get("blocked", [])],
                        "busy": Series(**raw["busy"]) if raw.get("busy") else None})


def _lock_stats(raw: dict[str, Any]) -> LockStats:
    return LockStats(**{**raw, "waiters": [LockWaiter(**w) for w in raw.get("waiters", [])],
                        "handoffs": [LockHandoff(**h) for h in raw.get("handoffs", [])]})


def _deadlock_step(raw: dict[str, Any]) -> DeadlockStep:
    return DeadlockStep(**{**raw, "holds": [LockRef(**h) for h in raw["holds"]],
                           "waits_for": LockRef(**raw["waits_for"])})


def _interval(raw: dict[str, Any]) -> Interval:
    detail = raw.get("detail")
    if detail is not None and raw["state"] == BLOCKED:
        raw = {**raw, "detail": BlockedDetail(BlockedCause(detail["cause"]))}
    elif detail is not None:
        kind = WaitDetail if raw["state"] in (LOCK_WAIT, SIGNAL_WAIT) else HoldDetail
        raw = {**raw, "detail": kind(**detail)}
    return Interval(**raw)


def _thread_from_dict(raw: dict[str, Any]) -> ThreadTimeline:
    raw = dict(raw)
    raw["intervals"] = [_interval(i) for i in raw.get("intervals", [])]
    raw["blocked_by"] = {BlockedCause(k): v for k, v in raw.get("blocked_by", {}).items()}
    raw["samples"] = [StackSample(**s) for s in raw.get("samples", [])]
    raw["holds"] = [_interval(i) for i in raw.get("holds", [])]
    if raw.get("gil_sampled") is not None:
        raw["gil_sampled"] = SampledGilFigures(**raw["gil_sampled"])
    if raw.get("end_reason") is not None:
        raw["end_reason"] = EndReason(raw["end_reason"])
    return ThreadTimeline(**raw)
