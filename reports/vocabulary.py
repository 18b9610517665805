"""Every word and colour the renderers use for the model's vocabularies, in one table each.

The HTML report, the terminal summary, the figures, trace.json and the prose all say a state, an
end reason, a method or a run status the same way because they read it here: before this table
the report, the summary and the timeline had three wordings of how a thread ended. Keys are the
model's own words (state constants, :class:`EndReason`, :class:`Method`, :class:`RunStatus`);
the model's codes are for programs, these words are for readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tracer.model.schema import (
    BLOCKED,
    CPU_WAIT,
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    OFF_CPU,
    ON_CPU,
    RUNNING,
    SIGNAL_WAIT,
    BlockedCause,
    EndReason,
    Method,
    StackSource,
    TaskKind,
    TaskOutcome,
)
from tracer.raw_files import RunStatus


@dataclass(frozen=True)
class StateWords:
    """How one thread state is named, headed, said and drawn."""

    name: str  # legends, table columns: "waiting for GIL"
    heading: str  # the terminal's narrow column heading; rich does not wrap headers
    phrase: str  # inside a sentence: "42% waiting for the GIL"
    group: str  # what a folded group of threads mostly did (it labels a row)
    colour: str  # Okabe-Ito (colour-blind safe); greys for "not wanting a CPU"


STATE_WORDS: Mapping[str, StateWords] = {
    RUNNING: StateWords("running (holds GIL)", "running", "running Python while holding the GIL",
                        "mostly running Python", "#009E73"),
    NATIVE: StateWords("native (no GIL)", "native", "on a CPU in native code without the GIL",
                       "mostly in native code", "#56B4E9"),
    ON_CPU: StateWords("on CPU", "on\nCPU", "on a CPU", "mostly on a CPU", "#0072B2"),
    GIL_WAIT: StateWords("waiting for GIL", "GIL\nwait", "waiting for the GIL",
                         "mostly waiting for the GIL", "#D55E00"),
    CPU_WAIT: StateWords("waiting for a core", "core\nwait",
                         "ready to run but waiting for a free core (preempted by other work)",
                         "mostly waiting for a core", "#E69F00"),
    LOCK_WAIT: StateWords("waiting for lock", "lock\nwait",
                          "waiting for a lock another thread held",
                          "mostly waiting for locks", "#CC79A7"),
    # Okabe-Ito's yellow: the one colour of the set no other state uses, told apart from the
    # lock's pink by every kind of colour vision. Not contention: nobody held what it waited for.
    SIGNAL_WAIT: StateWords("waiting for a signal", "signal\nwait",
                            "waiting for a signal (an event, condition, barrier or queue)",
                            "mostly waiting for a signal", "#F0E442"),
    BLOCKED: StateWords("blocked", "blocked", "blocked (sleep, I/O, join, queue)",
                        "mostly idle or blocked", "#999999"),
    OFF_CPU: StateWords("off CPU", "off\nCPU", "off the CPU (reason not recorded)",
                        "mostly off the CPU", "#D4D4D4"),
}
# A state the table does not know (a newer model) is said as its code, drawn in this grey.
UNKNOWN_COLOUR = "#666666"
# A folded group whose threads recorded no state at all.
NO_STATE_GROUP = "no state recorded"


# What a wait on each kind of primitive was, in the words of the call that made it (the model's
# WaitDetail.kind and LockStats.kind); a kind the table does not know is said as its code.
WAIT_KIND_WORDS: Mapping[str, str] = {
    "lock": "Lock.acquire",
    "rlock": "RLock.acquire",
    "semaphore": "Semaphore.acquire",
    "condition": "Condition.wait",
    "event": "Event.wait",
    "barrier": "Barrier.wait",
    "queue_get": "queue get",
    "queue_put": "queue put",
}
# A lock table row for a primitive whose waits are for a signal (LockStats.contention False).
SIGNAL_MARK = "signal"


def wait_kind_words(kind: str | None) -> str:
    """A wait's call as a reader knows it: ``Event.wait``, ``queue get``."""
    if not kind:
        return "Lock.acquire"
    return WAIT_KIND_WORDS.get(kind, kind.replace("_", " "))


def state_name(state: str) -> str:
    words = STATE_WORDS.get(state)
    return words.name if words else state


def state_heading(state: str) -> str:
    words = STATE_WORDS.get(state)
    return words.heading if words else state


def state_phrase(state: str) -> str:
    words = STATE_WORDS.get(state)
    return words.phrase if words else state


def state_group(state: str) -> str:
    if not state:
        return NO_STATE_GROUP
    words = STATE_WORDS.get(state)
    return words.group if words else f"mostly {state}"


def state_colour(state: str) -> str:
    words = STATE_WORDS.get(state)
    return words.colour if words else UNKNOWN_COLOUR


@dataclass(frozen=True)
class BlockedCauseWords:
    """How one cause of blocked time is said: ``phrase`` after "blocked" (the timeline's hover
    says "blocked: sleeping", a sentence "spent 2.10 s blocked in file locks"), ``short`` in a
    table cell."""

    phrase: str
    short: str


BLOCKED_CAUSE_WORDS: Mapping[BlockedCause, BlockedCauseWords] = {
    BlockedCause.SLEEP: BlockedCauseWords("sleeping", "sleep"),
    BlockedCause.IO: BlockedCauseWords("in socket, pipe or file I/O", "I/O"),
    BlockedCause.POLL: BlockedCauseWords("waiting in select/poll/epoll", "poll"),
    BlockedCause.CHILD: BlockedCauseWords("waiting for a child process", "child process"),
    BlockedCause.LOCK: BlockedCauseWords("on a contended lock", "lock"),
    BlockedCause.SIGNAL: BlockedCauseWords(
        "waiting to be signalled (a condition, event, queue or join)", "signal"),
    BlockedCause.FILE_LOCK: BlockedCauseWords("in file locks (fcntl/flock)", "file lock"),
    BlockedCause.OTHER: BlockedCauseWords("in a wait whose cause was not recorded", "other"),
}


def _cause_words(cause: str) -> BlockedCauseWords:
    try:
        return BLOCKED_CAUSE_WORDS[BlockedCause(cause)]
    except (ValueError, KeyError):
        return BlockedCauseWords(f"in {cause.replace('_', ' ')}", cause.replace("_", " "))


def blocked_cause_phrase(cause: str) -> str:
    """What "blocked" was, after the word: "sleeping", "in file locks (fcntl/flock)"."""
    return _cause_words(cause).phrase


def blocked_cause_short(cause: str) -> str:
    """A cause in a table cell: "sleep", "I/O", "file lock"."""
    return _cause_words(cause).short


@dataclass(frozen=True)
class EndReasonWords:
    """How one end reason is said: ``phrase`` in tables, prose and hovers; ``short`` where only a
    few words fit (the timeline's legend, the terminal's column)."""

    phrase: str
    short: str
    cut_off: bool  # the thread was stopped mid-work: the timeline marks where


END_REASONS: Mapping[EndReason, EndReasonWords] = {
    EndReason.FINISHED: EndReasonWords("finished", "finished", cut_off=False),
    EndReason.KILLED_AT_EXIT: EndReasonWords("killed at interpreter exit", "killed at exit",
                                             cut_off=True),
    EndReason.RUNNING_AT_STOP: EndReasonWords("still running when the run was stopped",
                                              "running when stopped", cut_off=True),
}
# End reasons that cut a thread off mid-work, in the order the timeline draws their marks.
CUT_OFF: tuple[EndReason, ...] = tuple(r for r, words in END_REASONS.items() if words.cut_off)
NO_END_REASON = "—"


def _end_words(reason: str) -> EndReasonWords | None:
    """The row of an end reason given as the enum or as its plain word (fixtures use words)."""
    try:
        return END_REASONS[EndReason(reason)]
    except (ValueError, KeyError):
        return None


def end_reason_words(reason: str | None) -> str:
    """The wording of an end reason ("—" when none was recorded; an unknown code with spaces)."""
    if reason is None:
        return NO_END_REASON
    words = _end_words(reason)
    return words.phrase if words else reason.replace("_", " ")


def end_reason_short(reason: str | None) -> str:
    """The short form, where only a few words fit (a legend entry, a terminal column)."""
    if reason is None:
        return NO_END_REASON
    words = _end_words(reason)
    return words.short if words else reason.replace("_", " ")


# How each figure's numbers were obtained, as a reader reads the badge (figure_sources values).
METHOD_MEANINGS: Mapping[Method, str] = {
    Method.EXACT: "every event was recorded",
    Method.SAMPLED: "read at a fixed rate; short events may be missed",
    Method.INSTRUMENTED: "recorded from inside the program, which slows it a little",
    Method.MISSING: "not recorded in this run",
}
# The figures of figure_sources, as the sources table names them.
FIGURE_NAMES: Mapping[str, str] = {
    "cpu": "CPU time and parallelism",
    "gil": "GIL holder and waits",
    "gil_holder": "who held the GIL while nobody waited for it",
    "thread_states": "thread states on the timeline",
    "locks": "lock waits and holds",
    "tasks": "pool work items and asyncio tasks",
}


def method_meaning(method: str) -> str:
    """What a method means to a reader ("" for a word the table does not know)."""
    try:
        return METHOD_MEANINGS[Method(method)]
    except (ValueError, KeyError):
        return ""


# A run that did not end normally: the banner's headline word and how a sentence says it.
STATUS_HEADLINES: Mapping[RunStatus, str] = {
    RunStatus.TIMEOUT: "TIMED OUT",
    RunStatus.FAILED: "FAILED",
    RunStatus.INTERRUPTED: "INTERRUPTED",
    RunStatus.KILLED: "KILLED",
    RunStatus.ERROR: "FAILED",
}
STATUS_WORDS: Mapping[RunStatus, str] = {
    RunStatus.TIMEOUT: "timed out",
    RunStatus.FAILED: "failed",
    RunStatus.INTERRUPTED: "was interrupted",
    RunStatus.KILLED: "was killed",
    RunStatus.ERROR: "ended with an error",
}


# Where the time went: the selectors' "everything" choices, the stack sources, a wait's holder
# when there was none, and the flame graph's colour when it shows every state at once.
ALL_STATES_WORD = "every state"
ALL_THREADS_WORD = "all threads"
NO_HOLDER = "nobody, or not known who"
HOLDER_CODE_UNKNOWN = "its code was not sampled"
ALL_STATES_COLOUR = "#E69F00"
STACK_SOURCE_WORDS: Mapping[StackSource, str] = {
    StackSource.VIZTRACER: "VizTracer, which records every call (exact)",
    StackSource.PYSPY: "py-spy, sampling the program from outside",
    StackSource.NONE: "no stack source",
}


def stack_source_words(source: str) -> str:
    try:
        return STACK_SOURCE_WORDS[StackSource(source)]
    except (ValueError, KeyError):
        return source


# Tasks: how each kind of task and each outcome is said and drawn. A task that ran is the
# running state's green (it ran on its worker); an error is the colour of failure; a cancelled or
# unfinished task is grey: it did not run to an end.
TASK_KIND_WORDS: Mapping[TaskKind, str] = {
    TaskKind.THREAD_POOL: "thread pool",
    TaskKind.PROCESS_POOL: "process pool",
    TaskKind.ASYNCIO: "asyncio task",
}
TASK_OUTCOME_WORDS: Mapping[TaskOutcome, str] = {
    TaskOutcome.OK: "returned",
    TaskOutcome.ERROR: "raised",
    TaskOutcome.CANCELLED: "cancelled",
    TaskOutcome.UNFINISHED: "unfinished when the recording stopped",
}
TASK_OUTCOME_COLOURS: Mapping[TaskOutcome, str] = {
    TaskOutcome.OK: "#009E73",
    TaskOutcome.ERROR: "#D55E00",
    TaskOutcome.CANCELLED: "#999999",
    TaskOutcome.UNFINISHED: "#BBBBBB",
}
QUEUE_WAIT_COLOUR = "#E69F00"  # a task waiting in its pool's queue: waiting for a free worker
LOOP_BUSY_COLOUR = "#0072B2"
LOOP_BLOCKED_COLOUR = "#D55E00"  # a step that blocked the loop
TASK_STEP_COLOUR = "#009E73"
TASK_WAITING_COLOUR = "#DDDDDD"  # an asyncio task alive between its steps (awaiting)


def task_kind_words(kind: str) -> str:
    try:
        return TASK_KIND_WORDS[TaskKind(kind)]
    except ValueError:
        return kind


def task_outcome_words(outcome: str) -> str:
    try:
        return TASK_OUTCOME_WORDS[TaskOutcome(outcome)]
    except ValueError:
        return outcome


def task_outcome_colour(outcome: str) -> str:
    try:
        return TASK_OUTCOME_COLOURS[TaskOutcome(outcome)]
    except ValueError:
        return UNKNOWN_COLOUR
