"""How recording cost grows with threads and duration, on a real program: the fixed work of
``benchmarks/programs/scale_target.py`` (N threads of CPU work, calls, a ``with lock:`` and a short
wait, sized to take about S seconds untraced) run plain, under ``tracer run`` in the default full
mode and in sampled-only mode (``--no-viztracer --no-perf``).

For each case it measures the program's own time (its ``start`` and ``work`` phase markers:
starting the threads and the work, so interpreter start-up and recorder attach are left out),
what ``tracer run`` spent after the target exited (stopping the recorders, which includes
``perf script``; analysing; writing trace.json and report.html; read from run.json and the files'
modification times), the whole command's wall time, the sizes it left, VizTracer's and perf's
event counts, the rates the samplers reached and the peak memory. :func:`growth_notes` then says
where cost per thread or per second departs from linear. ``benchmarks/report_scale.py`` measures
the analysis alone on synthetic recordings; this one measures what a user waits for.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, median, phase_seconds, read_markers, script_phase_seconds
from tracer import raw_files

PROGRAM = REPO / "benchmarks" / "programs" / "scale_target.py"
# "full": every recorder, VizTracer included (a script gets it only when asked for)
MODES = {"full": ["--viztracer"], "sampled": ["--no-viztracer", "--no-perf"]}
PROBE_S = 1.0  # each thread count is sized by one untraced run of about this long
# Measured: an item makes 10 VizTracer events (the program's 9 calls and the lock recorder's
# ``__exit__``; 18 with the recorder's pure-Python fallback). VizTracer's buffer is sized at 25
# per item plus start-up, so a long run does not overflow (the buffer costs memory up front).
EVENTS_PER_ITEM_BOUND = 25
EVENTS_START_UP = 100_000
DEPARTURE_FACTOR = 1.5
SECONDS_FLOOR = 0.5  # changes smaller than this are noise on a shared 2-core machine
OVERHEAD_FLOOR = 0.1  # and so is a 10 % change in a traced / untraced ratio of one round
SHORT_CASE_WORK_S = 3.0  # short cases repeat until this much work: their noise is the largest
MB_FLOOR = 1.0


@dataclasses.dataclass(frozen=True)
class ItemCost:
    """One work item, one thread, untraced: seconds holding the GIL and seconds waiting."""

    cpu_s: float
    wait_s: float


@dataclasses.dataclass(frozen=True)
class TracedRun:
    """One ``tracer run`` of the program; times in seconds, sizes in MB."""

    status: str  # run.json's status, or "failed: ..." when the command itself failed
    work_s: float = math.nan
    wall_s: float = math.nan  # the whole command, start-up to the last byte of the report
    start_s: float = math.nan  # command start until the target was let go (recorders attach)
    stop_s: float = math.nan  # target exit until the recorders had stopped and written raw/
    analyse_s: float = math.nan  # raw/ -> model.json
    write_s: float = math.nan  # model.json -> trace.json and report.html, and the process exit
    raw_mb: float = math.nan
    report_mb: float = math.nan
    trace_mb: float = math.nan
    events: int = 0
    overflow: bool = False
    perf_events: int = 0  # GIL probe hits and context switches: what perf script and the model read
    sched_hz: float = math.nan  # the rates the samplers reached: below what was asked (200 Hz,
    gil_hz: float = math.nan  # 1 kHz) when a sample of many threads takes longer than its period
    peak_mib: float = math.nan  # the largest process of the run: the analysis or the target

    @property
    def after_exit_s(self) -> float:
        return self.stop_s + self.analyse_s + self.write_s


@dataclasses.dataclass(frozen=True)
class GrowthRow:
    threads: int
    seconds: float
    iterations: int  # per thread
    untraced_s: float
    runs: dict[str, TracedRun]  # by mode, the last round's (sizes) with median times

    def ratio(self, mode: str) -> float:
        return self.runs[mode].work_s / self.untraced_s if self.untraced_s > 0 else math.nan


# -- sizing the work -------------------------------------------------------------------------------

def iterations_for(threads: int, seconds: float, cost: ItemCost) -> int:
    """Items per thread for about ``seconds`` of wall time. Python code runs one thread at a time
    (the GIL), so N threads need N x cpu per round of items, unless each thread's own cpu + wait
    is longer (few threads: the waits overlap and the GIL idles)."""
    per_round = max(threads * cost.cpu_s, cost.cpu_s + cost.wait_s)
    return max(1, round(seconds / per_round))


def rescale(iterations: int, measured_s: float, wanted_s: float) -> int:
    """Items per thread for ``wanted_s``, from a run of ``iterations`` that took ``measured_s``:
    the work is linear in items per thread."""
    if measured_s <= 0:
        return iterations
    return max(1, round(iterations * wanted_s / measured_s))


def tracer_entries_for(threads: int, iterations: int) -> int:
    """VizTracer's buffer for this much work, never below a million."""
    return max(1_000_000, threads * iterations * EVENTS_PER_ITEM_BOUND + EVENTS_START_UP)


# -- running it ------------------------------------------------------------------------------------

def _program_args(threads: int, iterations: int) -> list[str]:
    return ["--threads", str(threads), "--iterations", str(iterations)]


def calibrate() -> ItemCost:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(PROGRAM), "--calibrate"], env=env, cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    item = json.loads(out.strip().splitlines()[-1])
    return ItemCost(cpu_s=float(item["cpu_s"]), wait_s=float(item["wait_s"]))


def run_untraced(threads: int, iterations: int) -> float:
    """The work phase of a plain run, in seconds."""
    return script_phase_seconds(PROGRAM, _program_args(threads, iterations))


def _size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
    return path.stat().st_size / 1e6 if path.exists() else math.nan


def run_traced(threads: int, iterations: int, flags: list[str], seconds: float,
               repo: Path = REPO, keep: Path | None = None) -> TracedRun:
    """One ``tracer run``; a failed or timed-out run is a row that says so, not an exception,
    so one bad case (512 threads, say) does not lose the rest of the table. ``repo`` is the
    checkout whose tracer runs (another one measures a baseline side by side); ``keep`` moves
    the run folder there instead of deleting it."""
    entries = tracer_entries_for(threads, iterations)
    # generous: the full mode runs the work about 2x slower, and a loaded machine slower still
    timeout_s = 10 * seconds + 120
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = {**os.environ, "PYTHONPATH": str(repo)}
        command = [sys.executable, "-m", "tracer", "run", "--quiet", "--force", "--out", str(out),
                   "--tracer-entries", str(entries), "--timeout", f"{timeout_s:g}", *flags,
                   str(PROGRAM), "--", *_program_args(threads, iterations)]
        errors = Path(tmp) / "stderr.txt"
        with errors.open("wb") as sink:
            began_ns = time.monotonic_ns()
            proc = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL,
                                    stderr=sink)
            # wait4, not wait: its rusage has the peak RSS of the command and of every process
            # it waited for (the target among them), i.e. of the largest one
            _, status, usage = os.wait4(proc.pid, 0)
            ended_ns = time.monotonic_ns()
        proc.returncode = os.waitstatus_to_exitcode(status)
        realtime_offset_ns = time.time_ns() - time.monotonic_ns()
        if proc.returncode != 0 or not (out / "model.json").exists():
            lines = errors.read_text(errors="replace").strip().splitlines() or \
                [f"exit code {proc.returncode}"]
            return TracedRun(status=f"failed: {lines[-1][:200]}")
        run = _read_run(out, began_ns, ended_ns, realtime_offset_ns)
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(str(out), keep)
        return dataclasses.replace(run, peak_mib=usage.ru_maxrss / 1024)


def _read_run(out: Path, began_ns: int, ended_ns: int, realtime_offset_ns: int) -> TracedRun:
    raw = out / "raw"
    run = json.loads((raw / raw_files.RUN).read_text())
    model = json.loads((out / "model.json").read_text())
    records = read_markers(raw / raw_files.MARKERS)

    def written_ns(path: Path) -> int:
        """When a file was last written, on the monotonic clock of run.json."""
        return path.stat().st_mtime_ns - realtime_offset_ns

    sources = model.get("sources", {})
    viztracer = sources.get("viztracer", {})

    def count(name: str) -> int:
        source = sources.get(name, {})
        return int(source.get("samples") or 0) if source.get("used") else 0

    def rate(name: str) -> float:
        source = sources.get(name, {})
        return float(source.get("rate_hz") or math.nan) if source.get("used") else math.nan

    overflow = any("overflowed" in warning for warning in model.get("warnings", []))
    return TracedRun(
        status=str(run.get("status", "?")),
        work_s=phase_seconds(records),
        wall_s=(ended_ns - began_ns) / 1e9,
        start_s=(int(run["go_ns"]) - began_ns) / 1e9,
        stop_s=(written_ns(raw / raw_files.RUN) - int(run["exit_ns"])) / 1e9,
        analyse_s=(written_ns(out / "model.json") - written_ns(raw / raw_files.RUN)) / 1e9,
        write_s=(ended_ns - written_ns(out / "model.json")) / 1e9,
        raw_mb=_size_mb(raw),
        report_mb=_size_mb(out / "report.html"),
        trace_mb=_size_mb(out / "trace.json"),
        events=count("viztracer"),
        overflow=overflow and bool(viztracer.get("used")),
        perf_events=count("perf"),
        sched_hz=rate("sched"),
        gil_hz=rate("gil-sampler"),
    )


def _median_run(runs: list[TracedRun]) -> TracedRun:
    """Median times over rounds; sizes and counts of the last (they hardly vary)."""
    last = runs[-1]
    ok = [r for r in runs if not r.status.startswith("failed")]
    if not ok:
        return last

    def mid(name: str) -> float:
        return median([getattr(r, name) for r in ok])

    return TracedRun(status=ok[-1].status, work_s=mid("work_s"), wall_s=mid("wall_s"),
                     start_s=mid("start_s"), stop_s=mid("stop_s"), analyse_s=mid("analyse_s"),
                     write_s=mid("write_s"), raw_mb=ok[-1].raw_mb, report_mb=ok[-1].report_mb,
                     trace_mb=ok[-1].trace_mb, events=ok[-1].events, overflow=ok[-1].overflow,
                     perf_events=ok[-1].perf_events, sched_hz=mid("sched_hz"),
                     gil_hz=mid("gil_hz"), peak_mib=max(r.peak_mib for r in ok))


def size_work(thread_counts: list[int]) -> dict[int, tuple[int, float]]:
    """For each thread count, items per thread for about :data:`PROBE_S` (a guess from one
    item's cost) and what they measured untraced: :func:`rescale` then sizes any duration."""
    cost = calibrate()
    probes = {}
    for threads in thread_counts:
        guess = iterations_for(threads, PROBE_S, cost)
        probes[threads] = (guess, run_untraced(threads, guess))
    return probes


def rounds_for(seconds: float, rounds: int) -> int:
    """Short cases cost little and vary most (a second of another process's work is a 100 %
    error at 1 s), so they get more rounds."""
    return max(rounds, math.ceil(SHORT_CASE_WORK_S / seconds))


def measure(cases: list[tuple[int, float]], rounds: int = 1) -> list[GrowthRow]:
    """One row per (threads, seconds). Each round runs untraced, full and sampled back to back,
    so machine noise hits every mode alike; times are medians over rounds, and cases shorter
    than :data:`SHORT_CASE_WORK_S` get more rounds."""
    probes = size_work(sorted({threads for threads, _ in cases}))
    rows = []
    for threads, seconds in cases:
        iterations = rescale(*probes[threads], wanted_s=seconds)
        untraced: list[float] = []
        traced: dict[str, list[TracedRun]] = {mode: [] for mode in MODES}
        for _ in range(rounds_for(seconds, rounds)):
            untraced.append(run_untraced(threads, iterations))
            for mode, flags in MODES.items():
                traced[mode].append(run_traced(threads, iterations, flags, seconds))
        rows.append(GrowthRow(threads, seconds, iterations, median(untraced),
                              {mode: _median_run(runs) for mode, runs in traced.items()}))
    return rows


# -- where growth departs from linear ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Departure:
    """Between neighbouring cases the cost per unit changed by ``factor`` (> 1: grows faster than
    linear, < 1: slower)."""

    quantity: str
    held: str  # the other axis, e.g. "at 60 s"
    before: str  # where the first cost was measured: "over 8->64 threads", "at 8 threads"
    after: str
    cost_before: float
    cost_after: float
    factor: float

    def text(self) -> str:
        way = "faster" if self.factor > 1 else "slower"
        return (f"{self.quantity} {self.held}: {self.cost_before:.3g} {self.before}, "
                f"{self.cost_after:.3g} {self.after} ({self.factor:.1f}x: grows {way} than "
                "linear)")


def marginal_costs(points: list[tuple[float, float]]) -> list[float]:
    """Cost of one more unit between neighbouring points ``(x, quantity)``, x ascending. A slope,
    not quantity / x, so a fixed cost (start-up, imports) does not read as non-linear."""
    return [(q2 - q1) / (x2 - x1) for (x1, q1), (x2, q2) in zip(points, points[1:])]


def slope_departures(points: list[tuple[float, float]], floor: float,
                     factor: float = DEPARTURE_FACTOR) -> list[tuple[int, float, float, float]]:
    """Segments whose marginal cost differs from the previous one's by more than ``factor``:
    ``(index of the later segment, cost before, cost after, ratio)``. A segment that changed by
    less than ``floor`` is noise: its cost is only known to be at most ``floor`` / width, so it
    can be the cheap side of a departure but never the measured steep side."""
    costs = marginal_costs(points)
    found = []
    for i in range(1, len(costs)):
        width_before = points[i][0] - points[i - 1][0]
        width_after = points[i + 1][0] - points[i][0]
        before_clear = costs[i - 1] * width_before >= floor
        after_clear = costs[i] * width_after >= floor
        before = max(costs[i - 1], floor / width_before)  # at least its noise bound
        after = max(costs[i], floor / width_after)
        steeper = after_clear and after / before > factor
        flatter = before_clear and after / before < 1 / factor
        if steeper or flatter:
            found.append((i, costs[i - 1], costs[i], after / before))
    return found


def level_departures(points: list[tuple[float, float]], floor: float,
                     factor: float = DEPARTURE_FACTOR) -> list[tuple[int, float, float, float]]:
    """For a quantity that is already per unit (added seconds per untraced second): neighbours
    whose values differ by more than ``factor``, values below ``floor`` counted as ``floor``."""
    found = []
    for i in range(1, len(points)):
        before, after = points[i - 1][1], points[i][1]
        ratio = max(after, floor) / max(before, floor)
        if ratio > factor or ratio < 1 / factor:
            found.append((i, before, after, ratio))
    return found


def _series(rows: list[GrowthRow], axis: str) -> dict[float, list[GrowthRow]]:
    """Rows grouped by the other axis and sorted along ``axis``."""
    groups: dict[float, list[GrowthRow]] = {}
    for row in rows:
        key = row.seconds if axis == "threads" else row.threads
        groups.setdefault(key, []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: r.threads if axis == "threads" else r.seconds)
    return dict(sorted(groups.items()))


def _threads(count: float) -> str:
    return f"{count:g} thread" + ("" if count == 1 else "s")


def _at(axis: str, x: float) -> str:
    return f"at {_threads(x)}" if axis == "threads" else f"at {x:g} s"


def _held(axis: str, key: float) -> str:
    return f"at {key:g} s" if axis == "threads" else f"with {_threads(key)}"


_QUANTITIES = {  # name: (value of a row, floor, compared as slope or as level)
    "full mode, after exit s": (lambda r: r.runs["full"].after_exit_s, SECONDS_FLOOR, "slope"),
    "sampled mode, after exit s": (lambda r: r.runs["sampled"].after_exit_s, SECONDS_FLOOR,
                                   "slope"),
    "full mode, raw MB": (lambda r: r.runs["full"].raw_mb, MB_FLOOR, "slope"),
    "full mode, peak MiB": (lambda r: r.runs["full"].peak_mib, 50 * MB_FLOOR, "slope"),
    "full mode, added s per untraced s": (lambda r: r.ratio("full") - 1, OVERHEAD_FLOOR, "level"),
    "sampled mode, added s per untraced s": (lambda r: r.ratio("sampled") - 1, OVERHEAD_FLOOR,
                                             "level"),
}


def departures(rows: list[GrowthRow]) -> list[Departure]:
    """Every place, along either axis, where a measured quantity stops growing linearly."""
    found = []
    for quantity, (value, floor, how) in _QUANTITIES.items():
        for axis in ("threads", "seconds"):
            unit = "threads" if axis == "threads" else "s"
            for key, group in _series(rows, axis).items():
                xs = [float(r.threads if axis == "threads" else r.seconds) for r in group]
                points = [(x, value(r)) for x, r in zip(xs, group)]
                if len(points) < 2 or any(math.isnan(q) for _, q in points):
                    continue
                if how == "slope":
                    for i, before, after, ratio in slope_departures(points, floor):
                        found.append(Departure(
                            f"{quantity} (per extra {axis[:-1]})", _held(axis, key),
                            f"over {xs[i - 1]:g}->{xs[i]:g} {unit}",
                            f"over {xs[i]:g}->{xs[i + 1]:g} {unit}",
                            before, after, ratio))
                else:
                    for i, before, after, ratio in level_departures(points, floor):
                        found.append(Departure(quantity, _held(axis, key),
                                               _at(axis, xs[i - 1]), _at(axis, xs[i]),
                                               before, after, ratio))
    return found


@dataclasses.dataclass(frozen=True)
class EventCost:
    """``seconds ~ fixed_s + per_m_perf * perf events / 1e6 + per_m_viztracer * VizTracer events
    / 1e6``, fitted by least squares; ``largest_miss_s`` says how well."""

    fixed_s: float
    per_m_perf: float
    per_m_viztracer: float
    largest_miss_s: float


def fit_event_cost(samples: list[tuple[float, float, float]]) -> EventCost | None:
    """Fit ``(perf events, VizTracer events, seconds)`` samples; None when the events do not vary
    independently enough to tell the two apart (fewer than 4 cases, or collinear)."""
    if len(samples) < 4:
        return None
    xs = [(1.0, perf / 1e6, viz / 1e6) for perf, viz, _ in samples]
    ys = [seconds for *_, seconds in samples]
    # normal equations (X'X) b = X'y, solved by Gaussian elimination with partial pivoting
    matrix = [[sum(x[i] * x[j] for x in xs) for j in range(3)] + [sum(x[i] * y for x, y in
                                                                     zip(xs, ys))]
              for i in range(3)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(matrix[r][col]))
        if abs(matrix[pivot][col]) < 1e-9:
            return None
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        for r in range(3):
            if r != col:
                scale = matrix[r][col] / matrix[col][col]
                matrix[r] = [a - scale * b for a, b in zip(matrix[r], matrix[col])]
    coef = [matrix[i][3] / matrix[i][i] for i in range(3)]
    miss = max(abs(sum(c * v for c, v in zip(coef, x)) - y) for x, y in zip(xs, ys))
    return EventCost(coef[0], coef[1], coef[2], miss)


def _event_notes(rows: list[GrowthRow]) -> list[str]:
    """Whether the full mode's time after exit follows its events, and how many events a second
    of work makes at each thread count: threads and duration cost through events."""
    full = [r.runs["full"] for r in rows if not r.runs["full"].status.startswith("failed")]
    fit = fit_event_cost([(run.perf_events, run.events, run.after_exit_s) for run in full
                          if not math.isnan(run.after_exit_s)])
    notes = []
    if fit is not None:
        notes.append(
            f"full mode, time after exit ~ {fit.fixed_s:.1f} s + {fit.per_m_perf:.1f} s per "
            f"million perf events + {fit.per_m_viztracer:.1f} s per million VizTracer events "
            f"(least squares over {len(full)} cases, largest miss {fit.largest_miss_s:.1f} s)")
    rates = [f"{_threads(r.threads)} {r.seconds:g} s: {r.runs['full'].perf_events / 1e3 / w:.0f}k"
             for r in rows if (w := r.runs["full"].work_s) > 0 and r.runs["full"].perf_events]
    if rates:
        notes.append("perf events per second of traced work: " + ", ".join(rates))
    return notes


def growth_notes(rows: list[GrowthRow]) -> list[str]:
    """Per-thread and per-second cost of the time after exit, what it follows, then each
    departure from linear."""
    notes = []
    for axis, unit in (("threads", "s per extra thread"), ("seconds", "s per extra second")):
        for mode in MODES:
            parts = []
            for key, group in _series(rows, axis).items():
                points = [(float(r.threads if axis == "threads" else r.seconds),
                           r.runs[mode].after_exit_s) for r in group]
                if len(points) > 1 and not any(math.isnan(q) for _, q in points):
                    costs = ", ".join(f"{c:.3g}" for c in marginal_costs(points))
                    parts.append(f"{_held(axis, key)}: {costs}")
            if parts:
                notes.append(f"{mode} mode, time after exit, {unit}: " + "; ".join(parts))
    notes += _event_notes(rows)
    found = departures(rows)
    if not found:
        notes.append(f"No departure from linear beyond {DEPARTURE_FACTOR}x between neighbouring "
                     "cases.")
    notes += [f"departs from linear: {d.text()}" for d in found]
    return notes
