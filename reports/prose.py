"""Every sentence the renderers say: the explanation of a run, deadlocks, lock waits, how threads
ended, what VizTracer did to the run, and the run's status.

The wording is chosen from the measurements (parallelism against 1 and against the cores,
shares of time per state), never from the scenario's name: a user's own program gets the same
honest reading as a scenario. Sentences read the :class:`~reports.view.ReportView`, so the page,
the terminal and the figures' hover texts say the same thing about the same threads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from reports.format import and_list, fmt_seconds, gil_figure_words, plural, short_file
from reports.tasks_view import LoopView, PoolView, TasksView
from reports.threads import ThreadSelection, thread_label, thread_state_seconds
from reports.view import BUSY_SHARE, ReportView, RunNumbers
from reports.vocabulary import (
    CUT_OFF,
    HOLDER_CODE_UNKNOWN,
    STATUS_HEADLINES,
    STATUS_WORDS,
    blocked_cause_phrase,
    end_reason_words,
    stack_source_words,
    state_name,
    state_phrase,
    wait_kind_words,
)
from reports.where_view import Culprit, GilWaiter, WhereView
from tracer.model.schema import (
    BLOCKED,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    RUNNING,
    SIGNAL_WAIT,
    STATES,
    BlockedStep,
    DeadlockStep,
    Frame,
    HoldDetail,
    Marker,
    PhaseKind,
    PoolStats,
    RunModel,
    TaskKind,
    TaskOutcome,
    ThreadTimeline,
    WaitDetail,
)
from tracer.model.tasks import waited_for_worker
from tracer.model.viztracer_cost import MATERIAL_SLOWDOWN as VIZTRACER_MATERIAL_SLOWDOWN
from tracer.model.viztracer_cost import count_words
from tracer.raw_files import RunStatus, SourceName

# The recorders a stack can come from: the ones the "no stacks" line gives reasons for.
STACK_SOURCES = (SourceName.PYSPY, SourceName.VIZTRACER)

# Parallelism within this margin of a whole number reads as "about" that number: the OS sampler
# and bin edges blur the mean by a few percent, so 0.93 on a GIL-bound run is "about one core".
ABOUT_MARGIN = 0.15
# The least time a sentence writes as more than zero (fmt_seconds says "0 µs" below it).
VISIBLE_S = 0.5e-6
# Culprits (where the time went) the explanation names; the terminal names the same first ones.
CULPRIT_SENTENCES = 3
# Waiting for a signal gets its own sentence from this share of the threads' time: below it, the
# state shares' sentence has said it. A signal wait is time a thread was told to spend idle (a
# worker's Event.wait(0.05) poll, a queue get), not something another thread kept from it.
SIGNAL_SHARE = 0.05
# A culprit or the longest GIL waiter is named when it accounts for this share of the wall time
# (culprits) or of the waiter's life: below it, nothing anyone would change.
WHERE_MATERIAL_SHARE = 0.05
# Kinds of signal wait named in that sentence, biggest first.
SIGNAL_KINDS_NAMED = 3
# Cut-off threads named one sentence each in the explanation; past this many (a daemon pool killed
# at exit) they are counted instead, with a few names as examples.
END_SENTENCES = 5


def explain(view: ReportView) -> list[str]:
    """Paragraphs that say, in plain words and with the measured numbers, what the threads did."""
    model, numbers = view.model, view.numbers
    if not model.threads:
        return ["No threads were recorded, so there is nothing to explain about them."]
    paragraphs = [_headline(numbers)]
    paragraphs += [f"The program deadlocked: {sentence}." for sentence in deadlock_sentences(view)]
    paragraphs += _parallelism_reading(numbers)
    paragraphs.append(_state_shares(numbers))
    paragraphs += _gil_reading(numbers)
    paragraphs += sampled_gil_reading(model)
    paragraphs += _lock_reading(model, numbers)
    paragraphs += _signal_reading(model, numbers)
    paragraphs += blocked_reading(model, numbers)
    paragraphs += process_reading(model)
    paragraphs += where_reading(view)
    paragraphs += pool_reading(view.tasks)
    paragraphs += loop_reading(view.tasks)
    paragraphs += _end_reading(view)
    if failed(model):
        paragraphs.append(
            f"The run did not finish normally (status: {model.target.status}), so these figures "
            "cover only the part that was recorded."
        )
    return paragraphs


# Blocked time gets its own sentence from this share of the threads' time; it names the
# biggest cause of this many groups of threads (threads named alike, "writer-1", "writer-2").
BLOCKED_SHARE = 0.05
BLOCKED_GROUPS_NAMED = 4
_NUMBERED = re.compile(r"[-_ .:#]*\d+$")


def thread_family(name: str) -> str:
    """The name threads made alike share: "writer-3" -> "writer", "pool_0" -> "pool"."""
    return _NUMBERED.sub("", name) or name


def blocked_reading(model: RunModel, n: RunNumbers) -> list[str]:
    """What blocked the threads, when blocked time is a real part of their time: per group of
    threads named alike, the biggest cause and its measured seconds (model ``blocked_by``)."""
    if n.state_s.get(BLOCKED, 0.0) < VISIBLE_S or n.share(BLOCKED) < BLOCKED_SHARE:
        return []
    groups: dict[str, tuple[list[ThreadTimeline], dict[str, float]]] = {}
    for thread in model.threads:
        if not thread.blocked_by:
            continue
        members, causes = groups.setdefault(thread_family(thread.name), ([], {}))
        members.append(thread)
        for cause, seconds in thread.blocked_by.items():
            causes[cause] = causes.get(cause, 0.0) + seconds
    tops = sorted(((members, family, *max(causes.items(), key=lambda c: c[1]))
                   for family, (members, causes) in groups.items()), key=lambda g: -g[3])
    parts = []
    for members, family, cause, seconds in tops[:BLOCKED_GROUPS_NAMED]:
        if seconds < VISIBLE_S:
            continue
        who = (thread_label(members[0]) if len(members) == 1
               else f"the {len(members)} {family} threads")
        parts.append(f"{who} spent {seconds_words(seconds)} blocked "
                     f"{blocked_cause_phrase(cause)}")
    if not parts:
        return []
    return [f"What blocked the threads, from the syscall each slept in: {'; '.join(parts)}."]


def process_reading(model: RunModel) -> list[str]:
    """What the child processes did, from their measured figures: the thread phase and the
    process phase side by side when the run had both (the model's ``phases``), else the
    children's CPU; then what is known of their GILs."""
    children = model.processes[1:]
    if not children:
        return []
    cores = plural(model.cores, "core")
    phases = {phase.kind: phase for phase in model.phases}
    threads, procs = phases.get(PhaseKind.THREADS), phases.get(PhaseKind.PROCESSES)
    out: list[str] = []
    if threads is not None and procs is not None:
        out.append(
            f"The run had a thread phase and a process phase. {plural(threads.workers, 'thread')} "
            f"worked from {threads.start_s:.2f} to {threads.end_s:.2f} s at a CPU parallelism of "
            f"{threads.parallelism:.2f}; {plural(procs.workers, 'child process')} from "
            f"{procs.start_s:.2f} to {procs.end_s:.2f} s at {procs.parallelism:.2f} "
            f"(on {cores}).")
    elif procs is not None:
        out.append(
            f"{plural(procs.workers, 'child process').capitalize()} used "
            f"{seconds_words(procs.cpu_s)} of CPU between {procs.start_s:.2f} and "
            f"{procs.end_s:.2f} s: a CPU parallelism of {procs.parallelism:.2f} on {cores}.")
    else:
        cpu = sum(p.cpu_s or 0.0 for p in children)
        out.append(f"It started {plural(len(children), 'child process')}, which used "
                   f"{seconds_words(cpu)} of CPU in all.")
    followed = [p for p in children if p.gil is not None]
    if followed:
        waits = sum(p.gil.waits for p in followed if p.gil is not None)
        wait_s = sum(p.gil.wait_s for p in followed if p.gil is not None)
        whose = (f"the {len(followed)} forked children perf followed" if len(followed) > 1
                 else "the forked child perf followed")
        out.append(
            f"Each process has its own GIL: in {whose}, threads waited "
            f"{seconds_words(wait_s)} for theirs ({plural(waits, 'wait')})." if waits else
            f"Each process has its own GIL: no thread of {whose} waited for its GIL.")
    elif model.metrics.gil is not None:
        out.append("The GIL figures are the target process's: the GIL recorders did not follow "
                   "its children (perf follows forked ones when it runs).")
    return out


def failed(model: RunModel) -> bool:
    """The run was cut short or did not end normally: every renderer says so first."""
    return model.partial or not RunStatus.of(model.target.status).normal


def seconds_words(seconds: float) -> str:
    """Seconds inside a sentence: two decimals, or a finer unit where two decimals would say
    "0.00 s" of time that was measured."""
    if seconds >= 0.005:
        return f"{seconds:.2f} s"
    return f"{fmt_seconds(seconds)} s" if seconds == 0 else fmt_seconds(seconds)


def share_words(share: float) -> str:
    """A share of time inside a sentence; "under 1%" rather than a "0%" of measured time."""
    return f"{share * 100:.0f}%" if share >= 0.005 or share == 0 else "under 1%"


def _headline(n: RunNumbers) -> str:
    threads = plural(n.threads, "thread")
    text = (f"{threads} used {seconds_words(n.cpu_s)} of CPU in {seconds_words(n.wall_s)} of "
            "wall time")
    if n.parallelism is None:
        return text + "; the wall time is zero, so no CPU parallelism can be computed."
    return (
        f"{text}: a CPU parallelism of {n.parallelism:.2f} on a machine with "
        f"{plural(n.cores, 'core')}."
    )


def _parallelism_reading(n: RunNumbers) -> list[str]:
    """What the run's mean parallelism says, and only that. A counterfactual ("adding threads
    did not add speed", "processes would help") needs a run that measured the alternative (a
    scenario that compares, or phases); a single run's mean cannot tell it, so it is not said
    here: a queue pipeline whose 4 workers ran 3.6x faster than 1 was once told otherwise."""
    p = n.parallelism
    if p is None:
        return []
    rate = f"{p:.2f} CPU-s per wall second on {plural(n.cores, 'core')}"
    busy = len(n.busy_threads)
    if busy >= 2 and p < 1 + ABOUT_MARGIN:
        wanted = ("wanted a CPU (were on one or waiting for the GIL)" if n.gil_measured
                  else "were on a CPU")
        return [f"{busy} threads {wanted} for at least {BUSY_SHARE:.0%} of the run each, and "
                f"together they used {rate}."]
    if p >= 1 + ABOUT_MARGIN:
        saturated = n.cores > 0 and p >= n.cores - ABOUT_MARGIN
        where = "all the machine's cores were busy" if saturated else "more than one core was busy"
        native = n.state_s.get(NATIVE, 0.0)
        text = f"On average {where} ({rate})"
        if native > 0:
            text += (f"; the threads spent {seconds_words(native)} on a CPU in native code "
                     "without the GIL")
        return [text + "."]
    if p < 0.5:
        off = 1.0 - n.on_cpu_share()
        return [f"Less than half a core was busy on average ({rate}): the threads were off a "
                f"CPU for {share_words(off)} of the time they existed."]
    return []


def _state_shares(n: RunNumbers) -> str:
    """Each state's share of the threads' time; a state whose share rounds to 0% has nothing
    to say and is left out."""
    known = [(state_phrase(s), n.state_s.get(s, 0.0), s) for s in STATES]
    unknown = [(s, seconds, s) for s, seconds in n.state_s.items() if s not in STATES]
    parts = [
        f"{share_words(n.share(state))} {phrase} ({seconds_words(seconds)})"
        for phrase, seconds, state in [*known, *unknown]
        if seconds > 0 and n.share(state) >= 0.005
    ]
    if not parts:
        return "No per-thread state was recorded, only the totals above."
    return (f"Of the {seconds_words(n.thread_time_s)} the threads existed in total: "
            + "; ".join(parts) + ".")


def _gil_reading(n: RunNumbers) -> list[str]:
    if not n.gil_measured:
        return [
            "GIL ownership was not measured in this run: the timeline shows only whether each "
            "thread was on a CPU or off it, as the operating system saw it."
        ]
    wait = n.state_s.get(GIL_WAIT, 0.0)
    if wait < VISIBLE_S:
        return ["No thread had to wait for the GIL."]
    text = (
        f"Threads waited {seconds_words(wait)} in total for the GIL "
        f"({share_words(n.share(GIL_WAIT))} of their time)"
    )
    if n.mean_gil_waiters is not None and n.mean_gil_waiters >= 0.005:
        text += f"; on average {n.mean_gil_waiters:.2f} threads were queued for it"
    if n.gil_switches_per_s is not None and n.gil_switches_per_s >= 0.5:
        text += f", and the GIL changed hands {n.gil_switches_per_s:.0f} times per second"
    return [text + "."]


def _lock_reading(model: RunModel, n: RunNumbers) -> list[str]:
    """Lock waits with the figures that show them; no zeros: when no wait shows at the
    precision a sentence uses, it says that no lock made a thread wait (if locks were
    recorded at all)."""
    wait = n.state_s.get(LOCK_WAIT, 0.0)
    if wait < VISIBLE_S:
        if wait > 0:
            return ["Lock waits added up to less than 1 µs in all."]
        recorded = bool(model.locks) or "locks" in model.figure_sources
        return ["No lock made a thread wait."] if recorded else []
    worst = max(model.threads, key=lambda t: thread_state_seconds(t).get(LOCK_WAIT, 0.0))
    worst_s = thread_state_seconds(worst).get(LOCK_WAIT, 0.0)
    waited = _waited_on(worst, LOCK_WAIT)
    on = f", on {waited[0][0]}" if waited else ""
    top = next((row for row in model.locks if row.contention and row.wait_s > 0), None)
    most = (f", most on {top.name} ({top.contended:,} contended "
            f"acquisition{'' if top.contended == 1 else 's'}, {seconds_words(top.wait_s)})"
            if top is not None else "")
    return [
        f"Threads waited {seconds_words(wait)} in total for locks held by other threads "
        f"({share_words(n.share(LOCK_WAIT))} of their time){most}; {thread_label(worst)} "
        f"waited longest, {seconds_words(worst_s)}{on}."
    ]


def _waited_on(thread: ThreadTimeline, state: str) -> list[tuple[str, str, float]]:
    """What ``thread`` waited on in ``state``: (primitive's name, kind, seconds), biggest first,
    from its intervals' details (empty when they have none)."""
    totals: dict[tuple[str, str], float] = {}
    for interval in thread.intervals:
        detail = interval.detail
        if interval.state == state and isinstance(detail, WaitDetail):
            key = (lock_called(detail.name, detail.lock), detail.kind)
            totals[key] = totals.get(key, 0.0) + interval.duration
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [(name, kind, seconds) for (name, kind), seconds in ranked]


def _signal_reading(model: RunModel, n: RunNumbers) -> list[str]:
    """Waiting for a signal (Event, Condition, Barrier, queue), apart from lock contention and
    only when it is a real part of the threads' time: the thread that waited most, and on what."""
    wait = n.state_s.get(SIGNAL_WAIT, 0.0)
    if wait < VISIBLE_S or n.share(SIGNAL_WAIT) < SIGNAL_SHARE:
        return []
    worst = max(model.threads, key=lambda t: thread_state_seconds(t).get(SIGNAL_WAIT, 0.0))
    worst_s = thread_state_seconds(worst).get(SIGNAL_WAIT, 0.0)
    named = [f"{wait_kind_words(kind)} on {name}, {seconds_words(seconds)}"
             for name, kind, seconds in _waited_on(worst, SIGNAL_WAIT)[:SIGNAL_KINDS_NAMED]
             if seconds >= VISIBLE_S]
    what = f" ({'; '.join(named)})" if named else ""
    others = sum(1 for t in model.threads if thread_state_seconds(t).get(SIGNAL_WAIT, 0.0) > 0)
    total = (f"; all threads together {seconds_words(wait)} "
             f"({share_words(n.share(SIGNAL_WAIT))} of their time)"
             if others > 1 and seconds_words(wait) != seconds_words(worst_s) else "")
    return [
        f"{thread_label(worst)} spent {seconds_words(worst_s)} waiting for a signal{what}"
        f"{total}. That is not lock contention: no thread held what it waited for."
    ]


def _end_reading(view: ReportView) -> list[str]:
    ended = [
        (thread, text)
        for thread in view.threads
        if (text := thread_end_text(thread, view.model.markers)) is not None
    ]
    if len(ended) <= END_SENTENCES:
        return [f"{thread_label(thread)} was {text}." for thread, text in ended]
    counts: dict[str, int] = {}
    for thread, _ in ended:
        reason = end_reason_words(thread.end_reason)
        counts[reason] = counts.get(reason, 0) + 1
    said = and_list([f"{count} {reason}" for reason, count in counts.items()])
    examples = and_list([thread_label(t) for t, _ in ended[:3]])
    return [
        f"{len(ended)} threads were cut off: {said} (for example {examples}); the thread table "
        "says where each one stopped."
    ]


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


def sampled_gil_note(period_ms: float) -> str:
    """What a sampled source's ± and ranges mean in the thread table's GIL columns."""
    return (f"GIL figures were sampled every {period_ms:.1f} ms. Shares are of each "
            "thread's life; ± is a 95% range (the sampling's quantisation and what the "
            "sampler's own ticks can shift). Where the samples cannot count waits or time "
            "the longest one, the figure is an estimate and (low–high) the bounds they "
            "prove: a wait between two samples shows only in the GIL's switch counter and "
            "the threads' context switches.")


def sampled_gil_title(period_ms: float) -> str:
    """The terminal GIL table's title note for sampled figures."""
    return (f" (sampled every {period_ms:.1f} ms: ± is a 95% range, (low–high) the bounds "
            "the samples prove)")


# ---------------------------------------------------------------------------------------------
# Where the time went: which code, and who kept whom waiting


def where_reading(view: ReportView) -> list[str]:
    """The explanation's paragraph on code: the thread that waited longest for the GIL and
    whose code held it meanwhile, then the biggest culprits, each with its numbers."""
    where = view.where
    if where is None or not where.has_rows:
        return []
    waiter = where.gil_waiter
    sentences = [gil_waiter_sentence(waiter)] if waiter is not None and waiter.life_s > 0 and (
        waiter.wait_s >= WHERE_MATERIAL_SHARE * waiter.life_s) else []
    sentences += [culprit_sentence(c)
                  for c in _material(where, view.model.wall_s)[:CULPRIT_SENTENCES]]
    return [" ".join(sentences)] if sentences else []


def where_items(where: WhereView | None, wall_s: float,
                count: int = CULPRIT_SENTENCES) -> list[str]:
    """The biggest culprits, one sentence each (the terminal prints these)."""
    if where is None:
        return []
    return [culprit_sentence(c) for c in _material(where, wall_s)[:count]]


def _material(where: WhereView, wall_s: float) -> list[Culprit]:
    """Culprits worth a sentence: each accounts for a share of the run's wall time (a 2 ms
    wait in a 2 s run of sleeping threads names nothing anyone would change)."""
    return [c for c in where.culprits if c.seconds >= WHERE_MATERIAL_SHARE * wall_s]


def frame_words(frame: Frame | None) -> str:
    """A frame inside a sentence: ``client() (convoy.py:19)``."""
    if frame is None:
        return "code that was not sampled"
    return f"{frame.function}() ({short_file(frame.file)}:{frame.line})"


def _holder_clause(c: Culprit, what: str) -> str:
    share = f"{c.share:.0%} of that time"
    if c.holder is None:
        return f"for {share} no single thread held {what}, or the recording cannot tell who did"
    if c.holder_frame is None:
        return f"{share} {c.holder} held {what} ({HOLDER_CODE_UNKNOWN})"
    return f"{share} {c.holder} held {what}, in {frame_words(c.holder_frame)}"


def culprit_sentence(c: Culprit) -> str:
    """One culprit with its numbers, e.g. "io-client waited 1.200 s for the GIL in client()
    (convoy.py:19); 94% of that time cpu-spinner held it, in spin() (convoy.py:25)."."""
    seconds = fmt_seconds(c.seconds)
    code = frame_words(c.frame)
    threads = and_list(list(c.who))
    if c.blamed:
        waited = "the GIL" if c.state == GIL_WAIT else (c.lock or "a lock")
        return f"{threads} waited {seconds} for {waited} in {code}; {_holder_clause(c, 'it')}."
    share = f"{c.share:.0%} of all the time {state_phrase(c.state)}"
    if c.state == RUNNING:
        return (f"The code that held the GIL longest was {code}: {seconds}, {share}, "
                f"on {threads}.")
    if c.state == NATIVE:
        return (f"The native code that ran longest without the GIL was called from {code}: "
                f"{seconds}, {share}, on {threads}.")
    return f"Most time {state_phrase(c.state)} was in {code}: {seconds}, {share}, on {threads}."


def gil_waiter_sentence(waiter: GilWaiter) -> str:
    """E.g. "loop (tid 1) spent 54% of its time waiting for the GIL (1.200 s of 2.222 s); it was
    held by pool-0 (tid 5) for 0.700 s and pool-1 (tid 6) for 0.500 s."."""
    held = [f"{holder or 'nobody (or an unknown thread)'} for {fmt_seconds(seconds)}"
            for holder, seconds in waiter.holders]
    if waiter.other_holders:
        held.append(f"{plural(waiter.other_holders, 'other thread')} for "
                    f"{fmt_seconds(waiter.other_s)}")
    return (f"{waiter.thread} spent {waiter.share:.0%} of its time waiting for the GIL "
            f"({fmt_seconds(waiter.wait_s)} of {fmt_seconds(waiter.life_s)}); meanwhile it was "
            f"held by {and_list(held)}.")


def where_source_line(where: WhereView) -> str:
    """Which stack source attributed the time, and how often it looked."""
    rate = f", at {where.rate_hz:g} Hz" if where.rate_hz else ""
    return f"Stacks from {stack_source_words(where.source)}{rate}."


def where_absent(model: RunModel) -> str:
    """The one line the section says when no time was attributed to code, and why."""
    if model.where is None:
        return ("No Python stacks were attributed to time in this run: the model was built "
                "without them.")
    reasons = [f"{name}: {source.reason}" for name, source in model.sources.items()
               if name in STACK_SOURCES and not source.used and source.reason]
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return f"No Python stacks were recorded in this run{why}, so no time can be put on code."


def where_unattributed(where: WhereView) -> str:
    """How much of the threads' time no stack covers, per state ("" when none)."""
    if not where.unattributed_s:
        return ""
    total = sum(where.unattributed_s.values())
    parts = [f"{state_name(state)} {fmt_seconds(seconds)}"
             for state, seconds in sorted(where.unattributed_s.items(), key=lambda i: -i[1])]
    return (f"{fmt_seconds(total)} of the threads' time has no stack (before a thread's first "
            f"stack sample, or in a process the stack source did not see) and is not shown "
            f"here: {', '.join(parts)}.")


def where_left_out(where: WhereView) -> str:
    """What the flame graph's budget left out ("" when it kept every row)."""
    flame = where.flame
    if not flame.left_out_rows:
        return ""
    share = flame.left_out_s / where.total_s if where.total_s > 0 else 0.0
    return (f"The flame graph draws the {len(flame.rows):,} largest of {flame.total_rows:,} "
            f"(thread, state, stack) rows; the other {flame.left_out_rows:,} covered "
            f"{fmt_seconds(flame.left_out_s)} ({share:.1%} of the time put on stacks) and are "
            "in model.json. The function table counts every row.")


def flame_words() -> dict[str, str]:
    """The flame graph's sentences, filled in by the page's script ({braces} are its values)."""
    return {
        "hidden": "{count} frames narrower than a pixel are not drawn ({seconds} in all); "
                  "their time is inside their caller's width. Click a frame to zoom in.",
        "empty": "No stack was recorded in this state on this thread.",
        "title": "{function} ({file}:{line})\n{seconds}, {share} of {selection}",
        "root": "{selection}: {seconds}",
        "zoomed": "Zoomed into {frame}: {seconds}, {share} of {selection}.",
    }


# ---------------------------------------------------------------------------------------------
# Thread ends and marks


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
    text = end_reason_words(thread.end_reason)
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


def folded_caption(selection: ThreadSelection, total: int) -> str:
    """The terminal thread table's caption when it folds threads."""
    rows = "a row" if len(selection.groups) == 1 else f"{len(selection.groups)} rows"
    return (
        f"{selection.folded} of {total} threads are folded into {rows} (their "
        "sums); report.html lists every thread, and trace.json has all their events."
    )


# ---------------------------------------------------------------------------------------------
# Locks and deadlocks


def _thread_called(tid: int | None, names: Mapping[int, str]) -> str:
    if tid is None:
        return "an unknown thread"
    return names.get(int(tid), f"thread {tid}")


def lock_called(name: str | None, number: int | None) -> str:
    """A lock's name, or its number when it has none."""
    if name:
        return name
    return f"lock #{'?' if number is None else number}"


def deadlock_sentence(cycle: Sequence[DeadlockStep], names: Mapping[int, str]) -> str:
    """One cycle in words: "first holds lock_a and waits for lock_b, held by second; ..."."""
    called = dict(names)
    for step in cycle:
        if step.thread:
            called[step.tid] = step.thread
    parts = []
    for step in cycle:
        who = _thread_called(step.tid, called)
        waits = lock_called(step.waits_for.name, step.waits_for.id)
        holder = _thread_called(step.held_by, called)
        holds = [lock_called(h.name, h.id) for h in step.holds]
        held = f"holds {and_list(holds)} and " if holds else ""
        parts.append(f"{who} {held}waits for {waits}, held by {holder}")
    return "; ".join(parts)


def deadlock_sentences(view: ReportView) -> list[str]:
    return [deadlock_sentence(cycle, view.names) for cycle in view.model.deadlocks if cycle]


def describe_wait(detail: WaitDetail | HoldDetail | None, labels: Mapping[int, str]) -> str:
    """A lock wait's detail in words: which primitive, of what kind, held by whom, how it ended.

    ``labels`` maps tids to the name the reader sees elsewhere (thread labels in the report)."""
    if not isinstance(detail, WaitDetail):
        return "on a lock (not recorded which)"
    text = f"on {lock_called(detail.name, detail.lock)} ({detail.kind or 'lock'})"
    if detail.holder is not None:
        text += f", held by {labels.get(detail.holder, f'thread {detail.holder}')}"
    if detail.unfinished:
        text += "; still waiting when the run ended"
    elif not detail.ok:
        text += "; gave up (timed out)"
    return text


# ---------------------------------------------------------------------------------------------
# The run's status and VizTracer's effect on it


def status_banner(model: RunModel) -> str:
    """The banner's headline word: the worst thing about the run."""
    status = model.target.status
    if not RunStatus.of(status).normal:
        headline = STATUS_HEADLINES.get(status, status.upper())
        return headline + (" — partial recording" if model.partial else "")
    return "PARTIAL recording" if model.partial else ""


def failure_text(model: RunModel) -> str:
    """The banner's sentence: how the target ended and what that means for the figures."""
    target = model.target
    text = f"The target {STATUS_WORDS.get(target.status, target.status)}"
    if target.exit_code is not None:
        text += f" (exit code {target.exit_code})"
    if model.partial:
        text += "; the recording is partial, so figures cover only what was captured"
    if target.error:
        text += f": {target.error}"
    return text + "."


def viztracer_headlines(model: RunModel) -> list[str]:
    """What VizTracer did to this run, said before anything else when it matters: its buffer
    overflowed (calls are missing), or it slowed the program enough to change what the numbers
    say. The full sentences, with their inputs, are the first warnings."""
    figures = model.metrics.viztracer
    lines: list[str] = []
    if figures is None:
        return lines
    if figures.overflow:
        share = figures.dropped_share
        lost = f"about {share:.0%} of the calls" if share else "the oldest calls"
        lines.append(f"VizTracer's buffer overflowed: {lost} were dropped from trace.json "
                     "(see the warnings).")
    cost = figures.cost
    if cost is not None and cost.slowdown > VIZTRACER_MATERIAL_SLOWDOWN:
        slowdown, low, high = cost.slowdown, cost.slowdown_low, cost.slowdown_high
        ratio = (f"at least {low:.1f}x" if high is None
                 else f"about {slowdown:.1f}x ({low:.1f}-{high:.1f}x)"
                 if f"{low:.1f}" != f"{high:.1f}" else f"about {slowdown:.1f}x")
        calls = count_words(cost.calls)
        lines.append(f"VizTracer slowed this run {ratio}, estimated from its {calls} calls: the "
                     "timings are the traced program's; without --viztracer they are closer to "
                     "the real ones.")
    return lines


# ----------------------------------------------------------------------------------------------
# Tasks: pools and event loops


def _range_words(low: float, high: float) -> str:
    """"0.30 s", or "0.30-0.61 s" when the two differ as written."""
    a, b = f"{low:.2f}", f"{high:.2f}"
    return f"{a} s" if a == b else f"{a}-{b} s"


def pool_sentence(pool: PoolView) -> str:
    """What one pool did, from its figures: how many tasks on how many workers, how long they
    waited for a free worker and why, how they ended."""
    stats = pool.stats
    kind = "process pool" if stats.kind is TaskKind.PROCESS_POOL else "pool"
    parts = [f"The {kind} {stats.name} ran {plural(stats.tasks, 'task')}"]
    if stats.starts_seen:
        worker = "worker thread" if stats.kind is TaskKind.THREAD_POOL else "worker process"
        parts[0] += f" on {plural(stats.workers_started, worker)}"
        if stats.utilisation is not None:
            parts[0] += (f", busy {stats.utilisation:.0%} of max_workers={stats.max_workers}"
                         f" over its {stats.active_s:.2f} s")
    sentence = parts[0] + "."
    started = pool.started
    waited = [t.queue_wait_s for t in started
              if t.queue_wait_s is not None and waited_for_worker(t, stats.max_workers)]
    if waited:
        sentence += (f" {len(waited)} of {len(started)} tasks waited "
                     f"{_range_words(min(waited), max(waited))} for a free worker; "
                     f"max_workers={stats.max_workers}.")
    elif started:
        longest = max(t.queue_wait_s or 0.0 for t in started)
        sentence += f" No task waited for a free worker (the longest wait was " \
                    f"{fmt_seconds(longest)})."
    if not stats.starts_seen:
        sentence += " " + _unseen_workers_words(stats)
    ended = []
    if stats.errors:
        errors = sorted({t.error or "an exception" for t in pool.tasks
                         if t.outcome is TaskOutcome.ERROR})
        ended.append(f"{stats.errors} raised ({and_list(errors)})")
    if stats.cancelled:
        ended.append(f"{stats.cancelled} {'was' if stats.cancelled == 1 else 'were'} cancelled")
    if stats.unfinished:
        ended.append(f"{stats.unfinished} had not finished when the recording stopped")
    if ended:
        sentence += f" Of its tasks, {and_list(ended)}."
    return sentence


def _unseen_workers_words(stats: PoolStats) -> str:
    """Why a pool's starts and queue waits are missing: only forked workers record."""
    if stats.start_method == "fork":
        how = "forked, but did not write what they ran (killed, or gone before writing)"
    else:
        method = f"multiprocessing's {stats.start_method} method" if stats.start_method \
            else "a start method other than fork"
        how = f"started by {method} and are not recorded (forked workers are)"
    return (f"Its workers were {how}, so when its tasks started, how long they waited and "
            "where they ran are not known.")


def pool_reading(tasks: TasksView) -> list[str]:
    return [pool_sentence(pool) for pool in tasks.pools]


def step_code_words(step: BlockedStep, site: bool = True) -> str:
    """"handler() -> parse() (app.py:7)": the coroutine, then the function it spent the time
    in when that is another, and the line it ran most."""
    words = f"{step.coroutine}()"
    if step.function and step.function != step.coroutine:
        words += f" -> {step.function}()"
    if site and step.site:
        words += f" ({short_file(step.site)})"
    return words


def loop_sentence(loop: LoopView) -> str:
    """How busy one event loop was, and every way it was blocked, grouped by the code."""
    stats = loop.stats
    span = stats.end_s - stats.start_s
    sentence = (f"The event loop on {loop.label} ran {plural(loop.tasks, 'task')}; it was busy "
                f"{stats.busy_s:.2f} s of its {span:.2f} s")
    sentence += f" ({stats.busy_s / span:.0%})." if span > 0 else "."
    if not stats.blocked:
        return sentence + (f" No step ran {stats.slow_step_s:g} s or longer: it never blocked "
                           "the other tasks for that long.")
    # Grouped by the code, not the line: samples of one loop land on different lines of it.
    groups: dict[str, list[BlockedStep]] = {}
    for step in stats.blocked:
        groups.setdefault(step_code_words(step, site=False), []).append(step)
    said = []
    for steps in sorted(groups.values(), key=lambda g: -sum(s.end_s - s.start_s for s in g)):
        lengths = [s.end_s - s.start_s for s in steps]
        times = "once" if len(steps) == 1 else f"{len(steps)} times"
        longest = max(steps, key=lambda s: s.end_s - s.start_s)
        said.append(f"{times} for {_range_words(min(lengths), max(lengths))} in "
                    f"{step_code_words(longest)}")
    sentence += f" The loop was blocked {and_list(said)}; the other tasks could not run " \
                "meanwhile."
    return sentence


def loop_reading(tasks: TasksView) -> list[str]:
    return [loop_sentence(loop) for loop in tasks.loops]


def tasks_summary_line(tasks: TasksView) -> str:
    """The terminal's one line about tasks."""
    said = []
    for pool in tasks.pools:
        stats = pool.stats
        said.append(f"{stats.name}: {plural(stats.tasks, 'task')}, {stats.waited} waited for "
                    f"a worker (longest {fmt_seconds(stats.max_queue_wait_s)})")
    for loop in tasks.loops:
        said.append(f"event loop on {loop.label}: {plural(loop.tasks, 'task')}, "
                    f"blocked {plural(len(loop.stats.blocked), 'time')}")
    return "; ".join(said)
