"""The run's stacks for the flame-graph tools people already use: folded stacks (flamegraph.pl,
inferno, speedscope's import) and speedscope's own JSON file.

Both are pure functions of a :class:`RunModel`'s ``where`` rows, the seconds each thread spent
in each state while running each stack; nothing here reads raw files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tracer import __version__
from tracer.errors import ThreadscopeError
from tracer.model.schema import STATES, Frame, RunModel, ThreadTimeline, WhereRow

ALL_STATES = "all"
STATE_CHOICES = (*STATES, ALL_STATES)
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
US = 1_000_000  # collapsed weights are whole microseconds: flamegraph.pl wants integers
NO_FRAMES = "(no Python frames)"  # a row whose stack is empty (e.g. a thread in C code only)


class NoStacks(ThreadscopeError):
    """The run recorded no stacks (or none for the chosen state and threads)."""

    exit_code = 1


class UnknownState(ThreadscopeError):
    """``--state`` is not a state of the model."""


class UnknownThread(ThreadscopeError):
    """``--thread`` names no thread of the run."""


@dataclass(frozen=True)
class Selection:
    """Which rows to export: one state (or all of them) and some threads (None: all)."""

    state: str = ALL_STATES
    tids: frozenset[int] | None = None


def select_threads(model: RunModel, wanted: str | None) -> frozenset[int] | None:
    """The tids a ``--thread`` value means: every thread of that name (names repeat, e.g. a
    pool's), or the thread of that tid. None: all threads."""
    if wanted is None:
        return None
    tids = {t.tid for t in model.threads if t.name == wanted}
    if wanted.isdigit() and any(t.tid == int(wanted) for t in model.threads):
        tids.add(int(wanted))
    if not tids:
        names = ", ".join(sorted({t.name for t in model.threads})) or "none"
        raise UnknownThread(f"no thread named {wanted!r} (nor of that tid); threads: {names}")
    return frozenset(tids)


def selected_rows(model: RunModel, selection: Selection) -> list[WhereRow]:
    """The ``where`` rows the selection keeps, in thread order; NoStacks when there are none."""
    if selection.state not in STATE_CHOICES:
        raise UnknownState(f"unknown state {selection.state!r}; one of: "
                           + ", ".join(STATE_CHOICES))
    if model.where is None or not model.where.rows:
        raise NoStacks("this run recorded no stacks (model.json has no `where` rows): record it "
                       "with VizTracer or py-spy to export stacks")
    rows = [row for row in model.where.rows
            if (selection.state == ALL_STATES or row.state == selection.state)
            and (selection.tids is None or row.tid in selection.tids) and row.seconds > 0]
    if not rows:
        raise NoStacks(f"no stacks recorded in state {selection.state!r} for these threads")
    order = {tid: index for index, tid in enumerate(_thread_order(model.threads))}
    rows.sort(key=lambda row: (order.get(row.tid, len(order)), row.tid))
    return rows


def _thread_order(threads: Sequence[ThreadTimeline]) -> list[int]:
    """The main thread first, then by start time."""
    ordered = sorted(threads, key=lambda t: (not t.is_main, t.start_s or 0.0, t.tid))
    return [t.tid for t in ordered]


def thread_title(model: RunModel, tid: int) -> str:
    """``name (tid N)``: the tid keeps apart threads that share a name."""
    name = next((t.name for t in model.threads if t.tid == tid), None)
    return f"{name} (tid {tid})" if name else f"tid {tid}"


# ---------------------------------------------------------------------------------------------
# Collapsed (folded) stacks

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def folded_frame(text: str) -> str:
    """One frame's text made safe for a folded line: a line break becomes the two characters
    ``\\n``, ``;`` (the frame separator) becomes ``:``, other control characters become spaces,
    and spaces at either end go (the weight is what follows the line's last space)."""
    text = _LINE_BREAKS.sub(r"\\n", text).replace(";", ":")
    return _CONTROL.sub(" ", text).strip() or "?"


def _frame_text(frame: Frame) -> str:
    return folded_frame(frame.label)


def collapsed_lines(model: RunModel, selection: Selection) -> list[str]:
    """``frame;frame;... weight`` per distinct stack, outermost frame first, weight in whole
    microseconds (stacks that round to 0 µs are left out). With more than one thread exported,
    each stack starts with its thread (``name (tid N)``), as py-spy's ``--threads`` does."""
    rows = selected_rows(model, selection)
    rooted = len({row.tid for row in rows}) > 1
    seconds: dict[str, float] = {}
    for row in rows:
        frames = [_frame_text(frame) for frame in row.stack] or [NO_FRAMES]
        if rooted:
            frames.insert(0, folded_frame(thread_title(model, row.tid)))
        key = ";".join(frames)
        seconds[key] = seconds.get(key, 0.0) + row.seconds
    lines = []
    for stack, total in seconds.items():
        weight = round(total * US)
        if weight > 0:
            lines.append(f"{stack} {weight}")
    return lines


def collapsed_bytes(model: RunModel, selection: Selection) -> bytes:
    return "".join(line + "\n" for line in collapsed_lines(model, selection)).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# speedscope


def speedscope_document(model: RunModel, selection: Selection) -> dict[str, Any]:
    """speedscope's file format: one sampled profile per thread (its rows for the chosen state,
    or for every state), each stack a sample weighted by its seconds."""
    rows = selected_rows(model, selection)
    frames: list[dict[str, Any]] = []
    index: dict[Frame, int] = {}
    by_thread: dict[int, list[WhereRow]] = {}
    for row in rows:
        by_thread.setdefault(row.tid, []).append(row)
        for frame in row.stack:
            if frame not in index:
                index[frame] = len(frames)
                frames.append({"name": frame.function, "file": frame.file, "line": frame.line})
    which = "all states" if selection.state == ALL_STATES else selection.state
    profiles = [_profile(f"{thread_title(model, tid)}: {which}", thread_rows, index)
                for tid, thread_rows in by_thread.items()]
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": f"{model.target.name}: {which}",
        "activeProfileIndex": 0,
        "exporter": f"threadscope {__version__}",
    }


def _profile(name: str, rows: Iterable[WhereRow], index: dict[Frame, int]) -> dict[str, Any]:
    merged: dict[tuple[int, ...], float] = {}
    for row in rows:
        stack = tuple(index[frame] for frame in row.stack)
        merged[stack] = merged.get(stack, 0.0) + row.seconds
    weights = list(merged.values())
    return {
        "type": "sampled",
        "name": name,
        "unit": "seconds",
        "startValue": 0,
        "endValue": sum(weights),
        "samples": [list(stack) for stack in merged],
        "weights": weights,
    }


def speedscope_bytes(model: RunModel, selection: Selection) -> bytes:
    return orjson.dumps(speedscope_document(model, selection))


FORMATS = {"collapsed": collapsed_bytes, "speedscope": speedscope_bytes}
