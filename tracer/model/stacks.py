"""Which Python stack each thread was running at each moment, as a step function.

Two sources give it: py-spy's samples (each sample's stack holds until the thread's next sample:
the continuous sampler records a sample when the stack changes) and VizTracer's function slices
(exact: the stack at any instant is the slices that contain it). Both become a
:class:`StackTimeline`, which :mod:`tracer.model.where` intersects with the thread states.

A long trace has millions of calls, so stacks are numbers in a :class:`StackTrie` (a stack is
its caller's stack plus one frame): the sweeps and the sums work on integers, and a stack
becomes a tuple of frames only once, when the model is written.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tracer.model.schema import ON_CPU, RUNNING, Frame, Interval, Stack, StackSample

UNKNOWN = -1  # no stack known at that moment (before a thread's first sample or call)
EMPTY = 0  # a known stack with no Python frames

# "name (file:line)": py-spy's and VizTracer's way of naming a Python frame. A function's name
# holds no " (" (identifiers, "<lambda>", "f.<locals>.g"); a file's name may.
_LABEL = re.compile(r"^(?P<name>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
# Frames above the user's own code: the interpreter running a script or module for us. py-spy
# names runpy "<frozen runpy>" on 3.11+, "runpy.py" before; threadscope's own frames are dropped
# by the recorders already, and again here for older recordings.
_LAUNCHER_FILES = ("<frozen runpy>", "runpy.py", "tracer/bootstrap.py", "tracer/inprocess.py")
_OWN_CODE = str(Path(__file__).resolve().parents[1]) + "/"  # threadscope's package
# The standard library and installed packages, as py-spy shortens them: from the package on.
_LIBRARY = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python3\.\d+t?)/")


def parse_frame(label: str) -> Frame:
    """A frame from its label; a label without a location keeps the whole text as its name."""
    match = _LABEL.match(label)
    if match is None:
        return Frame(label, "", 0)
    line = match.group("line")
    return Frame(match.group("name"), match.group("file"), int(line) if line else 0)


def short_file(path: str) -> str:
    """A library file from its package on ("threading.py", "requests/api.py"); the user's own
    files stay as they were recorded."""
    return _LIBRARY.sub("", path, count=1)


def user_stack(frames_innermost_first: Sequence[str]) -> Stack:
    """The stack outermost first, starting at the user's code: launcher frames on top go."""
    stack = [parse_frame(label) for label in reversed(frames_innermost_first)]
    start = 0
    while start < len(stack) and stack[start].file.endswith(_LAUNCHER_FILES):
        start += 1
    return tuple(stack[start:])


class StackTrie:
    """Stacks as numbers: ``EMPTY`` is the stack with no frames, and every other stack is its
    caller's stack plus one frame."""

    def __init__(self) -> None:
        self._parent: list[int] = [UNKNOWN]
        self._frame: list[int] = [UNKNOWN]
        self._children: dict[tuple[int, int], int] = {}
        self._frames: list[Frame] = []
        self._frame_ids: dict[Frame, int] = {}
        self._stacks: dict[int, Stack] = {EMPTY: ()}

    def frame_id(self, frame: Frame) -> int:
        found = self._frame_ids.get(frame)
        if found is None:
            found = self._frame_ids[frame] = len(self._frames)
            self._frames.append(frame)
        return found

    def child(self, stack: int, frame: int) -> int:
        """The stack ``stack`` calling into ``frame``."""
        key = (stack, frame)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = len(self._parent)
            self._parent.append(stack)
            self._frame.append(frame)
        return found

    def parent(self, stack: int) -> int:
        return self._parent[stack]

    def intern(self, stack: Stack) -> int:
        found = EMPTY
        for frame in stack:
            found = self.child(found, self.frame_id(frame))
        return found

    def stack(self, stack: int) -> Stack:
        """The frames of ``stack``, outermost first."""
        found = self._stacks.get(stack)
        if found is None:
            found = (*self.stack(self._parent[stack]), self._frames[self._frame[stack]])
            self._stacks[stack] = found
        return found


@dataclass
class StackTimeline:
    """``stacks[i]`` (a :class:`StackTrie` number) is the thread's stack from ``times[i]`` until
    ``times[i + 1]`` (the last one until the thread ends). Before ``times[0]`` it is unknown."""

    times: list[float] = field(default_factory=list)
    stacks: list[int] = field(default_factory=list)

    def pieces(self, start: float, end: float) -> Iterator[tuple[float, float, int]]:
        """[start, end) cut where the stack changes, with the stack of each piece."""
        if end <= start:
            return
        times, stacks = self.times, self.stacks
        index = bisect_right(times, start) - 1
        at = start
        while at < end:
            following = times[index + 1] if index + 1 < len(times) else end
            upto = following if following < end else end
            if upto > at:
                yield at, upto, stacks[index] if index >= 0 else UNKNOWN
            at = upto
            index += 1

    def step(self, at: float, stack: int) -> None:
        """The stack is ``stack`` from ``at`` on (the last of several changes at one instant
        wins, and a change to the stack already running is none)."""
        times, stacks = self.times, self.stacks
        if times and times[-1] == at:
            stacks[-1] = stack
            if len(stacks) > 1 and stacks[-2] == stack:
                times.pop()
                stacks.pop()
        elif not stacks or stacks[-1] != stack:
            times.append(at)
            stacks.append(stack)


def sampled_timeline(samples: Sequence[StackSample], stacks: Sequence[Sequence[str]],
                     trie: StackTrie, cache: dict[int, int]) -> StackTimeline:
    """py-spy's samples of one thread as a step function (``cache`` maps each of the model's
    stack numbers to the trie's once per run)."""
    timeline = StackTimeline()
    for sample in sorted(samples, key=lambda s: s.t):
        stack = cache.get(sample.stack)
        if stack is None:
            frames = stacks[sample.stack] if 0 <= sample.stack < len(stacks) else ()
            stack = cache[sample.stack] = trie.intern(user_stack(frames))
        timeline.step(sample.t, stack)
    return timeline


# States in which a thread runs Python, so its stack can change: holding the GIL, or on a CPU
# when the GIL is not known. Waiting (for the GIL, a lock, I/O), sleeping and native code under
# a frame leave the stack as it was.
CAN_CHANGE_STACK = frozenset({RUNNING, ON_CPU})


# py-spy stamps a sample when it has read it, and falls behind now and then: a change is first
# seen up to about two periods after it happened (measured on alternating code).
SEEN_WITHIN_PERIODS = 2.0
# Stretches of one kind closer than this are one stretch (the states split at every GIL event).
STRETCH_GAP_S = 1e-3


def snap_to_states(timeline: StackTimeline, intervals: Sequence[Interval],
                   period_s: float) -> StackTimeline:
    """Move each stack change py-spy saw to where the thread's states say it happened.

    py-spy sees a change at a sample after it, up to a couple of periods late. A thread changes
    its stack only while it runs Python: a change first seen while it waited or ran native code
    happened before that stretch began, and one first seen in a stretch of running that began
    within that delay most likely happened as the stretch began (a call returning, a wait
    ending). Without this, code that alternates every few periods (a hash, then a loop) is
    attributed in good part to the wrong function."""
    if len(timeline.times) < 2 or not intervals:
        return timeline
    stretches = _stretches(intervals)
    starts = [start for start, _, _ in stretches]
    late = SEEN_WITHIN_PERIODS * period_s
    snapped = StackTimeline([timeline.times[0]], [timeline.stacks[0]])
    for at, stack in zip(timeline.times[1:], timeline.stacks[1:]):
        index = bisect_right(starts, at) - 1
        moved = at
        if index >= 0 and stretches[index][1] > at:
            start, _, can_change = stretches[index]
            if not can_change or start >= at - late:
                moved = start
        moved = max(moved, snapped.times[-1])
        if moved == snapped.times[-1] and len(snapped.times) > 1:
            snapped.stacks[-1] = stack  # two changes in one stretch: the later one stands
        else:
            snapped.step(moved, stack)
    return snapped


def _stretches(intervals: Sequence[Interval]) -> list[tuple[float, float, bool]]:
    """The thread's life as stretches in which its stack can change or cannot (start, end,
    can change), neighbours of one kind merged."""
    out: list[tuple[float, float, bool]] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        can_change = interval.state in CAN_CHANGE_STACK
        if out and out[-1][2] == can_change and interval.start - out[-1][1] <= STRETCH_GAP_S:
            out[-1] = (out[-1][0], max(out[-1][1], interval.end), can_change)
        else:
            out.append((interval.start, interval.end, can_change))
    return out


@dataclass(frozen=True)
class Slice:
    """One Python call VizTracer recorded: from ``start`` to ``end`` (seconds from t0)."""

    start: float
    end: float
    frame: Frame


def sliced_timeline(slices: Sequence[Slice], trie: StackTrie) -> StackTimeline:
    """Calls of one thread (tests and small traces; :func:`viztracer_timelines` is the fast
    path) as a step function."""
    return _sweep([(s.start, -s.end, trie.frame_id(s.frame)) for s in slices if s.end > s.start],
                  trie)


def _sweep(calls: list[tuple[float, float, int]], trie: StackTrie) -> StackTimeline:
    """Calls given as (start, -end, frame id) as a step function: at each instant, the calls
    that contain it, outermost first. A call that outlives its caller (clock jitter of a
    microsecond) is cut at the caller's end. One sort and one sweep."""
    calls.sort()
    timeline = StackTimeline()
    ends: list[float] = []  # of the open calls, innermost last
    stack = EMPTY
    for start, negative_end, frame in calls:
        while ends and ends[-1] <= start:
            stack = trie.parent(stack)
            timeline.step(ends.pop(), stack)
        ends.append(min(-negative_end, ends[-1]) if ends else -negative_end)
        stack = trie.child(stack, frame)
        timeline.step(start, stack)
    while ends:
        stack = trie.parent(stack)
        at = ends.pop()
        if at != math.inf:  # a call never ended runs to the end of the thread
            timeline.step(at, stack)
    return timeline


def viztracer_timelines(chunks: Iterable[bytes], pid: int,
                        trie: StackTrie) -> dict[tuple[int, int], StackTimeline]:
    """Per (pid, tid), the Python stacks VizTracer's calls give (C calls are not frames, as in
    py-spy's stacks; threadscope's own calls and the launcher's are left out). Calls still
    running when VizTracer saved its trace (a run stopped by --timeout) come as a begin without
    an end: they run to the end of the thread."""
    frame_ids: dict[str, int] = {}
    per_thread: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    begun: dict[int, list[tuple[float, int]]] = defaultdict(list)  # per tid, open "B" calls

    def frame_of(name: str) -> int:
        frame = frame_ids.get(name)
        if frame is None:
            parsed = _viztracer_frame(name)
            frame = frame_ids[name] = UNKNOWN if parsed is None else trie.frame_id(parsed)
        return frame

    for chunk in chunks:
        for event in orjson.loads(chunk):
            phase = event.get("ph")
            if phase == "X":
                dur = event.get("dur")
                if dur is None or dur <= 0:
                    continue
                frame = frame_of(event.get("name", ""))
                if frame != UNKNOWN:
                    start = event["ts"] / 1e6
                    per_thread[int(event.get("tid", 0))].append(
                        (start, -(start + dur / 1e6), frame))
            elif phase == "B":
                begun[int(event.get("tid", 0))].append((event["ts"] / 1e6,
                                                         frame_of(event.get("name", ""))))
            elif phase == "E" and begun[int(event.get("tid", 0))]:
                start, frame = begun[int(event.get("tid", 0))].pop()
                if frame != UNKNOWN:
                    per_thread[int(event.get("tid", 0))].append(
                        (start, -event["ts"] / 1e6, frame))
    for tid, calls in begun.items():
        per_thread[tid].extend((start, -math.inf, frame) for start, frame in calls
                               if frame != UNKNOWN)
    return {(pid, tid): _sweep(calls, trie) for tid, calls in per_thread.items()}


def _viztracer_frame(name: str) -> Frame | None:
    """VizTracer names a Python call "qualname (file:line)" and a C call "module.name"."""
    if not (name.endswith(")") and " (" in name):
        return None
    frame = parse_frame(name)
    if frame.file.startswith(_OWN_CODE) or frame.file.endswith(_LAUNCHER_FILES):
        return None
    return Frame(frame.function, short_file(frame.file), frame.line)
