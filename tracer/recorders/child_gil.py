"""The GIL sampler's view of the target's child processes: each has its own GIL, found from
outside, and its own threads, sampled on the sampler's ticks.

A multiprocessing pool, a ProcessPoolExecutor or a ``subprocess`` running Python is a process
with its own GIL at its own address (a spawned interpreter) or at the target's address in its
own memory (a fork). Either way the GIL is found from outside as ``tracer attach`` finds it
(:func:`tracer.gil_locate.find_interpreter`), which takes 10-45 ms here: too long for a 1 ms
tick at real-time priority, so a locator thread does it and hands the sampler a ready
:class:`ChildProcess`. Which thread state is which thread comes from walking the child's
thread list (:class:`tracer.attached_threads.AttachedThreads`), logged to ``threads.jsonl``
under the child's pid.

Cost: each followed child is one ``process_vm_readv`` and one ``schedstat`` read per thread per
sample. With more than :data:`CHILDREN_PER_TICK` children, each tick samples that many in turn,
so a pool of 16 workers costs the controller what 2 would, at a coarser rate per child (the
samples carry their times, and the model weighs each by the time to the next one of its
process).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracer.attached_threads import AttachedThreads
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import find_interpreter, gil_layout
from tracer.procfs import descendants
from tracer.recorders.gil_reading import Classifier, GilReader, ProcessThreads

# A GIL head whose switch interval (sys.getswitchinterval(), in us) reads above this is not one
MAX_SWITCH_INTERVAL_US = 10_000_000
CHILDREN_PER_TICK = 2  # children sampled on one tick; more take turns
MAX_CHILDREN = 64  # followed at most; past it, the note says how many were not
# A spawned interpreter has no libc mapped and no GIL for its first milliseconds: retried this
# often, this far apart, before it is given up.
LOCATE_ATTEMPTS = 100
LOCATE_RETRY_S = 0.01


class ChildProcess:
    """One child's GIL and threads, sampled from the sampler's thread."""

    def __init__(self, pid: int, layout: dict[str, Any], threads: AttachedThreads | None,
                 futex_nr: int) -> None:
        self.pid = pid
        self.gil_addr = int(layout["gil_addr"])
        self.reader = GilReader(pid, self.gil_addr)
        self.classifier = Classifier(futex_nr, layout)
        self.threads = threads  # None: its thread states could not be matched to threads
        self.own = ProcessThreads(pid)
        self.refresh()

    def refresh(self) -> None:
        """Watch threads that appeared; log thread states that changed."""
        self.own.refresh()
        if self.threads is not None:
            self.threads.poll()

    def sample(self, write: Callable[[dict[str, object]], None]) -> bool:
        """One sample, written with its pid; False once the child is gone."""
        rows = self.own.rows(self.classifier.code)
        t_ns = time.monotonic_ns()
        try:
            _, holder, locked, switches = self.reader.read()
        except OSError:
            return False
        write({"t": t_ns, "p": self.pid, "h": holder, "l": locked, "n": switches, "th": rows})
        return True

    def close(self) -> None:
        self.own.close()
        if self.threads is not None:
            self.threads.close()


@dataclass
class FollowReport:
    """What the notes say about the children: how many were followed, and why others were not."""

    followed: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # pid -> why it could not be followed
    over_limit: int = 0


class ChildFollower:
    """Finds the target's descendants, locates their GILs off the sampling thread, and samples
    the ready ones a few per tick."""

    def __init__(self, root_pid: int, threads_log: str, futex_nr: int) -> None:
        self._root = root_pid
        self._log = threads_log
        self._futex_nr = futex_nr
        self._ready: list[ChildProcess] = []  # appended by the locator, read by the sampler
        self._active: list[ChildProcess] = []
        self._seen: set[int] = {root_pid}
        self._todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._locator: threading.Thread | None = None
        self._turn = 0
        self._asked = 0  # children given to the locator
        # (image, version, runtime size) -> a found layout and its GIL's offset in _PyRuntime
        self._layouts: dict[tuple[str, str, int], tuple[dict[str, Any], int]] = {}
        self.report = FollowReport()

    def discover(self) -> None:
        """New descendants go to the locator (started on the first one)."""
        for pid in descendants(self._root, exclude=os.getpid()):
            if pid in self._seen:
                continue
            self._seen.add(pid)
            if self._asked >= MAX_CHILDREN:
                self.report.over_limit += 1
                continue
            self._asked += 1
            if self._locator is None:
                self._locator = threading.Thread(target=self._locate_loop, daemon=True,
                                                 name="threadscope-child-gil")
                self._locator.start()
            self._todo.put(pid)

    def refresh(self, write: Callable[[dict[str, object]], None]) -> None:
        """Take what the locator made ready (saying where its GIL is: the model tells a fork,
        whose GIL is at the target's address, from a spawned interpreter by it); let each child
        watch its new threads."""
        while self._ready:
            child = self._ready.pop()
            write({"kind": "child", "t": time.monotonic_ns(), "pid": child.pid,
                   "gil_addr": child.gil_addr})
            self._active.append(child)
        for child in self._active:
            child.refresh()

    def tick(self, write: Callable[[dict[str, object]], None]) -> None:
        """Sample :data:`CHILDREN_PER_TICK` children, in turn; drop the ones that are gone."""
        if not self._active:
            return
        count = min(CHILDREN_PER_TICK, len(self._active))
        for _ in range(count):
            self._turn %= len(self._active)
            child = self._active[self._turn]
            if child.sample(write):
                self._turn += 1
            else:
                self._active.pop(self._turn).close()
                if not self._active:
                    return

    def stop(self) -> None:
        self._todo.put(None)
        if self._locator is not None:
            self._locator.join(timeout=2)
        for child in (*self._active, *self._ready):
            child.close()
        self._active.clear()
        self._ready.clear()

    def _locate_loop(self) -> None:
        _normal_priority()  # started by the sampling thread: it must not inherit real time
        while True:
            pid = self._todo.get()
            if pid is None:
                return
            try:
                child = self._locate(pid)
            except Exception as exc:  # a bug here must not stop the sampler; say it instead
                self.report.refused[pid] = f"{type(exc).__name__}: {exc}"
                continue
            if child is not None:
                self.report.followed += 1
                self._ready.append(child)

    def _layout(self, interpreter: Any) -> dict[str, Any]:
        """The child's GIL layout. Searching ``_PyRuntime`` for the GIL is most of a child's
        cost (7 of 10 ms here), and in every process of one build the GIL sits at the same
        offset from ``_PyRuntime``: the first search per image and version is kept, and the
        next child of that build is only checked (its GIL's head must read sanely, see
        :meth:`ChildProcess`'s first read) before it is sampled."""
        key = (interpreter.image, interpreter.version_text, interpreter.runtime_size)
        known = self._layouts.get(key)
        if known is not None:
            layout, offset = known
            return {**layout, "gil_addr": interpreter.runtime_addr + offset,
                    "pid": interpreter.pid}
        layout = gil_layout(interpreter)
        self._layouts[key] = (layout, int(layout["gil_addr"]) - interpreter.runtime_addr)
        return layout

    def _locate(self, pid: int) -> ChildProcess | None:
        reason = ""
        for _ in range(LOCATE_ATTEMPTS):
            try:
                interpreter = find_interpreter(pid)
                layout = self._layout(interpreter)
                child = ChildProcess(pid, layout, _thread_log(interpreter, self._log),
                                     self._futex_nr)
                interval, _, locked, _ = child.reader.read()
                if locked in (0, 1) and 0 < interval <= MAX_SWITCH_INTERVAL_US:
                    return child
                child.close()
                reason = f"its GIL at {layout['gil_addr']:#x} reads locked={locked}"
            except (RecorderUnavailable, OSError) as exc:
                reason = str(exc)
            if not _alive(pid):
                return None  # it ended before it could be followed: nothing to say about it
            time.sleep(LOCATE_RETRY_S)
        self.report.refused[pid] = reason
        return None


def _normal_priority() -> None:
    """Back to SCHED_OTHER: a thread inherits its creator's policy, and the locator's 10-45 ms
    searches at the sampler's real-time priority took the CPU from the very children it was
    about to follow (seen as 25 ms gaps in their samples)."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _thread_log(interpreter: Any, path: str) -> AttachedThreads | None:
    """Its thread states matched to threads, logged; None if its thread list cannot be walked
    (its GIL is still sampled, and the holder stays unnamed)."""
    threads = AttachedThreads(interpreter, path)
    try:
        threads.start()
    except RecorderUnavailable:
        return None
    return threads


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}/task")


def child_notes(report: FollowReport) -> list[str]:
    """The source's notes about the children: how many were followed, which were not and why."""
    notes = []
    if report.followed:
        notes.append(f"followed {report.followed} child process"
                     f"{'es' if report.followed != 1 else ''}, each with its own GIL found from "
                     f"outside (up to {CHILDREN_PER_TICK} sampled per tick, in turn)")
    if report.refused:
        shown = "; ".join(f"pid {pid}: {why}" for pid, why in sorted(report.refused.items())[:3])
        more = len(report.refused) - 3
        notes.append(f"{len(report.refused)} child process"
                     f"{'es' if len(report.refused) != 1 else ''} not followed ({shown}"
                     f"{f'; {more} more' if more > 0 else ''})")
    if report.over_limit:
        notes.append(f"{report.over_limit} more child processes not followed: past "
                     f"{MAX_CHILDREN}")
    return notes
