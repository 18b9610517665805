"""The measured numbers of a run and their plain-language reading.

Every renderer (HTML, terminal) states the same numbers, so they are derived here once, from the
model only. The wording is chosen from the measurements (parallelism against 1 and against the
cores, shares of time per state), never from the scenario's name: a user's own program gets the
same honest reading as a scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    OFF_CPU,
    ON_CPU,
    ON_CPU_STATES,
    RUNNING,
    STATES,
    Interval,
    Marker,
    RunModel,
    ThreadTimeline,
)
from tracer.model.viztracer_cost import MATERIAL_SLOWDOWN as VIZTRACER_MATERIAL_SLOWDOWN
from tracer.model.viztracer_cost import count_words
from tracer.raw_files import RunStatus

# Parallelism within this margin of a whole number reads as "about" that number: the OS sampler
# and bin edges blur the mean by a few percent, so 0.93 on a GIL-bound run is "about one core".
ABOUT_MARGIN = 0.15
# A thread that spent at least this share of the run on a CPU or waiting for the GIL "wanted a CPU".
BUSY_SHARE = 0.25

STATE_PHRASES = {
    RUNNING: "running Python while holding the GIL",
    NATIVE: "on a CPU in native code without the GIL",
    ON_CPU: "on a CPU",
    GIL_WAIT: "waiting for the GIL",
    CPU_WAIT: "ready to run but waiting for a free core (preempted by other work)",
    LOCK_WAIT: "waiting for a lock",
    BLOCKED: "blocked (sleep, I/O, join, queue)",
    OFF_CPU: "off the CPU (reason not recorded)",
}

# How a thread's end is said in tables; the model's codes are for programs, not readers.
END_REASON_WORDS = {
    "finished": "finished",
    "killed_at_exit": "killed at interpreter exit",
    "running_at_stop": "still running when the run was stopped",
}
# End reasons that cut a thread off mid-work: the timeline marks where.
CUT_OFF = ("killed_at_exit", "running_at_stop")
# Cut-off threads named one sentence each in the explanation; past this many (a daemon pool killed
# at exit) they are counted instead, with a few names as examples.
END_SENTENCES = 5

# Past this many threads a per-thread row no longer fits a screen (nor draws quickly: Plotly lays
# out each tick label, and 512 rows took 4.5 s per figure in headless Chromium), so the report
# folds threads. SHOWN_THREADS of them keep their own row, the rest share a few group rows, and
# every figure and table stays under FOLD_ABOVE rows. trace.json and model.json keep each thread.
FOLD_ABOVE = 64
SHOWN_THREADS = 48
# Folded groups of equal size are listed in the order of the states.
STATE_ORDER = {state: index for index, state in enumerate(STATES)}
# What a folded group of threads mostly did, in a few words (it labels a row).
GROUP_WORDS = {
    RUNNING: "mostly running Python",
    NATIVE: "mostly in native code",
    ON_CPU: "mostly on a CPU",
    GIL_WAIT: "mostly waiting for the GIL",
    CPU_WAIT: "mostly waiting for a core",
    LOCK_WAIT: "mostly waiting for locks",
    BLOCKED: "mostly idle or blocked",
    OFF_CPU: "mostly off the CPU",
    "": "no state recorded",
}


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
        words = GROUP_WORDS.get(self.state, f"mostly {self.state}")
        return f"{len(self.threads)} other threads (similar: {words})"

    def state_seconds(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for thread in self.threads:
            for state, seconds in thread_state_seconds(thread).items():
                totals[state] = totals.get(state, 0.0) + seconds
        return totals

    @property
    def cpu_s(self) -> float:
        return sum(t.cpu_s for t in self.threads)


@dataclass
class ThreadSelection:
    """Which threads get their own row and which are folded, and why each shown one was chosen.

    ``shown`` keeps the order of ``ordered_threads``; ``groups`` are biggest first. Threads are
    told apart by identity, not tid: the OS reuses the tids of threads that ended."""

    shown: list[ThreadTimeline]
    groups: list[ThreadGroup] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # id(thread) -> why it has a row

    def why(self, thread: ThreadTimeline) -> str:
        """Why ``thread`` has its own row ("" when every thread has one)."""
        return self.reasons.get(id(thread), "")

    @property
    def folded(self) -> int:
        return sum(len(g.threads) for g in self.groups)

    @property
    def rows(self) -> list[ThreadTimeline | ThreadGroup]:
        return [*self.shown, *self.groups]


def _seconds_in(state: str) -> Callable[[ThreadTimeline], float]:
    return lambda thread: thread_state_seconds(thread).get(state, 0.0)


# How a thread earns its own row in a folded report, in turn: the busiest by each measure first.
# Each entry is (reason shown to the reader, measure; a thread with 0 is never chosen for it).
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
    model: RunModel, fold_above: int = FOLD_ABOVE, shown: int = SHOWN_THREADS
) -> ThreadSelection:
    """Every thread when there are at most ``fold_above``; otherwise the main thread, deadlocked
    threads and, taking turns between the measures in ``INTEREST``, the busiest threads by each,
    up to ``shown``; the rest are grouped by the state they were mostly in."""
    threads = ordered_threads(model)
    if len(threads) <= fold_above:
        return ThreadSelection(shown=threads)
    reasons = {id(thread): "main thread" for thread in threads if thread.is_main}
    deadlocked = {
        int(step["tid"])
        for cycle in model.deadlocks
        for step in cycle
        if step.get("tid") is not None
    }
    for thread in threads:
        if thread.tid in deadlocked and len(reasons) < shown:
            reasons[id(thread)] = ", ".join(filter(None, [reasons.get(id(thread)), "deadlocked"]))
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
    return _fold(threads, reasons)


def _fold(threads: list[ThreadTimeline], reasons: dict[int, str]) -> ThreadSelection:
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
    return ThreadSelection(shown, groups, reasons)


@dataclass
class RunNumbers:
    """What was measured, in the units the report states them."""

    threads: int
    wall_s: float
    cpu_s: float
    cores: int
    parallelism: float | None
    state_s: dict[str, float]
    gil_measured: bool
    busy_threads: list[str] = field(default_factory=list)
    mean_gil_waiters: float | None = None
    gil_switches_per_s: float | None = None

    @property
    def thread_time_s(self) -> float:
        return sum(self.state_s.values())

    def share(self, state: str) -> float:
        total = self.thread_time_s
        return self.state_s.get(state, 0.0) / total if total > 0 else 0.0

    def on_cpu_share(self) -> float:
        return sum(self.share(s) for s in ON_CPU_STATES)


def run_numbers(model: RunModel) -> RunNumbers:
    totals: dict[str, float] = {}
    for thread in model.threads:
        for state, seconds in thread_state_seconds(thread).items():
            totals[state] = totals.get(state, 0.0) + seconds
    cpu_s = float(model.metrics.get("cpu_s", sum(t.cpu_s for t in model.threads)))
    parallelism = model.metrics.get("parallelism")
    if parallelism is None and model.wall_s > 0:
        parallelism = cpu_s / model.wall_s
    gil_measured = totals.get(RUNNING, 0.0) > 0 or totals.get(GIL_WAIT, 0.0) > 0
    waiters = model.metrics.get("mean_gil_waiters")
    if waiters is None and gil_measured and model.wall_s > 0:
        waiters = totals.get(GIL_WAIT, 0.0) / model.wall_s
    switches = model.metrics.get("gil_switches_per_s")
    return RunNumbers(
        threads=len(model.threads),
        wall_s=float(model.wall_s),
        cpu_s=cpu_s,
        cores=int(model.cores),
        parallelism=float(parallelism) if parallelism is not None else None,
        state_s=totals,
        gil_measured=gil_measured,
        busy_threads=_busy_threads(model),
        mean_gil_waiters=float(waiters) if waiters is not None else None,
        gil_switches_per_s=float(switches) if switches is not None else None,
    )


def _busy_threads(model: RunModel) -> list[str]:
    """Threads that wanted a CPU for a good part of the run (on a CPU or queued for the GIL)."""
    if model.wall_s <= 0:
        return []
    busy = []
    for thread in ordered_threads(model):
        seconds = thread_state_seconds(thread)
        wanting = sum(seconds.get(s, 0.0) for s in (*ON_CPU_STATES, GIL_WAIT))
        if wanting >= BUSY_SHARE * model.wall_s:
            busy.append(thread.name)
    return busy


def explain(model: RunModel) -> list[str]:
    """Paragraphs that say, in plain words and with the measured numbers, what the threads did."""
    numbers = run_numbers(model)
    if not model.threads:
        return ["No threads were recorded, so there is nothing to explain about them."]
    paragraphs = [_headline(numbers)]
    paragraphs += [f"The program deadlocked: {sentence}." for sentence in deadlock_sentences(model)]
    paragraphs += _parallelism_reading(numbers)
    paragraphs.append(_state_shares(numbers))
    paragraphs += _gil_reading(numbers)
    paragraphs += sampled_gil_reading(model)
    paragraphs += _lock_reading(model, numbers)
    paragraphs += _end_reading(model)
    if model.partial or not RunStatus.of(model.target.status).normal:
        paragraphs.append(
            f"The run did not finish normally (status: {model.target.status}), so these figures "
            "cover only the part that was recorded."
        )
    return paragraphs


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _headline(n: RunNumbers) -> str:
    threads = _plural(n.threads, "thread")
    text = f"{threads} used {n.cpu_s:.2f} s of CPU in {n.wall_s:.2f} s of wall time"
    if n.parallelism is None:
        return text + "; the wall time is zero, so no CPU parallelism can be computed."
    return (
        f"{text}: a CPU parallelism of {n.parallelism:.2f} on a machine with "
        f"{_plural(n.cores, 'core')}."
    )


def _parallelism_reading(n: RunNumbers) -> list[str]:
    p = n.parallelism
    if p is None:
        return []
    busy = len(n.busy_threads)
    if busy >= 2 and p < 1 + ABOUT_MARGIN:
        if n.gil_measured:
            return [
                f"{busy} threads wanted a CPU for much of the run, yet together they used about "
                "one core's worth. Python code in threads of one process runs one thread at a "
                "time under the GIL, so CPU-bound threads take turns holding it instead of running "
                "side by side: adding threads did not add speed."
            ]
        return [
            f"{busy} threads were busy for much of the run, yet together they used about one "
            "core's worth. That is what the GIL does to CPU-bound Python threads (they take "
            "turns), but GIL ownership was not measured in this run, so the recording alone "
            "cannot tell a GIL queue from other waiting."
        ]
    if p >= 1 + ABOUT_MARGIN:
        saturated = n.cores > 0 and p >= n.cores - ABOUT_MARGIN
        where = "all the machine's cores were busy" if saturated else "more than one core was busy"
        native = n.state_s.get(NATIVE, 0.0)
        why = (
            f"; {native:.2f} s were spent in native code that released the GIL, which is how "
            "threads run in parallel despite it"
            if native > 0
            else "; work that runs in parallel must have run outside the GIL (native code that "
            "releases it, or other processes)"
        )
        return [f"On average {where}{why}."]
    if p < 0.5:
        return [
            "Less than half a core was busy on average: the threads spent most of the run off "
            "the CPU, so the run is limited by waiting (sleep, I/O, locks), not by computation."
        ]
    return []


def _state_shares(n: RunNumbers) -> str:
    parts = [
        f"{n.share(state) * 100:.0f}% {STATE_PHRASES.get(state, state)} ({n.state_s[state]:.2f} s)"
        for state in STATES
        if n.state_s.get(state, 0.0) > 0
    ]
    parts += [
        f"{n.share(state) * 100:.0f}% {state} ({seconds:.2f} s)"
        for state, seconds in n.state_s.items()
        if state not in STATES and seconds > 0
    ]
    if not parts:
        return "No per-thread state was recorded, only the totals above."
    return f"Of the {n.thread_time_s:.2f} s the threads existed in total: " + "; ".join(parts) + "."


def _gil_reading(n: RunNumbers) -> list[str]:
    if not n.gil_measured:
        return [
            "GIL ownership was not measured in this run: the timeline shows only whether each "
            "thread was on a CPU or off it, as the operating system saw it."
        ]
    wait = n.state_s.get(GIL_WAIT, 0.0)
    if wait <= 0:
        return ["No thread had to wait for the GIL."]
    text = (
        f"Threads waited {wait:.2f} s in total for the GIL ({n.share(GIL_WAIT) * 100:.0f}% of "
        "their time)"
    )
    if n.mean_gil_waiters is not None:
        text += f"; on average {n.mean_gil_waiters:.2f} threads were queued for it"
    if n.gil_switches_per_s is not None:
        text += f", and the GIL changed hands {n.gil_switches_per_s:.0f} times per second"
    return [text + "."]


def _lock_reading(model: RunModel, n: RunNumbers) -> list[str]:
    wait = n.state_s.get(LOCK_WAIT, 0.0)
    if wait <= 0:
        return []
    worst = max(model.threads, key=lambda t: thread_state_seconds(t).get(LOCK_WAIT, 0.0))
    worst_s = thread_state_seconds(worst).get(LOCK_WAIT, 0.0)
    return [
        f"Threads waited {wait:.2f} s in total for locks ({n.share(LOCK_WAIT) * 100:.0f}% of "
        f"their time); {thread_label(worst)} waited longest, {worst_s:.2f} s. Time spent waiting "
        "for a lock is time no other core can use for that thread."
    ]


def _end_reading(model: RunModel) -> list[str]:
    ended = [
        (thread, text)
        for thread in ordered_threads(model)
        if (text := thread_end_text(thread, model.markers)) is not None
    ]
    if len(ended) <= END_SENTENCES:
        return [f"{thread_label(thread)} was {text}." for thread, text in ended]
    counts: dict[str, int] = {}
    for thread, _ in ended:
        reason = end_reason_words(thread.end_reason)
        counts[reason] = counts.get(reason, 0) + 1
    said = _and([f"{count} {reason}" for reason, count in counts.items()])
    examples = _and([thread_label(t) for t, _ in ended[:3]])
    return [
        f"{len(ended)} threads were cut off: {said} (for example {examples}); the thread table "
        "says where each one stopped."
    ]


# ---------------------------------------------------------------------------------------------
# Words for locks, deadlocks and thread ends, shared by the HTML report and the terminal


def end_reason_words(reason: str | None) -> str:
    if reason is None:
        return "—"
    return END_REASON_WORDS.get(reason, reason.replace("_", " "))


def marker_words(marker: Marker) -> str:
    """A mark as a reader says it: ``iteration i=1``."""
    fields = " ".join(f"{key}={value}" for key, value in marker.fields.items())
    return f"{marker.name} {fields}".strip()


def thread_end_text(thread: ThreadTimeline, markers: Sequence[Marker] = ()) -> str | None:
    """Why and where a cut-off thread stopped, or None when it ended on its own.

    ``last_stack[0]`` is the innermost frame seen last; the thread's last mark with fields (if any)
    says how far its own loop got, which the stack alone cannot.
    """
    if thread.end_reason not in CUT_OFF:
        return None
    text = END_REASON_WORDS[thread.end_reason]
    if thread.last_stack:
        text += f" while in {thread.last_stack[0]}"
    end = thread.end_s if thread.end_s is not None else float("inf")
    marks = [
        m
        for m in markers
        if m.tid == thread.tid and m.kind == "mark" and m.fields and m.start <= end
    ]
    if marks:
        text += f"; its last mark was {marker_words(max(marks, key=lambda m: m.start))}"
    return text


def thread_names(model: RunModel) -> dict[int, str]:
    """tid -> the thread's name, for naming holders and waiters."""
    return {t.tid: t.name for t in model.threads}


def _thread_called(tid: Any, names: dict[int, str]) -> str:
    if tid is None:
        return "an unknown thread"
    return names.get(int(tid), f"thread {tid}")


def _and(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def lock_called(ref: dict[str, Any]) -> str:
    """A lock's name, or its number: lock rows and cycles say ``id``, wait and hold details
    ``lock``."""
    name = ref.get("name")
    if name:
        return str(name)
    number = ref.get("id", ref.get("lock"))
    return f"lock #{'?' if number is None else number}"


def deadlock_sentence(cycle: Sequence[dict[str, Any]], names: dict[int, str]) -> str:
    """One cycle in words: "first holds lock_a and waits for lock_b, held by second; ..."."""
    called = dict(names)
    for step in cycle:
        if step.get("tid") is not None and step.get("thread"):
            called[int(step["tid"])] = str(step["thread"])
    parts = []
    for step in cycle:
        who = _thread_called(step.get("tid"), called)
        waits = lock_called(step.get("waits_for") or {})
        holder = _thread_called(step.get("held_by"), called)
        holds = [lock_called(h) for h in step.get("holds") or []]
        held = f"holds {_and(holds)} and " if holds else ""
        parts.append(f"{who} {held}waits for {waits}, held by {holder}")
    return "; ".join(parts)


def deadlock_sentences(model: RunModel) -> list[str]:
    names = thread_names(model)
    return [deadlock_sentence(cycle, names) for cycle in model.deadlocks if cycle]


def describe_wait(detail: dict[str, Any] | None, labels: dict[int, str]) -> str:
    """A lock wait's detail in words: which primitive, of what kind, held by whom, how it ended.

    ``labels`` maps tids to the name the reader sees elsewhere (thread labels in the report)."""
    if not detail:
        return "on a lock (not recorded which)"
    text = f"on {lock_called(detail)} ({detail.get('kind') or 'lock'})"
    holder = detail.get("holder")
    if holder is not None:
        text += f", held by {labels.get(int(holder), f'thread {holder}')}"
    if detail.get("unfinished"):
        text += "; still waiting when the run ended"
    elif detail.get("ok") is False:
        text += "; gave up (timed out)"
    return text


def viztracer_headlines(model: RunModel) -> list[str]:
    """What VizTracer did to this run, said before anything else when it matters: its buffer
    overflowed (calls are missing), or it slowed the program enough to change what the numbers
    say. The full sentences, with their inputs, are the first warnings."""
    metrics = model.metrics
    lines = []
    if metrics.get("viztracer_overflow"):
        share = metrics.get("viztracer_dropped_share")
        lost = f"about {share:.0%} of the calls" if share else "the oldest calls"
        lines.append(f"VizTracer's buffer overflowed: {lost} were dropped from trace.json "
                     "(see the warnings).")
    slowdown = metrics.get("viztracer_slowdown")
    if slowdown is not None and slowdown > VIZTRACER_MATERIAL_SLOWDOWN:
        low = float(metrics.get("viztracer_slowdown_low", slowdown))
        high = metrics.get("viztracer_slowdown_high")
        ratio = (f"at least {low:.1f}x" if high is None
                 else f"about {slowdown:.1f}x ({low:.1f}-{float(high):.1f}x)"
                 if f"{low:.1f}" != f"{float(high):.1f}" else f"about {slowdown:.1f}x")
        calls = count_words(int(metrics.get("viztracer_calls", 0)))
        lines.append(f"VizTracer slowed this run {ratio}, estimated from its {calls} calls: the "
                     "timings are the traced program's; without --viztracer they are closer to "
                     "the real ones.")
    return lines


def fmt_seconds(seconds: float | None) -> str:
    """Seconds in the unit a reader compares at a glance: s, ms or µs."""
    if seconds is None:
        return "—"
    if seconds == 0:
        return "0"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


# ---------------------------------------------------------------------------------------------
# Per-thread GIL figures with their uncertainty, shared by the HTML report and the terminal


@dataclass(frozen=True)
class GilFigureWords:
    """One thread's GIL figures as a reader sees them. Sampled figures carry their uncertainty:
    shares as ``41% ±2 pp`` (95%), and a wait count or longest wait the samples cannot pin
    down as the estimate with the bounds they prove, ``523 (303–945)``."""

    held: str
    wait: str
    waits: str
    longest: str


def gil_figure_words(thread: ThreadTimeline) -> GilFigureWords:
    """``—`` everywhere when the run did not measure the GIL."""
    if thread.gil_waits is None:
        return GilFigureWords("—", "—", "—", "—")
    sampled = thread.gil_sampled
    life = (thread.end_s or 0.0) - (thread.start_s or 0.0)
    if sampled is None:
        def share(seconds: float | None) -> str:
            return f"{(seconds or 0.0) / life:.0%}" if life > 0 else "—"

        return GilFigureWords(share(thread.gil_held_s), share(thread.gil_wait_s),
                              f"{thread.gil_waits:,}", fmt_seconds(thread.max_gil_wait_s))
    return GilFigureWords(
        held=_share_pm(sampled.gil_held_share, sampled.gil_held_share_pm),
        wait=_share_pm(sampled.gil_wait_share, sampled.gil_wait_share_pm),
        waits=_count_range(thread.gil_waits, sampled.gil_waits_low, sampled.gil_waits_high),
        longest=_seconds_range(thread.max_gil_wait_s or 0.0, sampled.max_gil_wait_low_s,
                               sampled.max_gil_wait_high_s),
    )


def _share_pm(share: float, pm: float) -> str:
    points = pm * 100
    return f"{share:.0%} ±{points:.0f} pp" if points >= 1 else f"{share:.0%} ±{points:.1f} pp"


def _count_range(estimate: int, low: int, high: int | None) -> str:
    if high is None:
        return f"{estimate:,} (≥{low:,})"
    if low == high:
        return f"{estimate:,}"
    return f"{estimate:,} ({low:,}–{high:,})"


def _seconds_range(estimate: float, low: float, high: float) -> str:
    if estimate == 0 and high == 0:
        return "0"
    if abs(high - low) < 1e-6:
        return fmt_seconds(estimate)
    return f"{fmt_seconds(estimate)} ({fmt_seconds(low)}–{fmt_seconds(high)})"


def sampled_gil_reading(model: RunModel) -> list[str]:
    """With a sampled GIL source: what its figures can and cannot say, on the thread that
    waited longest for the GIL."""
    sampled = [t for t in model.threads if t.gil_sampled is not None and t.gil_waits]
    if not sampled:
        return []
    worst = max(sampled, key=lambda t: t.gil_wait_s or 0.0)
    figures = worst.gil_sampled
    assert figures is not None
    words = gil_figure_words(worst)
    count = (f"in about {worst.gil_waits:,} waits"
             if figures.gil_waits_low == figures.gil_waits_high
             else f"in about {worst.gil_waits:,} waits (the samples prove at least "
                  f"{figures.gil_waits_low:,}" + (
                      f" and allow at most {figures.gil_waits_high:,})"
                      if figures.gil_waits_high is not None else ")"))
    longest = fmt_seconds(worst.max_gil_wait_s)
    bounds = (f" (at least {fmt_seconds(figures.max_gil_wait_low_s)}, at most "
              f"{fmt_seconds(figures.max_gil_wait_high_s)})")
    turns = (f"; {figures.hidden_turns:,} of its GIL turns fell between samples, seen only "
             "through the GIL's switch counter and its own context switches"
             if figures.hidden_turns else "")
    return [
        f"The GIL was sampled every {figures.period_ms:.1f} ms, so its figures carry their "
        f"uncertainty (± is a 95% range; counts and longest waits the samples cannot pin down "
        f"come with the bounds they prove). {thread_label(worst)} waited longest: "
        f"{words.wait} of its life, {count}{turns}. Its longest wait lasted about {longest}"
        f"{bounds}."
    ]
