"""Pool work items and asyncio tasks, from ``raw/tasks.bin`` (written by
:mod:`tracer.instrument.tasks`) to the model's ``tasks``, ``pools`` and ``loops``.

Pure functions of the recorded events: queue wait is submit to start, a pool's queue depth is
a step function of submits and starts, a loop's blocked steps are the steps that ran at least
the slow-step threshold. Naming a blocked step's code needs the stack timelines of
:mod:`tracer.model.stacks` and happens in :func:`name_blocked_steps`.
"""

from __future__ import annotations

import heapq
import marshal
import math
import os
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer.errors import CorruptRecording
from tracer.model.schema import (
    BlockedStep,
    Frame,
    LoopStats,
    PoolStats,
    Series,
    Stack,
    Task,
    TaskKind,
    TaskOutcome,
)
from tracer.model.stacks import UNKNOWN, StackTimeline, StackTrie, short_file

# tracer.instrument.tasks.CHUNK, RECORD, REC_* (not imported: that module runs in the target)
CHUNK = struct.Struct("<I")
RECORD = struct.Struct("=10q")
REC_ITEM, REC_STEP = 1, 2
DEFAULT_SLOW_STEP_S = 0.1  # asyncio debug mode's slow_callback_duration
BUSY_BINS = 200  # bins of a loop's busy-share curve over the run


@dataclass
class TaskModel:
    tasks: list[Task] = field(default_factory=list)
    pools: list[PoolStats] = field(default_factory=list)
    loops: list[LoopStats] = field(default_factory=list)
    hook_events: int = 0  # events read
    # Why the target's hooks were Python rather than C ("" when C, or not said: before v2).
    python_hooks: str = ""
    # The user's source files among the recorded functions' (by full path and by name: stack
    # sources name a user's file either way), which tell the user's frames from the library's.
    user_files: set[str] = field(default_factory=set)


def read_task_events(path: Path) -> list[tuple[Any, ...]]:
    """Every event of the file, in the order written; a chunk cut short by a crash ends it."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptRecording(f"cannot read {path}: {exc}") from exc
    return list(_chunks(data, path))


def _chunks(data: bytes, path: Path) -> Iterator[tuple[Any, ...]]:
    at = 0
    while at + CHUNK.size <= len(data):
        (size,) = CHUNK.unpack_from(data, at)
        body = data[at + CHUNK.size: at + CHUNK.size + size]
        if len(body) < size:
            return  # the last write was cut short
        try:
            events = marshal.loads(body)
        except (ValueError, EOFError, TypeError) as exc:
            raise CorruptRecording(f"{path}: a chunk at byte {at} is not readable ({exc})") \
                from exc
        records = b""
        if isinstance(events, tuple) and len(events) in (2, 3) and isinstance(events[0], int):
            # whose chunk: a forked child's interleave with the parent's
            pid, events, records = events if len(events) == 3 else (*events, b"")
            yield ("start", 0, pid, 0, "")
        for event in events:
            if isinstance(event, tuple) and event:
                yield event
        if isinstance(records, bytes):  # after the events: they declare what records refer to
            yield from _records(records[:len(records) - len(records) % RECORD.size])
        at += CHUNK.size + size


def _records(data: bytes) -> Iterator[tuple[Any, ...]]:
    """The C hooks' records as the events tracer.instrument.tasks writes for the same."""
    for kind, *v in RECORD.iter_unpack(data):
        if kind == REC_ITEM:
            yield ("item", tuple(v[:6]), v[6], v[7], v[8])
        elif kind == REC_STEP:
            yield ("step", v[0], v[1], v[2], v[3], v[4])


@dataclass
class _Pool:
    number: int
    pid: int
    kind: TaskKind
    name: str
    max_workers: int | None
    start_method: str | None = None


@dataclass
class _Loop:
    number: int
    pid: int
    tid: int
    steps: list[tuple[int, int, int, int]] = field(default_factory=list)  # task, start, end, fn


@dataclass
class _AsyncTask:
    number: int
    pid: int
    loop: int
    name: str
    fn: int
    created: int
    parent: int
    done: int | None = None
    outcome: str = "unfinished"
    error: str | None = None
    steps: list[tuple[int, int]] = field(default_factory=list)


def build_tasks(events: list[tuple[Any, ...]], t0_ns: int, end_ns: int,
                slow_step_s: float = DEFAULT_SLOW_STEP_S) -> TaskModel:
    """Tasks, pools and loops from the recorded events (every process's: a forked child
    writes its own, numbered by its pid)."""
    functions: dict[tuple[int, int], tuple[str, str]] = {}
    pools: dict[tuple[int, int], _Pool] = {}
    loops: dict[tuple[int, int], _Loop] = {}
    async_tasks: dict[tuple[int, int], _AsyncTask] = {}
    items: list[tuple[Any, ...]] = []
    runs: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # in forked pool workers
    pid = 0
    python_hooks = ""
    for event in events:
        tag = event[0]
        if tag == "start":
            pid = int(event[2])
            if len(event) > 5 and event[5] != "c":
                python_hooks = str(event[5])
            elif len(event) == 5 and event[1]:  # format 1 (a chunk's own start says 0)
                python_hooks = "a recording made before the C hooks existed"
        elif tag == "fn":
            functions[(pid, event[1])] = (str(event[2]), str(event[3]))
        elif tag == "pool":
            pools[(event[2], event[1])] = _Pool(
                event[1], event[2], TaskKind(event[3]), str(event[4]), event[5],
                str(event[7]) if len(event) > 7 and event[7] else None)
        elif tag == "item":
            items.append(_item_row(pid, event))
        elif tag == "run":  # (run, submitter's pid, item, start, end, tid), by the worker
            runs[(int(event[1]), int(event[2]))] = (pid, event[3], event[4], event[5])
        elif tag == "loop":
            loops[(event[2], event[1])] = _Loop(event[1], event[2], event[3])
        elif tag == "task":
            async_tasks[(event[2], event[1])] = _AsyncTask(
                event[1], event[2], event[3], str(event[4]), event[5], event[6], event[7])
        elif tag == "step":
            loop = loops.get((pid, event[1]))
            if loop is not None:
                loop.steps.append((event[2], event[3], event[4], event[5]))
                known = async_tasks.get((pid, event[2])) if event[2] else None
                if known is not None:
                    known.steps.append((event[3], event[4]))
        elif tag == "done":
            known = async_tasks.get((pid, event[1]))
            if known is not None:
                known.done, known.outcome, known.error = event[2], str(event[3]), event[4]
                if len(event) > 5 and event[5]:
                    known.name = str(event[5])  # a name given after creation
    # A chunk holds its Python-written events before the C records of the same moments.
    for loop in loops.values():
        loop.steps.sort(key=lambda step: step[1])
    for known in async_tasks.values():
        known.steps.sort()
    model = TaskModel(hook_events=len(events), user_files=_user_files(functions.values()),
                      python_hooks=python_hooks)
    sec = _seconds(t0_ns)
    pool_tasks = _pool_tasks(items, pools, functions, runs, sec)
    loop_tasks = _asyncio_tasks(async_tasks, loops, functions, sec)
    model.tasks = sorted(pool_tasks + loop_tasks, key=lambda t: (t.submit_s, t.pid, t.id))
    model.pools = [_pool_stats(pool, [t for t in pool_tasks if t.pool == pool.name
                                      and t.pid == pool.pid], (end_ns - t0_ns) / 1e9)
                   for pool in pools.values()]
    model.loops = [_loop_stats(loop, async_tasks, functions, sec, slow_step_s,
                               (end_ns - t0_ns) / 1e9)
                   for loop in loops.values() if loop.steps]
    return model


def _user_files(functions: Iterable[tuple[str, str]]) -> set[str]:
    files: set[str] = set()
    for _, site in functions:
        path = site.rpartition(":")[0]
        if path and short_file(path) == path and not path.startswith("<"):
            files.update((path, os.path.basename(path)))
    return files


def _item_row(pid: int, event: tuple[Any, ...]) -> tuple[Any, ...]:
    """(pid, item, pid, pool, fn, submit, submitter, start, end, tid, outcome, error, task)
    from an ITEM event (tracer.instrument.tasks says its shape)."""
    (item, pool, fn, submitted, submitter, task), start, end, tid = event[1:5]
    outcome, error = (event[5], event[6]) if len(event) > 5 else ("ok", None)
    return (pid, item, pid, pool, fn, submitted, submitter, start, end, tid, outcome, error, task)


def _seconds(t0_ns: int) -> Any:
    def sec(t: int | None) -> float | None:
        return None if t is None else round((t - t0_ns) / 1e9, 6)
    return sec


def _pool_tasks(items: list[tuple[Any, ...]], pools: Mapping[tuple[int, int], _Pool],
                functions: Mapping[tuple[int, int], tuple[str, str]],
                runs: Mapping[tuple[int, int], tuple[int, int, int, int]],
                sec: Any) -> list[Task]:
    """One task per work item; an item written twice (never: but a fork's copy could) once.
    A process-pool item's start, end and worker are its run in the worker, when one was
    recorded; its end is otherwise when the parent saw it done."""
    seen: set[tuple[int, int]] = set()
    out: list[Task] = []
    per_pool: dict[tuple[int, int], int] = defaultdict(int)
    for (_, number, pid, pool_no, fn, submitted, submitter, start, end, tid, outcome, error,
         task) in sorted(items, key=lambda i: (i[2], i[5])):
        if (pid, number) in seen:
            continue
        seen.add((pid, number))
        pool = pools.get((pid, pool_no))
        function, site = functions.get((pid, fn), ("?", ""))
        per_pool[(pid, pool_no)] += 1
        worker = pid if tid is not None else None
        run = runs.get((pid, number))
        if run is not None:
            worker, start, end, tid = run
        submit_s, start_s, end_s = sec(submitted), sec(start), sec(end)
        wait = round(start_s - submit_s, 6) if start_s is not None else None
        run = round(end_s - start_s, 6) if start_s is not None and end_s is not None else None
        out.append(Task(
            id=number, kind=pool.kind if pool else TaskKind.THREAD_POOL,
            pool=pool.name if pool else "?", name=f"{function} #{per_pool[(pid, pool_no)]}",
            function=function, site=site, submit_s=submit_s, start_s=start_s, end_s=end_s,
            tid=tid, pid=pid, queue_wait_s=wait, run_s=run, outcome=TaskOutcome(outcome),
            error=error, submit_tid=submitter, parent=task or None, worker_pid=worker))
    return out


def count_ahead(tasks: list[Task]) -> None:
    """Set each task's ``ahead``: the tasks of its pool submitted before it that had not ended
    by its submit (a cancelled one that never started takes no worker)."""
    ends: list[float] = []
    for task in sorted(tasks, key=lambda t: (t.submit_s, t.id)):
        while ends and ends[0] <= task.submit_s:
            heapq.heappop(ends)
        task.ahead = len(ends)
        if task.start_s is not None or task.outcome is not TaskOutcome.CANCELLED:
            heapq.heappush(ends, task.end_s if task.end_s is not None else math.inf)


def waited_for_worker(task: Task, max_workers: int | None) -> bool:
    """It started, and when it was submitted every worker had a task: it waited for one to
    finish (a wait for a new worker thread to start does not count)."""
    return (task.start_s is not None and task.ahead is not None and max_workers is not None
            and task.ahead >= max_workers)


def queue_depth(tasks: list[Task], end_s: float) -> tuple[list[float], list[int]]:
    """The pool's queue depth as a step function: +1 at each submit, -1 when the item leaves
    the queue (its start; when no start was seen, a cancelled item or a process pool's with
    unrecorded workers, its end)."""
    changes: list[tuple[float, int]] = []
    for task in tasks:
        changes.append((task.submit_s, 1))
        left = task.start_s if task.start_s is not None else task.end_s
        if left is not None:
            changes.append((left, -1))
    changes.sort(key=lambda c: (c[0], c[1]))  # a start at the instant of a submit goes first
    times: list[float] = []
    depths: list[int] = []
    depth = 0
    for t, step in changes:
        depth += step
        if times and times[-1] == t:
            depths[-1] = depth
        else:
            times.append(t)
            depths.append(depth)
    if times and times[-1] < end_s:
        times.append(end_s)
        depths.append(depth)
    return times, depths


def _time_mean(times: list[float], values: list[int], start: float, end: float) -> float:
    if end <= start or not times:
        return 0.0
    total = 0.0
    for i, value in enumerate(values):
        a = max(times[i], start)
        b = min(times[i + 1] if i + 1 < len(times) else end, end)
        if b > a:
            total += value * (b - a)
    return total / (end - start)


def _pool_stats(pool: _Pool, tasks: list[Task], wall_s: float) -> PoolStats:
    count_ahead(tasks)
    first = min((t.submit_s for t in tasks), default=0.0)
    # The last end; a task still running at the end keeps the pool active to the end (a
    # cancelled one that never left the queue does not).
    last = max((t.end_s for t in tasks if t.end_s is not None), default=first)
    if any(t.outcome is TaskOutcome.UNFINISHED for t in tasks):
        last = wall_s
    times, depths = queue_depth(tasks, last)
    busy = sum((t.end_s if t.end_s is not None else wall_s) - t.start_s
               for t in tasks if t.start_s is not None)
    span = last - first
    waits = [t.queue_wait_s for t in tasks if t.queue_wait_s is not None]
    workers = len({(t.worker_pid, t.tid) for t in tasks
                   if t.tid is not None and t.start_s is not None})
    # Only an item that returned surely started (a cancelled one may not have; when a process
    # pool breaks, every item not yet run raises).
    starts_seen = all(t.start_s is not None for t in tasks if t.outcome is TaskOutcome.OK)
    return PoolStats(
        name=pool.name, kind=pool.kind, pid=pool.pid, max_workers=pool.max_workers,
        workers_started=workers, tasks=len(tasks),
        errors=sum(t.outcome is TaskOutcome.ERROR for t in tasks),
        cancelled=sum(t.outcome is TaskOutcome.CANCELLED for t in tasks),
        unfinished=sum(t.outcome is TaskOutcome.UNFINISHED for t in tasks),
        waited=sum(waited_for_worker(t, pool.max_workers) for t in tasks),
        max_queue_wait_s=max(waits) if waits else None,
        peak_queue_depth=max(depths, default=0),
        mean_queue_depth=round(_time_mean(times, depths, first, last), 4),
        utilisation=round(busy / (pool.max_workers * span), 4)
        if pool.max_workers and span > 0 and starts_seen else None,
        active_s=round(span, 6), starts_seen=starts_seen, start_method=pool.start_method,
        depth_t=times, depth=depths)


def _asyncio_tasks(async_tasks: Mapping[tuple[int, int], _AsyncTask],
                   loops: Mapping[tuple[int, int], _Loop],
                   functions: Mapping[tuple[int, int], tuple[str, str]], sec: Any) -> list[Task]:
    out = []
    for (pid, _), task in async_tasks.items():
        loop = loops.get((pid, task.loop))
        function, site = functions.get((pid, task.fn), ("?", ""))
        steps = [(sec(a), sec(b)) for a, b in task.steps]
        first = steps[0][0] if steps else None
        submit_s = sec(task.created)
        out.append(Task(
            id=task.number, kind=TaskKind.ASYNCIO, pool=f"loop-{task.loop}", name=task.name,
            function=function, site=site, submit_s=submit_s, start_s=first,
            end_s=sec(task.done), tid=loop.tid if loop else None, pid=pid,
            queue_wait_s=round(first - submit_s, 6) if first is not None else None,
            run_s=round(sum(b - a for a, b in steps), 6) if steps else None,
            outcome=TaskOutcome(task.outcome), error=task.error, submit_tid=None,
            parent=task.parent or None, steps=steps))
    return out


def _loop_stats(loop: _Loop, async_tasks: Mapping[tuple[int, int], _AsyncTask],
                functions: Mapping[tuple[int, int], tuple[str, str]], sec: Any,
                slow_step_s: float, wall_s: float) -> LoopStats:
    start = sec(min(s[1] for s in loop.steps))
    end = sec(max(s[2] for s in loop.steps))
    busy_ns = sum(s[2] - s[1] for s in loop.steps)
    blocked = []
    threshold_ns = slow_step_s * 1e9
    for task_no, a, b, fn in loop.steps:
        if b - a < threshold_ns:
            continue
        task = async_tasks.get((loop.pid, task_no)) if task_no else None
        coroutine, site = functions.get((loop.pid, task.fn if task else fn), ("?", ""))
        blocked.append(BlockedStep(start_s=sec(a), end_s=sec(b),
                                   task=task.name if task else None, coroutine=coroutine,
                                   function=coroutine, site=site))
    return LoopStats(id=loop.number, pid=loop.pid, tid=loop.tid, start_s=start, end_s=end,
                     busy_s=round(busy_ns / 1e9, 6), steps=len(loop.steps),
                     tasks=sum(1 for (pid, _), t in async_tasks.items()
                               if pid == loop.pid and t.loop == loop.number),
                     slow_step_s=slow_step_s, blocked=blocked,
                     busy=_busy_series(loop, sec, wall_s))


def _busy_series(loop: _Loop, sec: Any, wall_s: float) -> Series:
    """The share of each bin the loop spent running callbacks."""
    bin_s = max(wall_s / BUSY_BINS, 0.001)
    bins = [0.0] * (int(wall_s / bin_s) + 1)
    for _, a, b, _ in loop.steps:
        start, end = sec(a), sec(b)
        i = max(int(start / bin_s), 0)
        while start < end and i < len(bins):
            upto = min(end, (i + 1) * bin_s)
            bins[i] += upto - start
            start = upto
            i += 1
    return Series(bin_s=round(bin_s, 6), t=[round(i * bin_s, 6) for i in range(len(bins))],
                  values=[round(min(v / bin_s, 1.0), 4) for v in bins])


def name_blocked_steps(loops: list[LoopStats], timelines: Mapping[tuple[int, int], StackTimeline],
                       trie: StackTrie, user_files: set[str]) -> None:
    """Give each blocked step the stack that ran longest during it on the loop's thread, and
    name its innermost frame in the user's files (a stack source's frames, when one saw the
    thread)."""
    for loop in loops:
        timeline = timelines.get((loop.pid, loop.tid))
        if timeline is None:
            continue
        for step in loop.blocked:
            seconds: dict[int, float] = defaultdict(float)
            for a, b, stack in timeline.pieces(step.start_s, step.end_s):
                if stack != UNKNOWN:
                    seconds[stack] += b - a
            if not seconds:
                continue
            longest = trie.stack(max(seconds, key=lambda s: seconds[s]))
            if not longest:
                continue
            step.stack = longest
            frame = _innermost_user_frame(_below(longest, step.coroutine), user_files)
            step.function, step.site = frame.function, f"{frame.file}:{frame.line}"


def _below(stack: Stack, coroutine: str) -> Stack:
    """The part of the stack the step ran: from its coroutine's (or callback's) frame on, when
    the stack has it; the frames above are the loop's and whatever started it."""
    for index in range(len(stack) - 1, -1, -1):
        if stack[index].function == coroutine:
            return stack[index:]
    return stack


def _innermost_user_frame(stack: Stack, user_files: set[str]) -> Frame:
    """The user's code, not the library it called; the innermost frame when no frame is in a
    file of the user's."""
    for frame in reversed(stack):
        if frame.file in user_files:
            return frame
    return stack[-1]
