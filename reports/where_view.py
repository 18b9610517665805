"""Where the time went, as the report shows it: computed once per render from ``model.where``,
``model.gil_blame`` and ``model.lock_blame``, and read by report.html, the prose and the summary.

What it derives:
- per state (and over every state, ``ALL``): the top functions, with self time (the function is
  the innermost frame) and inclusive time (it is any frame of the stack, counted once per stack);
- the flame graph's rows, capped at ``FLAME_ROWS`` (the largest kept; what the rest covered is
  said), with frames and stacks interned so the page carries each once;
- the "who kept whom waiting" tables, one row per (waiter, the function it waited in, holder,
  the function the holder ran): a table reads the innermost frames, the model keeps whole stacks;
- the culprits the prose names, biggest first, and the thread that waited longest for the GIL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reports.threads import thread_state_seconds
from tracer.model.schema import (
    GIL_WAIT,
    LOCK_WAIT,
    NATIVE,
    RUNNING,
    STATES,
    Frame,
    RunModel,
    Stack,
    StackSource,
    ThreadTimeline,
    WhereRow,
)

ALL = "all"  # the selectors' "every state" / "all threads", and the function table's key for it
# (thread, state, stack) rows embedded for the flame graph. A row costs ~25 bytes plus its stack
# (~5 bytes a frame) and frames ~60 bytes each: 2,000 rows of 30-frame stacks are ~0.4 MB, a
# third of what the rest of the page weighs. A program with more distinct stacks keeps the
# largest; a row left out is narrower than a pixel in all but the most zoomed view anyway.
FLAME_ROWS = 2_000
# Functions per state in the table: the top this many by self time and by inclusive time (so
# sorting by either column shows its real top), the rest are in model.json.
FUNCTION_ROWS = 25
# Rows of each "who kept whom waiting" table, largest first.
BLAME_ROWS = 50
# Threads named in a function's "thread(s)" cell; past this many the cell says how many more.
THREADS_NAMED = 3
# Holders named in the longest GIL waiter's sentence.
HOLDERS_NAMED = 3
# States whose top function is a culprit by itself: the code that held the GIL, or ran native
# code on a core. Time blocked (sleep, join) is what a thread was told to do, not a culprit;
# waits are named with who caused them, from the blame tables.
HOT_STATES = (RUNNING, NATIVE)

FunctionKey = tuple[str, str]  # (function, file): a function's lines are one row
Namer = Callable[[int], str]  # tid -> the thread's label in the report


@dataclass(frozen=True)
class FunctionRow:
    """One function's time in one state (``ALL``: every state). Shares are of the time the
    stacks attributed to that state."""

    function: str
    file: str
    line: int  # the line that accounts for most of its time
    threads: tuple[str, ...]  # labels of the threads it ran on, most time first
    more_threads: int  # threads past THREADS_NAMED
    self_s: float
    inclusive_s: float
    self_share: float
    inclusive_share: float

    @property
    def site(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class FlameRows:
    """The flame graph's input, interned: ``rows`` are (tid, state, stack index, seconds), each
    stack a list of frame indexes, outermost first. ``left_out`` is, per state, how many rows
    past the budget were dropped and the seconds they covered."""

    frames: list[Frame]
    stacks: list[list[int]]
    rows: list[tuple[int, str, int, float]]
    total_rows: int
    left_out: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def left_out_rows(self) -> int:
        return sum(count for count, _ in self.left_out.values())

    @property
    def left_out_s(self) -> float:
        return sum(seconds for _, seconds in self.left_out.values())


@dataclass(frozen=True)
class BlameRow:
    """While ``waiter`` waited in ``waiter_frame`` (for ``lock``, in the lock table), ``holder``
    ran ``holder_frame`` for ``seconds``: ``share`` of the waiter's wait there. ``holder`` is
    None when nobody held it or the recording cannot tell; ``holder_frame`` None when the holder's
    code was not sampled."""

    waiter_tid: int
    waiter: str
    waiter_frame: Frame | None
    holder_tid: int | None
    holder: str | None
    holder_frame: Frame | None
    seconds: float
    share: float
    lock: str | None = None


@dataclass(frozen=True)
class BlameTable:
    rows: list[BlameRow]
    hidden: int  # rows past BLAME_ROWS
    hidden_s: float
    total_s: float


@dataclass(frozen=True)
class Culprit:
    """One thing that cost time, as a sentence names it. For a wait (``GIL_WAIT``,
    ``LOCK_WAIT``): ``who`` waited ``seconds`` in ``frame``, and ``share`` of it ``holder`` ran
    ``holder_frame``. For a hot function (``RUNNING``, ``NATIVE``): ``frame`` was the innermost
    frame for ``seconds``, ``share`` of that state's time, on ``who`` (thread labels)."""

    state: str
    seconds: float
    who: tuple[str, ...]
    frame: Frame | None
    share: float
    holder: str | None = None
    holder_frame: Frame | None = None
    lock: str | None = None
    blamed: bool = False  # a wait, with who held what it waited for (the holder fields)


@dataclass(frozen=True)
class GilWaiter:
    """The thread that waited longest for the GIL: ``wait_s`` of the ``life_s`` it existed, and
    who held the GIL meanwhile (label or None: nobody / unknown, seconds), most first."""

    thread: str
    wait_s: float
    life_s: float
    holders: list[tuple[str | None, float]]
    other_holders: int
    other_s: float

    @property
    def share(self) -> float:
        return self.wait_s / self.life_s if self.life_s > 0 else 0.0


@dataclass(frozen=True)
class WhereView:
    """Everything the report shows of ``model.where`` and the blame lists."""

    source: StackSource
    rate_hz: float | None
    states: list[str]  # states with attributed time, in the model's order
    state_s: dict[str, float]  # seconds attributed to stacks, per state
    total_s: float
    unattributed_s: dict[str, float]
    threads: list[tuple[int, str]]  # (tid, label) of threads with rows, in the report's order
    functions: dict[str, list[FunctionRow]]  # state or ALL -> rows, most self time first
    flame: FlameRows
    gil_blame: BlameTable
    lock_blame: BlameTable
    culprits: list[Culprit]  # biggest first
    gil_waiter: GilWaiter | None

    @property
    def has_rows(self) -> bool:
        return bool(self.flame.total_rows)


def build_where_view(model: RunModel, ordered: Sequence[ThreadTimeline],
                     labels: Mapping[int, str],
                     flame_rows: int = FLAME_ROWS) -> WhereView | None:
    """The view of where the time went, or None when the model attributed nothing to stacks."""
    where = model.where
    if where is None:
        return None
    rows = _merged(where.rows)
    state_s: dict[str, float] = defaultdict(float)
    for row in rows:
        state_s[row.state] += row.seconds
    states = [s for s in STATES if state_s.get(s, 0.0) > 0]
    states += sorted(s for s in state_s if s not in STATES and state_s[s] > 0)

    def called(tid: int) -> str:
        return labels.get(tid, f"thread {tid}")

    functions = {state: top_functions([r for r in rows if r.state == state], called)
                 for state in states}
    functions[ALL] = top_functions(rows, called)
    gil_rows, lock_rows = _gil_rows(model, called), _lock_rows(model, called)
    return WhereView(
        source=where.source,
        rate_hz=where.rate_hz,
        states=states,
        state_s=dict(state_s),
        total_s=sum(state_s.values()),
        unattributed_s={s: v for s, v in where.unattributed_s.items() if v > 0},
        threads=_threads_with_rows(rows, ordered, called),
        functions=functions,
        flame=flame_rows_of(rows, flame_rows),
        gil_blame=_capped(gil_rows),
        lock_blame=_capped(lock_rows),
        culprits=_culprits(gil_rows, lock_rows, functions),
        gil_waiter=_gil_waiter(model, called),
    )


def _merged(rows: Iterable[WhereRow]) -> list[WhereRow]:
    """Rows with identical (thread, state, stack) summed (the model merges them already; a
    hand-made model may not), without empty ones."""
    seconds: dict[tuple[int, str, Stack], float] = defaultdict(float)
    for row in rows:
        seconds[(row.tid, row.state, row.stack)] += row.seconds
    return [WhereRow(tid, state, stack, s) for (tid, state, stack), s in seconds.items() if s > 0]


def top_functions(rows: Sequence[WhereRow], called: Namer) -> list[FunctionRow]:
    """Each function's self and inclusive time over ``rows``: self where it is the innermost
    frame, inclusive where it is any frame (once per stack, so recursion does not count twice)."""
    total = sum(row.seconds for row in rows)
    if total <= 0:
        return []
    self_s: dict[FunctionKey, float] = defaultdict(float)
    inclusive_s: dict[FunctionKey, float] = defaultdict(float)
    lines: dict[FunctionKey, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    threads: dict[FunctionKey, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        if not row.stack:
            continue
        innermost = row.stack[-1]
        self_s[(innermost.function, innermost.file)] += row.seconds
        seen: set[FunctionKey] = set()
        for frame in row.stack:
            key = (frame.function, frame.file)
            if key in seen:
                continue
            seen.add(key)
            inclusive_s[key] += row.seconds
            lines[key][frame.line] += row.seconds
            threads[key][row.tid] += row.seconds
    by_self = sorted(inclusive_s, key=lambda k: (-self_s.get(k, 0.0), -inclusive_s[k], k))
    by_inclusive = sorted(inclusive_s, key=lambda k: (-inclusive_s[k], k))
    keep = set(by_self[:FUNCTION_ROWS]) | set(by_inclusive[:FUNCTION_ROWS])
    result = []
    for key in (k for k in by_self if k in keep):
        tids = sorted(threads[key], key=lambda tid: (-threads[key][tid], tid))
        line = max(lines[key], key=lambda n: (lines[key][n], -n))
        result.append(FunctionRow(
            function=key[0], file=key[1], line=line,
            threads=tuple(called(tid) for tid in tids[:THREADS_NAMED]),
            more_threads=max(0, len(tids) - THREADS_NAMED),
            self_s=self_s.get(key, 0.0), inclusive_s=inclusive_s[key],
            self_share=self_s.get(key, 0.0) / total, inclusive_share=inclusive_s[key] / total,
        ))
    return result


def flame_rows_of(rows: Sequence[WhereRow], budget: int = FLAME_ROWS) -> FlameRows:
    """The largest ``budget`` rows, interned; the rest counted per state. A function is one
    frame whatever line it was on (a sampler sees a loop on several lines; a flame graph that
    split them would draw one call as several boxes); its frame names the line with most time."""
    ordered = sorted(rows, key=lambda r: (-r.seconds, r.tid, r.state))
    kept, dropped = ordered[:budget], ordered[budget:]
    frame_ids: dict[FunctionKey, int] = {}
    lines: dict[FunctionKey, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    stack_ids: dict[tuple[int, ...], int] = {}
    out_rows = []
    for row in kept:
        for frame in row.stack:
            lines[(frame.function, frame.file)][frame.line] += row.seconds
        ids = tuple(frame_ids.setdefault((f.function, f.file), len(frame_ids))
                    for f in row.stack)
        out_rows.append((row.tid, row.state, stack_ids.setdefault(ids, len(stack_ids)),
                         row.seconds))
    left_out: dict[str, tuple[int, float]] = {}
    for row in dropped:
        count, seconds = left_out.get(row.state, (0, 0.0))
        left_out[row.state] = (count + 1, seconds + row.seconds)
    frames = [Frame(function, file, max(lines[(function, file)],
                                        key=lambda n: (lines[(function, file)][n], -n)))
              for function, file in frame_ids]
    return FlameRows(frames=frames, stacks=[list(ids) for ids in stack_ids],
                     rows=out_rows, total_rows=len(rows), left_out=left_out)


def _threads_with_rows(rows: Sequence[WhereRow], ordered: Sequence[ThreadTimeline],
                       called: Namer) -> list[tuple[int, str]]:
    tids = {row.tid for row in rows}
    known = [t.tid for t in ordered if t.tid in tids]
    rest = sorted(tids - set(known))
    return [(tid, called(tid)) for tid in [*known, *rest]]


def _innermost(stack: Stack) -> Frame | None:
    return stack[-1] if stack else None


BlameKey = tuple[int, Frame | None, str | None, int | None, Frame | None]


def _blame_rows(pieces: Iterable[tuple[BlameKey, float]], called: Namer) -> list[BlameRow]:
    """Blame pieces summed per (waiter, its function, lock, holder, the holder's function),
    largest first; each row's share is of the waiter's wait in that function (for that lock)."""
    seconds: dict[BlameKey, float] = defaultdict(float)
    waited: dict[tuple[int, Frame | None, str | None], float] = defaultdict(float)
    lines: dict[FunctionKey, dict[int, float]] = defaultdict(lambda: defaultdict(float))

    def function(frame: Frame | None, s: float) -> Frame | None:
        """A function whatever its line (py-spy sees a loop on each of its lines)."""
        if frame is None:
            return None
        lines[(frame.function, frame.file)][frame.line] += s
        return Frame(frame.function, frame.file, 0)

    best: dict[FunctionKey, Frame] = {}

    def shown(frame: Frame | None) -> Frame | None:
        """The function at its line with the most time (once per function: a run of 64
        threads has ~60,000 blame rows over a few functions)."""
        if frame is None:
            return None
        key = (frame.function, frame.file)
        found = best.get(key)
        if found is None:
            weights = lines[key]
            found = best[key] = Frame(frame.function, frame.file,
                                      max(weights, key=lambda n: (weights[n], -n)))
        return found

    for (tid, waiter_frame, lock, holder, holder_frame), s in pieces:
        if s > 0:
            key = (tid, function(waiter_frame, s), lock, holder, function(holder_frame, s))
            seconds[key] += s
            waited[key[:3]] += s
    ordered = sorted(seconds.items(), key=lambda item: -item[1])
    return [
        BlameRow(waiter_tid=tid, waiter=called(tid), waiter_frame=shown(frame),
                 holder_tid=holder, holder=called(holder) if holder is not None else None,
                 holder_frame=shown(holder_frame), seconds=s,
                 share=s / waited[(tid, frame, lock)], lock=lock)
        for (tid, frame, lock, holder, holder_frame), s in ordered
    ]


def _capped(rows: list[BlameRow]) -> BlameTable:
    return BlameTable(rows=rows[:BLAME_ROWS], hidden=max(0, len(rows) - BLAME_ROWS),
                      hidden_s=sum(r.seconds for r in rows[BLAME_ROWS:]),
                      total_s=sum(r.seconds for r in rows))


def _gil_rows(model: RunModel, called: Namer) -> list[BlameRow]:
    return _blame_rows(
        (((b.waiter_tid, _innermost(b.waiter_stack), None, b.holder_tid,
           _innermost(b.holder_stack)), b.seconds) for b in model.gil_blame), called)


def lock_words(name: str, lock: int) -> str:
    """A lock as the tables name it: its name, or its number when it has none."""
    return name or f"lock #{lock}"


def _lock_rows(model: RunModel, called: Namer) -> list[BlameRow]:
    return _blame_rows(
        (((b.waiter_tid, _innermost(b.waiter_stack), lock_words(b.name, b.lock), b.holder_tid,
           _innermost(b.holder_stack)), b.seconds) for b in model.lock_blame), called)


def _wait_culprits(rows: Sequence[BlameRow], state: str) -> list[Culprit]:
    """One culprit per (waiter, its function, lock): the whole wait there, and the holder (with
    its function) that accounts for most of it."""
    groups: dict[tuple[int, Frame | None, str | None], list[BlameRow]] = defaultdict(list)
    for row in rows:
        groups[(row.waiter_tid, row.waiter_frame, row.lock)].append(row)
    culprits = []
    for group in groups.values():
        top = group[0]  # rows are largest first
        culprits.append(Culprit(state=state, seconds=sum(r.seconds for r in group),
                                who=(top.waiter,), frame=top.waiter_frame, share=top.share,
                                holder=top.holder, holder_frame=top.holder_frame, lock=top.lock,
                                blamed=True))
    return culprits


def _culprits(gil_rows: Sequence[BlameRow], lock_rows: Sequence[BlameRow],
              functions: Mapping[str, list[FunctionRow]]) -> list[Culprit]:
    """Waits with who caused them, and the code that held the GIL or a core longest, biggest
    first. Without blame, a wait state's top function stands in (nobody to name as its cause)."""
    culprits = _wait_culprits(gil_rows, GIL_WAIT) + _wait_culprits(lock_rows, LOCK_WAIT)
    hot = list(HOT_STATES)
    if not gil_rows:
        hot.append(GIL_WAIT)
    if not lock_rows:
        hot.append(LOCK_WAIT)
    for state in hot:
        rows = functions.get(state, [])
        if rows and rows[0].self_s > 0:
            top = rows[0]
            culprits.append(Culprit(state=state, seconds=top.self_s, who=top.threads,
                                    frame=Frame(top.function, top.file, top.line),
                                    share=top.self_share))
    return sorted(culprits, key=lambda c: -c.seconds)


def _gil_waiter(model: RunModel, called: Namer) -> GilWaiter | None:
    """The thread that waited longest for the GIL (by the blame), with its holders."""
    waited: dict[int, float] = defaultdict(float)
    holders: dict[int, dict[int | None, float]] = defaultdict(lambda: defaultdict(float))
    for blame in model.gil_blame:
        waited[blame.waiter_tid] += blame.seconds
        holders[blame.waiter_tid][blame.holder_tid] += blame.seconds
    threads = {t.tid: t for t in model.threads}
    candidates = [tid for tid in waited if tid in threads and waited[tid] > 0]
    if not candidates:
        return None
    tid = max(candidates, key=lambda t: (waited[t], -t))
    thread = threads[tid]
    seconds = thread_state_seconds(thread)
    wait_s = seconds.get(GIL_WAIT, 0.0) or waited[tid]
    ranked = sorted(holders[tid].items(), key=lambda item: -item[1])
    named = [(called(h) if h is not None else None, s) for h, s in ranked[:HOLDERS_NAMED]]
    rest = ranked[HOLDERS_NAMED:]
    return GilWaiter(thread=called(tid), wait_s=wait_s, life_s=sum(seconds.values()),
                     holders=named, other_holders=len(rest), other_s=sum(s for _, s in rest))
