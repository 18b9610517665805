"""How much VizTracer slowed this run: an estimate from this run's own calls, not a start-up
figure alone.

VizTracer's cost is per recorded call, so a program's slowdown follows its call rate: on real
programs it ranged from 1.6x to 4.9x while a start-up loop said 1.8x. The target measures, at
start-up, the extra time of one recorded Python call and of one C call, what faulting in the
fresh memory of one buffer entry costs (each entry's, once), and, on Python 3.11, how much the
profile hook slows plain bytecode; the trace says how many calls every thread made. Their
product is the CPU time VizTracer added on the threads that made the calls.

Turning that into wall time needs one more fact: the hook runs with the GIL held, and pure-Python
threads run one at a time, so on a run the GIL serialises the added time adds to the wall clock
one for one. When threads also ran in parallel (native code that released the GIL), part of it
can hide behind their work: the wall grew by at least the busiest thread's share and at most the
sum, and the estimate says both. The per-call cost is known to about 30 % (it varies between
processes and between kinds of call), and wall / (wall - added) is steep when the calls fill the
run, so the ratio is given with its range, or as "at least" when the range has no upper end.
Feedback through lock contention (longer critical sections, more waits) is not in it; the figure
is an estimate and says so. benchmarks/viztracer_cost.py checks it against measured runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracer.model.functions import FunctionTrace, ThreadCalls
from tracer.model.schema import ThreadTimeline, VizTracerCost

# CPU parallelism (CPU-seconds per wall-second) above which threads are taken to have overlapped
# outside the GIL: a GIL-bound run measures 0.9-1.1 here (design.md), so 1.2 is clear of it.
PARALLEL_ABOVE = 1.2
# The slowdown past which the report warns (the summary and warnings say it up front).
MATERIAL_SLOWDOWN = 1.2
# How far the per-call cost may have been from what was measured: beyond the spread between the
# start-up and exit measurements, the kinds of call differ (a specialised Python call loses more
# under the hook than a generator's resume). benchmarks/viztracer_cost.py checks the result.
COST_UNCERTAINTY = 0.2
# The estimate never claims the untraced program took less than this share of the traced run:
# past it the figure says "at least" rather than inventing a precise ratio.
MIN_UNTRACED_SHARE = 0.1


@dataclass(frozen=True)
class MeasuredCost:
    """VizTracer's cost measured in the target (target.json), at start-up or at exit."""

    python_call_ns: float
    c_call_ns: float
    loop_slowdown: float  # a call-free loop, traced / untraced
    fresh_entry_ns: float = 0.0  # faulting in the buffer's memory, per entry, the first time

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> MeasuredCost | None:
        """Also reads recordings made before the C-call cost was measured apart."""
        python_ns = raw.get("python_call_ns", raw.get("call_overhead_ns"))
        if python_ns is None:
            return None
        return cls(python_call_ns=float(python_ns),
                   c_call_ns=float(raw.get("c_call_ns", python_ns)),
                   loop_slowdown=float(raw.get("loop_slowdown") or 1.0),
                   fresh_entry_ns=float(raw.get("fresh_entry_ns") or 0.0))

    def calls_s(self, calls: ThreadCalls) -> float:
        return (calls.python * self.python_call_ns + calls.c * self.c_call_ns) / 1e9

    def per_call_ns(self, calls: ThreadCalls) -> float:
        return self.calls_s(calls) * 1e9 / calls.total if calls.total else 0.0


@dataclass(frozen=True)
class CostRange:
    """What a call may have cost during the run. A machine's speed drifts (on a shared 2-core
    virtual machine the same calls measured 105 or 205 ns, from one process to the next), so
    the target measures at start-up and again at exit; the range spans both, widened by
    COST_UNCERTAINTY, and the mean is the point estimate."""

    point: MeasuredCost
    low: MeasuredCost
    high: MeasuredCost
    measurements: int

    @classmethod
    def of(cls, costs: list[MeasuredCost]) -> CostRange:
        def pick(kind: Any, field_name: str, margin: float) -> float:
            return float(kind(getattr(c, field_name) for c in costs)) * margin

        def mean(values: Any) -> float:
            values = list(values)
            return sum(values) / len(values)

        def made(kind: Any, margin: float, loop: Any) -> MeasuredCost:
            # the margin widens the hook's share of the time, 1 - 1/slowdown, like the rest
            slowdown = max(pick(loop, "loop_slowdown", 1.0), 1.0)
            share = min((1 - 1 / slowdown) * margin, 0.95)
            return MeasuredCost(
                python_call_ns=pick(kind, "python_call_ns", margin),
                c_call_ns=pick(kind, "c_call_ns", margin),
                loop_slowdown=1 / (1 - share),
                fresh_entry_ns=pick(kind, "fresh_entry_ns", margin))

        return cls(point=made(mean, 1.0, mean), low=made(min, 1 - COST_UNCERTAINTY, min),
                   high=made(max, 1 + COST_UNCERTAINTY, max), measurements=len(costs))


@dataclass(frozen=True)
class SlowdownEstimate:
    calls: int  # calls the run made: recorded, or extrapolated from the kept part (extrapolated)
    extrapolated: bool
    call_ns: float  # mean cost of one call (this run's mix of Python and C calls), measured
    call_ns_range: tuple[float, float]  # the lower and higher of the measurements
    measurements: int  # 2: at start-up and at exit
    fresh_entry_ns: float  # plus this for each of the buffer's entries filled the first time
    calls_s: float  # CPU time the calls cost (their buffer's fresh memory too), over threads
    hook_s: float  # the rest of their Python code slowed by the profile hook (Python 3.11)
    added_s: float  # calls_s + hook_s: what VizTracer added to the wall when nothing hid it
    # The least and most it can have added: the cost range's ends, and for threads that ran in
    # parallel at the low end only the busiest thread's calls (the hook's share then includes C
    # code that it does not slow).
    added_low_s: float
    added_high_s: float
    capped: bool  # at the point estimate, a thread was cut to the time it held the GIL
    wall_s: float
    parallel: bool
    parallelism: float | None
    loop_slowdown: float

    @property
    def slowdown(self) -> float:
        """Traced wall / estimated wall without VizTracer, when nothing hid the added time."""
        return _ratio(self.wall_s, self.added_s)

    @property
    def slowdown_low(self) -> float:
        return _ratio(self.wall_s, self.added_low_s)

    @property
    def slowdown_high(self) -> float | None:
        """None when the upper end is past what the estimate can tell (see open_ended)."""
        return None if self.open_ended else _ratio(self.wall_s, self.added_high_s)

    @property
    def open_ended(self) -> bool:
        """The calls may account for nearly all of the run: what is left for the program itself
        is then too small a difference to turn into a ratio, and only a lower bound is said."""
        return self.added_high_s >= (1 - MIN_UNTRACED_SHARE) * self.wall_s

    @property
    def material(self) -> bool:
        return self.slowdown > MATERIAL_SLOWDOWN

    def figures(self) -> VizTracerCost:
        """The figures model.json keeps (``metrics.viztracer.cost``)."""
        high = self.slowdown_high
        return VizTracerCost(
            calls=self.calls,
            calls_extrapolated=self.extrapolated,
            call_ns=round(self.call_ns, 1),
            added_s=round(self.added_s, 3),
            added_low_s=round(self.added_low_s, 3),
            added_high_s=round(self.added_high_s, 3),
            slowdown=round(self.slowdown, 2),
            slowdown_low=round(self.slowdown_low, 2),
            slowdown_high=None if high is None else round(high, 2),
        )


def _ratio(wall_s: float, added_s: float) -> float:
    if wall_s <= 0:
        return 1.0
    untraced = max(wall_s - added_s, MIN_UNTRACED_SHARE * wall_s)
    return wall_s / untraced


@dataclass(frozen=True)
class _Added:
    calls_s: float
    hook_s: float
    busiest_calls_s: float  # the thread whose calls cost most
    capped: bool

    @property
    def total(self) -> float:
        return self.calls_s + self.hook_s


def _added(functions: FunctionTrace, cost: MeasuredCost, by_tid: dict[int, ThreadTimeline],
           scale: float, fresh_share: float) -> _Added:
    """Per thread: its calls at ``cost`` and its share of the buffer's first fill, plus the
    hook's slowing of the rest of its Python time; never more than the thread held the GIL
    (the hook runs holding it), or its CPU time without a GIL source."""
    factor = max(cost.loop_slowdown, 1.0)
    calls_total = hook_total = busiest = 0.0
    capped = False
    for tid, calls in functions.calls.items():
        calls_s = (cost.calls_s(calls) + calls.total * fresh_share * cost.fresh_entry_ns / 1e9
                   ) * scale
        hook_s = 0.0
        thread = by_tid.get(tid)
        python_s = None
        if thread is not None:
            python_s = thread.gil_held_s if thread.gil_held_s is not None else (
                thread.cpu_s or None)
        if python_s is not None:
            if calls_s > python_s:
                calls_s, capped = python_s, True
            if factor > 1.0:
                hook_s = (python_s - calls_s) * (1.0 - 1.0 / factor)
        calls_total += calls_s
        hook_total += hook_s
        busiest = max(busiest, calls_s)
    return _Added(calls_total, hook_total, busiest, capped)


def estimate_slowdown(functions: FunctionTrace, costs: CostRange,
                      threads: list[ThreadTimeline], pid: int, wall_s: float,
                      parallelism: float | None,
                      buffer_entries: int | None = None) -> SlowdownEstimate:
    """The estimate for one run, at the cost range's point and at both its ends. Each entry of
    the buffer faults in fresh memory once (up to ``buffer_entries``, then the buffer wraps).
    After a buffer overflow the counts cover only the kept part of the run and are scaled up to
    the whole of it at the kept part's rate."""
    scale = 1.0
    if functions.overflow and functions.kept_from_s is not None and wall_s > 0:
        kept_s = wall_s - functions.kept_from_s
        if kept_s > 0:
            scale = wall_s / kept_s
    by_tid = {t.tid: t for t in threads if t.pid == pid}
    made = functions.total_calls * scale
    filled = min(made, float(buffer_entries)) if buffer_entries else made
    fresh_share = filled / made if made else 0.0  # of each call, the share that filled fresh memory
    point, low, high = (_added(functions, cost, by_tid, scale, fresh_share)
                        for cost in (costs.point, costs.low, costs.high))
    parallel = parallelism is not None and parallelism > PARALLEL_ABOVE
    every = ThreadCalls(python=sum(c.python for c in functions.calls.values()),
                        c=sum(c.c for c in functions.calls.values()))
    margin = 1 + COST_UNCERTAINTY
    return SlowdownEstimate(
        calls=round(functions.total_calls * scale),
        extrapolated=scale > 1.0,
        call_ns=costs.point.per_call_ns(every),
        call_ns_range=(costs.low.per_call_ns(every) / (1 - COST_UNCERTAINTY),
                       costs.high.per_call_ns(every) / margin),
        measurements=costs.measurements,
        fresh_entry_ns=costs.point.fresh_entry_ns,
        calls_s=point.calls_s,
        hook_s=point.hook_s,
        added_s=point.total,
        added_low_s=low.busiest_calls_s if parallel else low.total,
        added_high_s=high.total,
        capped=point.capped,
        wall_s=wall_s,
        parallel=parallel,
        parallelism=parallelism,
        loop_slowdown=costs.point.loop_slowdown,
    )


def count_words(n: int) -> str:
    """4,100,000 -> "4.1M"; readers compare magnitudes, not digits."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns < 1000 else f"{ns / 1000:.1f} µs"


# Contended acquisitions past which the estimate adds that contention can make VizTracer cost
# more than its calls: each call inside a critical section holds the lock longer.
CONTENDED_NOTE_FROM = 100


def explain_slowdown(estimate: SlowdownEstimate, python_version: str = "",
                     contended: int = 0) -> str:
    """The estimate with both its inputs, as the report and the summary say it; ``contended``
    lock acquisitions (when the lock recorder ran) add that the estimate leaves them out."""
    calls = ("about " if estimate.extrapolated else "") + count_words(estimate.calls)
    low_ns, high_ns = estimate.call_ns_range
    when = ("measured at start-up and at exit in this interpreter" if estimate.measurements > 1
            else "measured at start-up in this interpreter")
    spread = (f"{_us(low_ns)}-{_us(high_ns)}, " if high_ns > low_ns * 1.05 else "")
    parts = [f"VizTracer recorded {calls} calls at about {_us(estimate.call_ns)} each "
             f"({spread}{when})"]
    if estimate.fresh_entry_ns >= 1:
        parts.append(f", plus about {_us(estimate.fresh_entry_ns)} each to fill fresh memory in "
                     "its buffer")
    parts.append(f": {estimate.calls_s:.2f} s on the threads that made them")
    if estimate.hook_s >= 0.01:
        version = f" (Python {python_version})" if python_version else ""
        parts.append(f"; its profile hook also ran the rest of their Python code about "
                     f"{estimate.loop_slowdown:.1f}x slower{version}, another "
                     f"{estimate.hook_s:.2f} s")
    if estimate.capped:
        parts.append(" (cut to the time those threads held the GIL: the hook cannot have cost "
                     "more, so the machine ran faster during the run than when it measured)")
    parts.append(". ")
    wall = f"{estimate.wall_s:.2f} s"
    margin = f"allowing {COST_UNCERTAINTY:.0%} either way for the per-call cost"
    low, high = estimate.slowdown_low, estimate.slowdown_high
    if estimate.parallel:
        upper = f"{high:.1f}x" if high is not None else "far more"
        parts.append(
            f"Threads also ran in parallel here (CPU parallelism {estimate.parallelism:.2f}), "
            "which can hide part of that time: it added between "
            f"{estimate.added_low_s:.2f} and {estimate.added_high_s:.2f} s to this {wall} run, "
            f"so the program ran between {low:.1f}x and {upper} slower than it would without "
            f"VizTracer (an estimate, {margin}).")
    elif high is None:
        parts.append(
            f"Python code runs one thread at a time, so that is about {estimate.added_s:.2f} s "
            f"of this {wall} run, most of it: the program ran at least {low:.1f}x slower than "
            "it would without VizTracer (an estimate, at the cheapest the calls can have been; "
            "with the calls filling most of the run, what is left for the program itself is too "
            "small to say more).")
    else:
        parts.append(
            f"Python code runs one thread at a time, so it added about "
            f"{estimate.added_s:.2f} s to this {wall} run: the program ran about "
            f"{estimate.slowdown:.1f}x slower than it would without VizTracer (an estimate"
            + (f": {low:.1f}-{high:.1f}x, {margin})." if f"{low:.1f}" != f"{high:.1f}" else ")."))
    if contended >= CONTENDED_NOTE_FROM:
        parts.append(f" This counts the calls' own cost only: with {contended:,} contended lock "
                     "acquisitions, calls inside critical sections hold the locks longer and "
                     "threads wait more, which can slow the program further (a contended cache "
                     "measured 1.4-5x).")
    return "".join(parts)


def dropped_share(functions: FunctionTrace, wall_s: float) -> float | None:
    """After an overflow, the share of the run whose calls VizTracer dropped (its first part):
    at a steady call rate, the share of the calls. None when the trace does not tell."""
    if functions.kept_from_s is None or wall_s <= 0:
        return None
    return round(min(max(functions.kept_from_s / wall_s, 0.0), 1.0), 4)


def overflow_sentence(functions: FunctionTrace, buffer_entries: int | None,
                      wall_s: float) -> str:
    """Said first when the buffer overflowed: what was lost, as far as the trace tells."""
    size = f"{buffer_entries:,} entries" if buffer_entries else "its buffer"
    text = (f"VizTracer's buffer ({size}) overflowed: the oldest function calls were dropped "
            "from trace.json")
    lost = dropped_share(functions, wall_s)
    if lost and functions.kept_from_s is not None:
        text += (f"; only calls that returned in the last {wall_s - functions.kept_from_s:.1f} s "
                 f"of the {wall_s:.1f} s run were kept, so at a steady call rate about "
                 f"{lost:.0%} of them were dropped")
    return text + (". Re-run with a larger --tracer-entries (about 90 bytes each while "
                   "recording), or without --viztracer.")
