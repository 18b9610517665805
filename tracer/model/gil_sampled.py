"""Sampled GIL timelines from ``raw/gil_samples.jsonl`` (written by
:mod:`tracer.recorders.gil_sampler`), shaped like :func:`tracer.model.gil_exact.gil_timelines` so
the same :func:`tracer.model.gil_exact.gil_metrics` applies to both.

A sample says, at one instant, which ``PyThreadState`` held the GIL and, per thread, whether it was
runnable (``R``), asleep on the GIL (``G``), asleep awaiting a forced hand-off (``H``) or asleep on
anything else (``B``), plus the thread's total run-queue wait so far. It stands for the time until
the next sample. States, as gil_exact has them:

- the thread whose thread state is the holder (while ``locked``) -> ``running``, whatever its code:
  the GIL was read after the threads, so a thread seen waiting that holds it now has just got it;
- ``R`` otherwise -> ``native`` while it is on a CPU, ``cpu_wait`` while it waits in the run
  queue (gil_exact likewise tells a preempted thread from a sleeping one). A runnable thread's
  place cannot be seen at one instant, but the kernel adds each run-queue wait to ``rq_ns`` when
  the wait ends, so a growth of ``d`` between two samples is read as a wait over the ``d`` before
  the later one;
- ``G`` -> ``gil_wait``;
- ``H`` -> ``blocked``: it sleeps inside ``drop_gil`` until another thread has taken the GIL;
  gil_exact calls that stretch (after ``drop_gil``'s entry, off CPU) blocked too;
- ``B`` -> ``blocked``.

Everything here is pure: values in, values out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import median
from typing import Any

from tracer.errors import CorruptRecording
from tracer.model.rawfiles import read_jsonl
from tracer.model.schema import BLOCKED, CPU_WAIT, GIL_WAIT, NATIVE, RUNNING, Interval

_CODE_STATES = {"R": NATIVE, "G": GIL_WAIT, "H": BLOCKED, "B": BLOCKED}

# (tstate address, tid, valid from ns or None: since before the record, valid until ns or None)
TstateSpan = tuple[int, int, int | None, int | None]


def load_gil_samples(path: Path) -> list[dict[str, Any]]:
    """The ticks of a ``gil_samples.jsonl``, in time order, as ``{"t_ns", "holder", "locked",
    "switch_number", "threads": [(tid, code, rq_ns or None), ...]}``. A truncated last line (the
    controller died mid-write) is dropped; anything else malformed raises CorruptRecording."""
    if not path.is_file():
        raise CorruptRecording(f"{path}: no such GIL samples file")
    samples: list[dict[str, Any]] = []
    for number, record in enumerate(read_jsonl(path), 1):
        if "kind" in record:
            continue  # meta / end lines
        try:
            samples.append(_sample_from(record))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecording(f"{path}: record {number} is not a GIL sample ({exc})") from exc
    samples.sort(key=lambda s: s["t_ns"])
    return samples


def _sample_from(record: Mapping[str, Any]) -> dict[str, Any]:
    threads = []
    for entry in record["th"]:
        tid, code = entry[0], entry[1]
        if code not in _CODE_STATES:
            raise ValueError(f"unknown thread code {code!r}")
        threads.append((int(tid), str(code), int(entry[2]) if len(entry) > 2 else None))
    return {
        "t_ns": int(record["t"]),
        "holder": int(record["h"]),
        "locked": int(record["l"]),
        "switch_number": int(record["n"]),
        "threads": threads,
    }


def tstate_map(thread_events: Iterable[Mapping[str, Any]]) -> list[TstateSpan]:
    """Which thread a PyThreadState address meant, and when, from ``threads.jsonl`` events.

    ``start``/``main`` events carry ``tstate``; the matching ``end`` (same tid) closes it. CPython
    reuses a dead thread's address for the next thread, so a later start with the same address also
    closes the earlier span. The main thread's span has no start: it existed before the record.
    """
    spans: list[list[Any]] = []
    open_by_tid: dict[int, list[Any]] = {}
    open_by_tstate: dict[int, list[Any]] = {}
    for event in sorted(thread_events, key=lambda e: e.get("t_ns", 0)):
        kind, tid, t_ns = event.get("ev"), event.get("tid"), event.get("t_ns")
        if not isinstance(tid, int):
            continue
        if kind in ("start", "main") and isinstance(event.get("tstate"), int):
            tstate = int(event["tstate"])
            previous = open_by_tstate.get(tstate)
            if previous is not None and previous[3] is None:
                previous[3] = t_ns
            span = [tstate, tid, None if kind == "main" else t_ns, None]
            spans.append(span)
            open_by_tid[tid] = span
            open_by_tstate[tstate] = span
        elif kind == "end" and tid in open_by_tid:
            open_by_tid.pop(tid)[3] = t_ns
    return [(s[0], s[1], s[2], s[3]) for s in spans]


class _HolderLookup:
    """tstate address at a time -> tid, using the spans of :func:`tstate_map`."""

    def __init__(self, tstates: Iterable[TstateSpan]) -> None:
        self._by_tstate: dict[int, list[TstateSpan]] = defaultdict(list)
        for span in tstates:
            self._by_tstate[span[0]].append(span)

    def tid(self, tstate: int, t_ns: int) -> int | None:
        best: TstateSpan | None = None
        for span in self._by_tstate.get(tstate, ()):
            start, until = span[2], span[3]
            if (start is None or start <= t_ns) and (until is None or t_ns < until) and (
                best is None or (start or 0) >= (best[2] or 0)
            ):
                best = span
        return best[1] if best is not None else None


def sample_states(sample: Mapping[str, Any], holder_tid: int | None) -> dict[int, str]:
    """Per tid, the state one sample shows, before run-queue waits are taken into account."""
    return {
        entry[0]: RUNNING if entry[0] == holder_tid else _CODE_STATES[entry[1]]
        for entry in sample["threads"]
    }


# One thread in one sample: [start_ns, end_ns) in ``state``; ``rq_ns`` its run-queue total.
_Slot = tuple[int, int, str, int | None]


def sampled_gil_timelines(
    samples: list[dict[str, Any]], tstates: Iterable[TstateSpan], t0_ns: int, end_ns: int
) -> dict[int, list[Interval]]:
    """Per tid, sorted non-overlapping intervals in seconds from ``t0_ns``, clipped to
    ``[t0_ns, end_ns]``: each sample's state lasts until the next sample (the last one for the
    median sampling period). A thread absent from a sample (not yet seen, or gone) has a gap."""
    if end_ns < t0_ns:
        raise ValueError(f"end_ns {end_ns} is before t0_ns {t0_ns}")
    timelines: dict[int, list[Interval]] = {}
    for tid, slots in _slots(samples, _HolderLookup(tstates)).items():
        intervals: list[Interval] = []
        for start, end, state in _split_run_queue_waits(slots):
            start, end = max(start, t0_ns), min(end, end_ns)
            if end > start:
                _append(intervals, (start - t0_ns) / 1e9, (end - t0_ns) / 1e9, state)
        if intervals:
            timelines[tid] = intervals
    return timelines


def _slots(samples: list[dict[str, Any]], holders: _HolderLookup) -> dict[int, list[_Slot]]:
    """Per tid, what each sample says, for the span until the next sample."""
    ordered = sorted(samples, key=lambda s: s["t_ns"])
    times = [s["t_ns"] for s in ordered]
    gaps = [b - a for a, b in zip(times, times[1:])]
    last_span = int(median(gaps)) if gaps else 0
    slots: dict[int, list[_Slot]] = defaultdict(list)
    for i, sample in enumerate(ordered):
        start = sample["t_ns"]
        end = times[i + 1] if i + 1 < len(times) else start + last_span
        holder = holders.tid(sample["holder"], start) if sample["locked"] else None
        for tid, code, rq_ns in sample["threads"]:
            state = RUNNING if tid == holder else _CODE_STATES[code]
            slots[tid].append((start, end, state, rq_ns))
    return slots


def _split_run_queue_waits(slots: list[_Slot]) -> list[tuple[int, int, str]]:
    """Slots as (start, end, state), with ``native`` stretches cut where the thread was in the run
    queue: a growth ``d`` of ``rq_ns`` seen at sample time ``t`` is a wait over ``[t - d, t]``."""
    waits = _run_queue_waits(slots)
    out: list[tuple[int, int, str]] = []
    w = 0  # waits are disjoint and sorted, and so are slots: one sweep
    for start, end, state, _ in slots:
        if state != NATIVE:
            out.append((start, end, state))
            continue
        while w < len(waits) and waits[w][1] <= start:
            w += 1
        at, k = start, w
        while k < len(waits) and waits[k][0] < end:
            wait_start, wait_end = max(waits[k][0], start), min(waits[k][1], end)
            if wait_start > at:
                out.append((at, wait_start, NATIVE))
            out.append((max(wait_start, at), wait_end, CPU_WAIT))
            at = wait_end
            k += 1
        if at < end:
            out.append((at, end, NATIVE))
    return out


def _run_queue_waits(slots: list[_Slot]) -> list[tuple[int, int]]:
    """Disjoint, sorted [start, end) ns in which the thread waited for a CPU."""
    waits: list[tuple[int, int]] = []
    for before, after in zip(slots, slots[1:]):
        if before[3] is None or after[3] is None or after[3] <= before[3]:
            continue
        start, end = after[0] - (after[3] - before[3]), after[0]
        while waits and waits[-1][1] >= start:  # a long wait swallows the ones it overlaps
            start = min(start, waits.pop()[0])
        waits.append((start, end))
    return waits


def _append(intervals: list[Interval], start: float, end: float, state: str) -> None:
    last = intervals[-1] if intervals else None
    if last is not None and last.state == state and last.end == start:
        last.end = end
    else:
        intervals.append(Interval(start, end, state))


def sampled_switches(samples: list[dict[str, Any]], t0_ns: int, end_ns: int) -> int:
    """GIL acquisitions in ``[t0_ns, end_ns]``: the growth of ``switch_number`` between the first
    and last sample inside the window. It counts every ``take_gil`` that got the GIL, including a
    thread taking it back after its own sleep, so it is at least the number of hand-offs between
    different threads that :func:`tracer.model.gil_exact.gil_metrics` reports."""
    inside = [s["switch_number"] for s in sorted(samples, key=lambda s: s["t_ns"])
              if t0_ns <= s["t_ns"] <= end_ns]
    if len(inside) < 2:
        return 0
    return max(inside[-1] - inside[0], 0)
