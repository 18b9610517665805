"""Which threads the report shows, in which order, and how the rest are folded.

Every renderer lists threads in the same order (:func:`ordered_threads`) and, past
``FOLD_ABOVE`` threads, shows the same selection (:func:`select_threads`); both are computed once
per render by :func:`reports.view.build_view`, because the figures, the tables and the prose
refer to rows by position and must agree on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from reports.vocabulary import CUT_OFF, state_group
from tracer.model.schema import (
    CPU_WAIT,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    RUNNING,
    STATES,
    Interval,
    RunModel,
    ThreadTimeline,
)

# Past this many threads a per-thread row no longer fits a screen (nor draws quickly: Plotly lays
# out each tick label, and 512 rows took 4.5 s per figure in headless Chromium), so the report
# folds threads. SHOWN_THREADS of them keep their own row, the rest share a few group rows, and
# every figure and table stays under FOLD_ABOVE rows. trace.json and model.json keep each thread.
FOLD_ABOVE = 64
SHOWN_THREADS = 48
# Folded groups of equal size are listed in the order of the states.
STATE_ORDER = {state: index for index, state in enumerate(STATES)}


def thread_state_seconds(thread: ThreadTimeline) -> dict[str, float]:
    """Seconds per state: the model's own figures, or summed from the intervals when absent."""
    if thread.state_s:
        return {s: float(v) for s, v in thread.state_s.items() if v}
    return state_seconds_of(thread.intervals)


def state_seconds_of(intervals: Iterable[Interval]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for interval in intervals:
        totals[interval.state] = totals.get(interval.state, 0.0) + max(0.0, interval.duration)
    return {s: v for s, v in totals.items() if v}


def thread_label(thread: ThreadTimeline) -> str:
    """How a thread is named everywhere: names repeat across threads, tids do not."""
    return f"{thread.name} (tid {thread.tid})"


def ordered_threads(model: RunModel) -> list[ThreadTimeline]:
    """Main thread first, then in order of start, so rows read like the program ran."""
    return sorted(
        model.threads,
        key=lambda t: (not t.is_main, t.start_s if t.start_s is not None else 0.0, t.tid),
    )


def dominant_state(thread: ThreadTimeline) -> str:
    """The state a thread spent most time in ("" when none was recorded)."""
    seconds = thread_state_seconds(thread)
    return max(seconds, key=lambda s: seconds[s]) if seconds else ""


@dataclass
class ThreadGroup:
    """Threads folded into one row because there are too many to show each: they share what they
    mostly did (``state``), and their figures are summed (or averaged, where a sum would dwarf the
    single threads next to them)."""

    state: str
    threads: list[ThreadTimeline]

    @property
    def label(self) -> str:
        return f"{len(self.threads)} other threads (similar: {state_group(self.state)})"

    def state_seconds(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for thread in self.threads:
            for state, seconds in thread_state_seconds(thread).items():
                totals[state] = totals.get(state, 0.0) + seconds
        return totals

    @property
    def cpu_s(self) -> float:
        return sum(t.cpu_s for t in self.threads)


Row = ThreadTimeline | ThreadGroup


@dataclass
class ThreadSelection:
    """Which threads get their own row and which are folded, and why each shown one was chosen.

    ``shown`` keeps the order of ``ordered_threads``; ``groups`` are biggest first. Threads are
    told apart by identity, not tid: the OS reuses the tids of threads that ended. ``chosen`` is
    what the ranking picked, in the order it picked them, so a narrower selection (the
    terminal's) is cut from it without ranking again."""

    shown: list[ThreadTimeline]
    groups: list[ThreadGroup] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # id(thread) -> why it has a row
    ordered: list[ThreadTimeline] = field(default_factory=list)
    chosen: dict[int, str] = field(default_factory=dict)  # the ranking's picks, in order
    mains: int = 0  # main threads, which are always picked (first)

    def why(self, thread: ThreadTimeline) -> str:
        """Why ``thread`` has its own row ("" when every thread has one)."""
        return self.reasons.get(id(thread), "")

    @property
    def folded(self) -> int:
        return sum(len(g.threads) for g in self.groups)

    @property
    def rows(self) -> list[Row]:
        return [*self.shown, *self.groups]

    def narrowed(self, shown: int) -> ThreadSelection:
        """The same ranking with at most ``shown`` own rows (the main threads always keep
        theirs): the ranking picks in turn, so its first picks are what a smaller limit picks."""
        if not self.groups or len(self.chosen) <= shown:
            return self
        keep = dict(list(self.chosen.items())[: max(shown, self.mains)])
        return _fold(self.ordered, keep)


def _seconds_in(state: str) -> Callable[[ThreadTimeline], float]:
    return lambda thread: thread_state_seconds(thread).get(state, 0.0)


# How a thread earns its own row in a folded report, in turn: the busiest by each measure first.
# Each entry is (reason shown to the reader, measure; a thread with 0 is never chosen for it).
# "Waited longest for locks" is contention (lock_wait) only: a thread polling Event.wait(0.05)
# or idle in a queue get waited for a signal (signal_wait), which is not a lock it was kept from.
INTEREST: tuple[tuple[str, Callable[[ThreadTimeline], float]], ...] = (
    ("held the GIL longest", _seconds_in(RUNNING)),
    ("waited longest for the GIL", _seconds_in(GIL_WAIT)),
    ("waited longest for locks", _seconds_in(LOCK_WAIT)),
    ("most CPU time", lambda thread: thread.cpu_s),
    ("most time in native code", _seconds_in(NATIVE)),
    ("waited longest for a core", _seconds_in(CPU_WAIT)),
    ("cut off when the run ended", lambda thread: float(thread.end_reason in CUT_OFF)),
)


def select_threads(
    model: RunModel, fold_above: int = FOLD_ABOVE, shown: int = SHOWN_THREADS,
    ordered: Sequence[ThreadTimeline] | None = None,
) -> ThreadSelection:
    """Every thread when there are at most ``fold_above``; otherwise the main thread, deadlocked
    threads and, taking turns between the measures in ``INTEREST``, the busiest threads by each,
    up to ``shown``; the rest are grouped by the state they were mostly in. ``ordered`` is
    ``ordered_threads(model)`` when the caller has it already."""
    threads = list(ordered) if ordered is not None else ordered_threads(model)
    if len(threads) <= fold_above:
        return ThreadSelection(shown=threads, ordered=threads)
    reasons = {id(thread): "main thread" for thread in threads if thread.is_main}
    deadlocked = {step.tid for cycle in model.deadlocks for step in cycle}
    for thread in threads:
        if thread.tid in deadlocked and len(reasons) < shown:
            reasons[id(thread)] = ", ".join(filter(None, [reasons.get(id(thread)), "deadlocked"]))
    _take_turns(threads, reasons, shown)
    return _fold(threads, reasons)


def _take_turns(threads: list[ThreadTimeline], reasons: dict[int, str], shown: int) -> None:
    """Add to ``reasons`` the busiest thread by each measure in turn, until ``shown`` have one."""
    rankings = []
    for reason, measure in INTEREST:
        scored = [(measure(t), index, t) for index, t in enumerate(threads)]
        ranked = [t for score, _, t in sorted(scored, key=lambda x: (-x[0], x[1])) if score > 0]
        rankings.append((reason, ranked))
    position = [0] * len(rankings)
    while len(reasons) < shown and any(p < len(r) for p, (_, r) in zip(position, rankings)):
        for k, (reason, ranked) in enumerate(rankings):
            while position[k] < len(ranked) and id(ranked[position[k]]) in reasons:
                position[k] += 1  # chosen already, for an earlier measure
            if position[k] < len(ranked) and len(reasons) < shown:
                reasons[id(ranked[position[k]])] = f"{reason} (#{position[k] + 1})"
                position[k] += 1


def _fold(threads: list[ThreadTimeline], chosen: dict[int, str]) -> ThreadSelection:
    """The chosen threads shown, the others grouped by dominant state (a group of one shown)."""
    reasons = dict(chosen)
    by_state: dict[str, list[ThreadTimeline]] = {}
    for thread in threads:
        if id(thread) not in reasons:
            by_state.setdefault(dominant_state(thread), []).append(thread)
    for group in by_state.values():
        if len(group) == 1:  # a group of one is just a thread: it gets its own row
            reasons[id(group[0])] = "the only one of its kind"
    shown = [t for t in threads if id(t) in reasons]
    groups = [ThreadGroup(state, group) for state, group in by_state.items() if len(group) > 1]
    groups.sort(key=lambda g: (-len(g.threads), STATE_ORDER.get(g.state, len(STATES))))
    mains = sum(1 for t in threads if t.is_main)
    return ThreadSelection(shown, groups, reasons, threads, chosen, mains)
