"""Lock waits and holds, read from the JSON lines ``tracer.instrument.locks`` writes in the target.

Raw records (one JSON object per line, ``ev`` says which; times are CLOCK_MONOTONIC ns, ``tid`` is
the native thread id, ``pid`` the process, ``id`` a primitive's number within that process):

* ``start``: ``format``, ``t``, ``python``, ``long_hold_ns``, ``core`` (``c`` or ``python``: which
  fast path recorded; absent in older recordings, which all used Python), ``why_python``,
  ``records`` and ``record_format`` (the C core's binary records, below; absent or null when
  the core did not record)
* ``lock``: ``id``, ``kind``, ``site``, ``func``, ``made_by``, ``name`` (optional ``per_site``)
* ``wait`` (a thread starts blocking): ``id``, ``kind``, ``tid``, ``t``, ``holder``
* ``wait_end``: ``id``, ``kind``, ``tid``, ``t0``, ``t``, ``ok`` (False: timed out or interrupted)
* ``release`` (a hold worth drawing): ``id``, ``kind``, ``tid``, ``t_acq``, ``t``
* ``stats`` (cumulative counters, last one wins): ``id``, ``n``, ``contended``, ``hold_ns``,
  ``hold_max_ns``, ``instances``
* ``state`` (snapshot): ``t``, ``threads``, ``held`` [{id, kind, name, tid, since, depth}],
  ``waiting`` [{tid, id, kind, name, since, holder}]
* ``dropped``: ``n`` records the C core's full buffer could not keep

The C core writes its waits and holds as fixed binary records (``struct`` format
``record_format``: code, pid, id, tid, t0, t1, ok, holder; code 1 a ``wait`` at t0 with the
holder's tid or -1, 3 its ``wait_end`` from t0 to t1, 2 a ``release`` of a hold from t0 to t1)
in the file the header names, beside the JSON lines; :func:`load_lock_events` turns them into
the events above, with the kind of their ``lock`` record.

Everything here is a pure function of those records.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer.errors import CorruptRecording
from tracer.model.rawfiles import read_jsonl
from tracer.model.schema import (
    LOCK_HOLD,
    LOCK_WAIT,
    SIGNAL_WAIT,
    DeadlockStep,
    HoldDetail,
    Interval,
    LockHandoff,
    LockRef,
    LockStats,
    LockWaiter,
    WaitDetail,
)

LOCK_KINDS = frozenset({"lock", "rlock"})  # kinds with one owner, so with holders and hand-offs
# Kinds whose blocked acquire is contention: another thread had what this one asked for (a
# Semaphore's last permit has holders too, just no single owner). Every other kind (condition,
# event, barrier, queue_get, queue_put) waits for a signal: another thread's notify, set, arrival
# or put, which nobody who holds anything owes. A Condition's re-acquire of its own lock after
# the signal is not recorded apart (the recorder folds it into the condition's wait), so it
# counts as the signal wait; the same lock taken with ``with cond:`` is the Lock/RLock's own.
CONTENTION_KINDS = frozenset({"lock", "rlock", "semaphore"})

Key = tuple[int, int]  # (pid, id)


@dataclass(frozen=True)
class HeldLock:
    """A lock the last state snapshot saw held (at exit: never released)."""

    id: int
    pid: int
    kind: str | None
    name: str | None
    tid: int | None
    since_s: float
    thread: str | None  # the holder's name, when the snapshot knew it


@dataclass(frozen=True)
class _Wait:
    """One wait of one lock, with what the hand-off search needs beyond the interval."""

    interval: Interval
    detail: WaitDetail
    tid: int
    acquired_ns: int | None  # when it got the lock (None: it did not)


@dataclass
class LockModel:
    """Per thread, when it waited for which primitive and when it held which lock; per lock, the
    figures the report ranks them by."""

    waits: dict[int, list[Interval]] = field(default_factory=dict)
    holds: dict[int, list[Interval]] = field(default_factory=dict)
    locks: list[LockStats] = field(default_factory=list)
    held_at_exit: list[HeldLock] = field(default_factory=list)
    cycles: list[list[DeadlockStep]] = field(default_factory=list)
    state: dict[str, Any] | None = None


def load_lock_events(path: Path) -> list[dict[str, Any]]:
    """Read the raw JSON lines, then the C core's binary records they name. A cut-off last line
    or record (the target crashed mid-write) is dropped; anything else that is not a lock record
    is a corrupt recording."""
    if not path.is_file():
        raise CorruptRecording(f"no lock events at {path}")
    events = list(read_jsonl(path))
    for number, event in enumerate(events, start=1):
        if not isinstance(event.get("ev"), str):
            raise CorruptRecording(f"{path}: record {number} is not a lock event")
    formats = {(str(e["records"]), str(e.get("record_format") or "=8q")) for e in events
               if e["ev"] == "start" and e.get("records")}
    kinds = {_key(e): str(e.get("kind") or "lock") for e in events if e["ev"] == "lock"}
    for name, fmt in sorted(formats):
        events.extend(_core_records(path.parent / Path(name).name, fmt, kinds))
    return events


_WAIT, _HOLD, _WAIT_END = 1, 2, 3


def _core_records(path: Path, fmt: str, kinds: dict[Key, str]) -> list[dict[str, Any]]:
    """The C core's records as events (none if the target never wrote the file)."""
    if not path.is_file():
        return []
    try:
        record = struct.Struct(fmt)
    except struct.error as exc:
        raise CorruptRecording(f"{path}: unknown record format {fmt!r}") from exc
    data = path.read_bytes()
    data = data[:len(data) - len(data) % record.size]
    out: list[dict[str, Any]] = []
    for code, pid, prim_id, tid, t0, t1, ok, holder in record.iter_unpack(data):
        kind = kinds.get((pid, prim_id), "lock")
        if code == _WAIT:
            out.append({"ev": "wait", "pid": pid, "id": prim_id, "kind": kind, "tid": tid,
                        "t": t0, "holder": holder if holder >= 0 else None})
        elif code == _WAIT_END:
            out.append({"ev": "wait_end", "pid": pid, "id": prim_id, "kind": kind, "tid": tid,
                        "t0": t0, "t": t1, "ok": bool(ok)})
        elif code == _HOLD:
            out.append({"ev": "release", "pid": pid, "id": prim_id, "kind": kind, "tid": tid,
                        "t_acq": t0, "t": t1})
        else:
            raise CorruptRecording(f"{path}: unknown record code {code}")
    return out


def is_contention(kind: str | None) -> bool:
    """A wait on this kind of primitive is contention (``lock_wait``), not a signal wait."""
    return kind in CONTENTION_KINDS


def wait_state(kind: str | None) -> str:
    """The thread state a wait on this kind of primitive is."""
    return LOCK_WAIT if is_contention(kind) else SIGNAL_WAIT


def _key(event: dict[str, Any]) -> Key:
    return (int(event.get("pid", 0)), int(event["id"]))


def _s(ns: int, t0_ns: int) -> float:
    return (ns - t0_ns) / 1e9


def build_lock_model(events: list[dict[str, Any]], t0_ns: int, end_ns: int) -> LockModel:
    """Turn raw records into intervals and per-lock figures, times in seconds from ``t0_ns``.
    Waits still open at the end (a deadlock, a timeout) run to ``end_ns``."""
    records: dict[Key, dict[str, Any]] = {}
    stats: dict[Key, dict[str, Any]] = {}
    starts: dict[tuple[Key, int, int], dict[str, Any]] = {}
    ends: list[dict[str, Any]] = []
    releases: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    state: dict[str, Any] | None = None
    for event in events:
        kind = event["ev"]
        if kind == "lock":
            records[_key(event)] = event
        elif kind == "stats":
            stats[_key(event)] = event
        elif kind == "wait":
            starts[(_key(event), event["tid"], event["t"])] = event
        elif kind == "wait_end":
            ends.append(event)
        elif kind == "release":
            releases[_key(event)].append(event)
        elif kind == "state":
            state = event
    for group in releases.values():
        group.sort(key=lambda e: e["t"])
    model = LockModel(state=state)
    names = {key: str(rec.get("name") or f"lock #{key[1]}") for key, rec in records.items()}
    waits_by_lock = _waits(model, ends, starts, releases, names, t0_ns)
    _open_waits(model, starts, ends, names, t0_ns, end_ns, waits_by_lock)
    _holds(model, releases, names, t0_ns)
    model.held_at_exit = held_locks(state, t0_ns) if state else []
    for held in model.held_at_exit:
        if held.tid is not None:
            model.holds.setdefault(held.tid, []).append(Interval(
                held.since_s, _s(end_ns, t0_ns), LOCK_HOLD,
                HoldDetail(held.id, held.pid, held.name or f"lock #{held.id}",
                           held.kind or "lock", open=True)))
    model.locks = _lock_table(records, stats, waits_by_lock, releases, t0_ns)
    model.cycles = deadlock_cycles(state) if state else []
    return model


def _holder(start: dict[str, Any] | None, end: dict[str, Any],
            releases: list[dict[str, Any]], release_times: list[int]) -> int | None:
    """Who held the lock: what the waiter saw when it started waiting, else the first thread that
    released the lock during the wait. ``release_times`` are the releases' times, precomputed
    once per lock: a busy lock has hundreds of thousands of releases."""
    if start is not None and start.get("holder") is not None:
        return int(start["holder"])
    if end["kind"] not in LOCK_KINDS:
        return None
    index = bisect_right(release_times, end["t0"])
    for position in range(index, len(releases)):  # no slice: that would copy the list
        release = releases[position]
        if release["t"] > end["t"]:
            break
        if release["tid"] != end["tid"]:
            return int(release["tid"])
    return None


def _waits(model: LockModel, ends: list[dict[str, Any]],
           starts: dict[tuple[Key, int, int], dict[str, Any]],
           releases: dict[Key, list[dict[str, Any]]], names: dict[Key, str],
           t0_ns: int) -> dict[Key, list[_Wait]]:
    by_lock: dict[Key, list[_Wait]] = defaultdict(list)
    release_times = {key: [r["t"] for r in found] for key, found in releases.items()}
    for end in ends:
        key = _key(end)
        start = starts.get((key, end["tid"], end["t0"]))
        ok = bool(end.get("ok", True))
        detail = WaitDetail(
            key[1], key[0], names.get(key, f"lock #{key[1]}"), end["kind"],
            _holder(start, end, releases.get(key, []), release_times.get(key, [])), ok)
        interval = Interval(_s(end["t0"], t0_ns), _s(end["t"], t0_ns), wait_state(detail.kind),
                            detail)
        model.waits.setdefault(end["tid"], []).append(interval)
        by_lock[key].append(_Wait(interval, detail, end["tid"], int(end["t"]) if ok else None))
    for intervals in model.waits.values():
        intervals.sort(key=lambda i: i.start)
    return by_lock


def _open_waits(model: LockModel, starts: dict[tuple[Key, int, int], dict[str, Any]],
                ends: list[dict[str, Any]], names: dict[Key, str], t0_ns: int, end_ns: int,
                by_lock: dict[Key, list[_Wait]]) -> None:
    finished = {(_key(e), e["tid"], e["t0"]) for e in ends}
    for ident, start in starts.items():
        if ident in finished:
            continue
        key = ident[0]
        holder = start.get("holder")
        detail = WaitDetail(key[1], key[0], names.get(key, f"lock #{key[1]}"), start["kind"],
                            None if holder is None else int(holder), ok=False, unfinished=True)
        interval = Interval(_s(start["t"], t0_ns), _s(max(end_ns, start["t"]), t0_ns),
                            wait_state(detail.kind), detail)
        model.waits.setdefault(start["tid"], []).append(interval)
        by_lock[key].append(_Wait(interval, detail, start["tid"], None))


def _holds(model: LockModel, releases: dict[Key, list[dict[str, Any]]], names: dict[Key, str],
           t0_ns: int) -> None:
    for key, group in releases.items():
        for release in group:
            model.holds.setdefault(release["tid"], []).append(Interval(
                _s(release["t_acq"], t0_ns), _s(release["t"], t0_ns), LOCK_HOLD,
                HoldDetail(key[1], key[0], names.get(key, f"lock #{key[1]}"), release["kind"])))
    for intervals in model.holds.values():
        intervals.sort(key=lambda i: i.start)


def _p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile: a value that really occurred, no interpolation."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _lock_table(records: dict[Key, dict[str, Any]], stats: dict[Key, dict[str, Any]],
                waits: dict[Key, list[_Wait]],
                releases: dict[Key, list[dict[str, Any]]], t0_ns: int) -> list[LockStats]:
    table = []
    for key in sorted(set(records) | set(stats) | set(waits)):
        record = records.get(key, {})
        counters = stats.get(key, {})
        first_kind = waits[key][0].detail.kind if key in waits else None
        kind = str(record.get("kind") or first_kind or "lock")
        durations = [wait.interval.duration for wait in waits.get(key, [])]
        held = releases.get(key, [])
        hold_events_s = [(r["t"] - r["t_acq"]) / 1e9 for r in held]
        contended = max(int(counters.get("contended", 0)), len(durations))
        table.append(LockStats(
            id=key[1], pid=key[0], kind=kind,
            name=str(record.get("name") or f"{kind} #{key[1]}"),
            site=record.get("site"), made_by=record.get("made_by"),
            per_site=bool(record.get("per_site", False)),
            instances=int(counters.get("instances", 1)),
            acquisitions=max(int(counters.get("n", 0)), contended),
            contended=contended,
            wait_s=sum(durations),
            mean_wait_s=sum(durations) / len(durations) if durations else 0.0,
            p95_wait_s=_p95(durations),
            max_wait_s=max(durations, default=0.0),
            hold_s=max(counters.get("hold_ns", 0) / 1e9, sum(hold_events_s)),
            max_hold_s=max(counters.get("hold_max_ns", 0) / 1e9, max(hold_events_s, default=0.0)),
            waiters=_waiters(waits.get(key, [])),
            handoffs=_handoffs(kind, waits.get(key, []), held, t0_ns),
            contention=is_contention(kind),
        ))
    table.sort(key=lambda row: (not row.contention, -row.wait_s, -row.acquisitions, row.id))
    return table


def _waiters(waits: list[_Wait]) -> list[LockWaiter]:
    """Which thread waited for which holder, how often and how long in total."""
    totals: dict[tuple[int, int | None], list[float]] = defaultdict(lambda: [0, 0.0])
    for wait in waits:
        entry = totals[(wait.tid, wait.detail.holder)]
        entry[0] += 1
        entry[1] += wait.interval.duration
    return [LockWaiter(tid, holder, int(count), wait_s)
            for (tid, holder), (count, wait_s) in sorted(totals.items(), key=lambda kv: -kv[1][1])]


def _handoffs(kind: str, waits: list[_Wait], releases: list[dict[str, Any]],
              t0_ns: int) -> list[LockHandoff]:
    """A release followed by a waiter's acquisition: the arrow from one owner to the next."""
    if kind not in LOCK_KINDS or not releases:
        return []
    times = [r["t"] for r in releases]
    out = []
    for wait in sorted(waits, key=lambda w: w.interval.end):
        if wait.acquired_ns is None:
            continue
        index = bisect_right(times, wait.acquired_ns) - 1
        while index >= 0 and releases[index]["tid"] == wait.tid:
            index -= 1
        if index < 0 or releases[index]["t"] < t0_ns + wait.interval.start * 1e9 - 1:
            continue  # released before this wait began: not the hand-off that woke it
        release = releases[index]
        out.append(LockHandoff(int(release["tid"]), wait.tid, _s(release["t"], t0_ns),
                               wait.interval.end))
    return out


def held_locks(state: dict[str, Any], t0_ns: int = 0) -> list[HeldLock]:
    """Locks held when the snapshot was taken (at exit: never released)."""
    pid = int(state.get("pid", 0))
    return [HeldLock(int(h["id"]), int(h.get("pid", pid)), h.get("kind"), h.get("name"),
                     h.get("tid"), _s(int(h["since"]), t0_ns), _thread_name(state, h.get("tid")))
            for h in state.get("held", [])]


def _thread_name(state: dict[str, Any], tid: int | None) -> str | None:
    if tid is None:
        return None
    name = state.get("threads", {}).get(str(tid))
    return str(name) if name is not None else None


def deadlock_cycles(state_snapshot: dict[str, Any]) -> list[list[DeadlockStep]]:
    """Cycles of threads each waiting for a lock the next one holds. Each step names the thread,
    the lock it waits for, who holds that lock, and the locks the thread itself holds."""
    waits_for: dict[int, dict[str, Any]] = {}
    for wait in state_snapshot.get("waiting", []):
        if wait.get("holder") is not None and wait.get("tid") is not None:
            waits_for[int(wait["tid"])] = wait
    holds: dict[int, list[LockRef]] = defaultdict(list)
    for held in state_snapshot.get("held", []):
        if held.get("tid") is not None:
            holds[int(held["tid"])].append(LockRef(int(held["id"]), held.get("name")))
    cycles: list[list[DeadlockStep]] = []
    seen: set[int] = set()
    for first in sorted(waits_for):
        path: list[int] = []
        tid: int | None = first
        while tid is not None and tid in waits_for and tid not in seen and tid not in path:
            path.append(tid)
            tid = int(waits_for[tid]["holder"])
        if tid is not None and tid in path:
            loop = path[path.index(tid):]
            start = loop.index(min(loop))
            loop = loop[start:] + loop[:start]
            cycles.append([_cycle_step(state_snapshot, t, waits_for[t], holds[t]) for t in loop])
        seen.update(path)
    return cycles


def _cycle_step(state: dict[str, Any], tid: int, wait: dict[str, Any],
                holds: list[LockRef]) -> DeadlockStep:
    return DeadlockStep(tid, _thread_name(state, tid), holds,
                        LockRef(int(wait["id"]), wait.get("name"), wait.get("kind")),
                        int(wait["holder"]))
