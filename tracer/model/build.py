"""Raw recordings of one run folder in, one :class:`RunModel` out.

Every source is optional: whatever was recorded is used, whatever is missing is named in
``sources`` and ``warnings``, and a run that ended badly is marked ``partial`` rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer import raw_files
from tracer.errors import CorruptRecording
from tracer.model.blocked import apply_blocked, evidence_note
from tracer.model.cpu import CpuRecording, analyse_cpu
from tracer.model.functions import FunctionTrace, load_function_trace
from tracer.model.gil import GilReading, GilResult
from tracer.model.gil_exact import ThreadGilFigures, gil_metrics
from tracer.model.gil_sampled import SampledGilResult, child_gil_addresses
from tracer.model.gil_uncertainty import sampled_figures
from tracer.model.locks import LockModel, build_lock_model, load_lock_events
from tracer.model.processes import concurrency_phases, forked_children, process_figures
from tracer.model.rawfiles import read_json, read_jsonl
from tracer.model.samples import SampledThreads, StackTable, load_samples
from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    NATIVE,
    OFF_CPU,
    SIGNAL_WAIT,
    TURNED_OFF,
    EndReason,
    Interval,
    Marker,
    Method,
    RunMetrics,
    RunModel,
    Source,
    StackSource,
    Target,
    TaskKind,
    ThreadTimeline,
    VizTracerFigures,
    source_from_dict,
)
from tracer.model.stacks import (
    StackTimeline,
    StackTrie,
    sampled_timeline,
    snap_to_states,
    viztracer_timelines,
)
from tracer.model.states import overlay, state_seconds
from tracer.model.tasks import (
    DEFAULT_SLOW_STEP_S,
    TaskModel,
    build_tasks,
    name_blocked_steps,
    read_task_events,
)
from tracer.model.viztracer_cost import (
    CostRange,
    MeasuredCost,
    dropped_share,
    estimate_slowdown,
    explain_slowdown,
    overflow_sentence,
)
from tracer.model.where import attribute
from tracer.raw_files import RunStatus, SourceName
from tracer.runfolder import RunFolder

ATTACH_LIMITS = (
    "Attached to a running process: no function timeline (VizTracer runs inside a process "
    "from its start), no lock waits (they need instrumentation loaded before the code that "
    "makes the locks), and thread start/end times are those first/last seen by the samplers."
)

INTERNAL_THREAD_PREFIX = "threadscope-"
# What an instrumented lock wait may replace: the OS or the GIL recorder saw the thread off the
# CPU (or, for a sampled source, on it for a moment while it went to sleep); never running
# Python or waiting for the GIL, which it really did.
BLOCKING_STATES = frozenset({BLOCKED, OFF_CPU, NATIVE})
# Past this many acquisitions the lock recorder's own switch point (see _locks) can dominate.
BUSY_LOCK_ACQUISITIONS = 50_000
# Why a run of the user's own code has no function timeline: a choice, not a failure.
VIZTRACER_OFF_BY_DEFAULT = ("off by default for your own code, because it slows Python code "
                            "(1.6-4.9x measured on real programs); --viztracer turns it on "
                            "(record(viztracer=True) in the API, %%tracer --viztracer)")


@dataclass
class _ThreadFacts:
    """What the bootstrap's thread hooks saw of one thread."""

    name: str = ""
    daemon: bool | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    is_main: bool = False


@dataclass
class BuiltRun:
    model: RunModel
    functions: FunctionTrace = field(default_factory=FunctionTrace)


@dataclass(frozen=True)
class _RunInput:
    """What every part of the build needs from run.json and target.json."""

    run: dict[str, Any]
    target_raw: dict[str, Any]
    events: list[dict[str, Any]]  # threads.jsonl
    t0_ns: int
    end_ns: int
    pid: int
    mode: str  # run | attach | api
    status: RunStatus

    @property
    def wall_s(self) -> float:
        return (self.end_ns - self.t0_ns) / 1e9


def build_run(folder: RunFolder) -> BuiltRun:
    given = _read_input(folder)
    # The GIL samples may be read by a child meanwhile (tracer.model.gil.GilReading)
    with GilReading(folder.raw, given.events, given.pid, given.t0_ns, given.end_ns) as gil_reading:
        return _build(folder, given, gil_reading)


def _build(folder: RunFolder, given: _RunInput, gil_reading: GilReading) -> BuiltRun:
    raw, t0_ns, end_ns, pid = folder.raw, given.t0_ns, given.end_ns, given.pid
    sources, warnings = _sources(given)
    cpu = analyse_cpu(read_jsonl(raw / raw_files.SCHED), t0_ns, end_ns) if (
        raw / raw_files.SCHED).exists() else None
    if cpu is None:
        warnings.append("No OS sampler data: CPU time and parallelism are unknown.")
    table = StackTable()
    sampled = load_samples(read_jsonl(raw / raw_files.PYSPY), t0_ns, end_ns, table,
                           exclude_pid=given.run.get("controller_pid"))
    functions = _functions(folder, given.run, given.target_raw, t0_ns, sources)
    internal = {int(e["tid"]) for e in given.events if e.get("ev") == "internal"}
    threads = [t for t in _threads(pid, _thread_facts(given.events, pid), cpu, sampled, functions,
                                   t0_ns, end_ns)
               if not (t.pid == pid and t.tid in internal)]
    _mark_thread_ends(threads, given.target_raw, given.status, sampled, given.wall_s)
    figure_sources = {"cpu": Method.SAMPLED if cpu else Method.MISSING}
    gil = gil_reading.finish(forks=_forks(raw, cpu, pid))
    if gil is not None:
        _apply_gil(threads, gil, pid)
        warnings.extend(gil.warnings)
        if gil.source in sources:
            sources[gil.source].notes.extend(gil.notes)
    figure_sources.update(_gil_figure_sources(gil, cpu is not None))
    lock_model = _locks(raw, given, sources, warnings)
    if lock_model is not None:
        _apply_locks(threads, lock_model, pid)
        figure_sources["locks"] = Method.INSTRUMENTED
    _blocked_causes(threads, gil, sources, table.stacks, t0_ns, pid)
    cores = int(given.run.get("cores") or (cpu.cores if cpu else 1))
    processes = process_figures(cpu.processes if cpu else [], threads,
                                cpu.process_cpu if cpu else None, gil, pid)
    model = RunModel(
        target=_target(given),
        t0_ns=t0_ns,
        wall_s=round(given.wall_s, 6),
        cores=cores,
        sources=sources,
        threads=threads,
        metrics=_run_metrics(cpu, threads, given.wall_s, cores, gil),
        parallelism=cpu.parallelism if cpu else None,
        markers=_markers(read_jsonl(raw / raw_files.MARKERS), t0_ns, end_ns),
        stacks=table.stacks,
        processes=processes,
        phases=concurrency_phases(processes, threads, cpu.parallelism if cpu else None, pid,
                                  given.wall_s),
        partial=given.status.stopped_early or (given.mode != "attach" and not given.target_raw),
        warnings=warnings + _source_warnings(sources),
        figure_sources=figure_sources,
        locks=lock_model.locks if lock_model else [],
        deadlocks=lock_model.cycles if lock_model else [],
    )
    model.warnings.extend(hook_fault_warnings(given.target_raw.get("hook_faults")))
    _viztracer_slowdown(functions, given.target_raw, model, pid, model.warnings)
    timelines, trie = _attribute(model, functions, pid)
    found_tasks = _tasks(raw, given, sources)
    if found_tasks is not None:
        model.tasks, model.pools, model.loops = (found_tasks.tasks, found_tasks.pools,
                                                 found_tasks.loops)
        name_blocked_steps(model.loops, timelines, trie, found_tasks.user_files)
        if found_tasks.tasks:
            model.figure_sources["tasks"] = Method.INSTRUMENTED
    return BuiltRun(model=model, functions=functions)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _tasks(raw: Path, given: _RunInput, sources: dict[SourceName, Source]) -> TaskModel | None:
    """Pool work items and asyncio tasks, when the target recorded them."""
    options = given.run.get("options", {})
    if given.mode == "attach" or not options.get("tasks", False):
        return None
    path = _in_target_file(raw / raw_files.TASKS, given, sources, SourceName.TASKS,
                           "tasks_unavailable", "task recorder")
    if path is None:
        return None
    slow = float(options.get("slow_step_s") or DEFAULT_SLOW_STEP_S)
    found = build_tasks(read_task_events(path), given.t0_ns, given.end_ns, slow)
    pool_items = sum(1 for t in found.tasks if t.kind is not TaskKind.ASYNCIO)
    sources[SourceName.TASKS] = Source(
        used=True, method=Method.INSTRUMENTED, samples=len(found.tasks),
        notes=[f"{_count(pool_items, 'pool work item')} in {_count(len(found.pools), 'pool')}, "
               f"{_count(len(found.tasks) - pool_items, 'asyncio task')} on "
               f"{_count(len(found.loops), 'event loop')}; steps of {slow:g} s or longer "
               "block the loop",
               f"work item and event-loop hooks in pure Python ({found.python_hooks}): pools "
               "of short tasks run slower than untraced (1.2-1.4x in benchmarks/RESULTS.md)"
               if found.python_hooks else "work item and event-loop hooks in C"])
    return found


def _attribute(model: RunModel, functions: FunctionTrace, pid: int
               ) -> tuple[dict[tuple[int, int], StackTimeline], StackTrie]:
    """Where the time went and who kept whom waiting, from the threads' final states and the
    best stack source the run has: VizTracer's calls (exact) when it kept them all, else
    py-spy's samples."""
    viztracer = model.sources.get(SourceName.VIZTRACER)
    trie = StackTrie()
    if viztracer is not None and viztracer.used and functions.chunks and not functions.overflow:
        timelines = viztracer_timelines(functions.chunks, pid, trie)
        source, rate = StackSource.VIZTRACER, None
    else:
        cache: dict[int, int] = {}
        pyspy = model.sources.get(SourceName.PYSPY)
        rate = pyspy.rate_hz if pyspy is not None else None
        period = 1.0 / rate if rate else 0.0
        timelines = {(t.pid, t.tid): snap_to_states(
                         sampled_timeline(t.samples, model.stacks, trie, cache), t.intervals,
                         period)
                     for t in model.threads if t.samples}
        source = StackSource.PYSPY if timelines else StackSource.NONE
        rate = rate if timelines else None
    found = attribute(model.threads, timelines, trie, source, rate)
    model.where, model.gil_blame, model.lock_blame = (found.where, found.gil_blame,
                                                      found.lock_blame)
    return dict(timelines), trie


def _read_input(folder: RunFolder) -> _RunInput:
    run: dict[str, Any] | None = read_json(folder.raw_file(raw_files.RUN))
    if not isinstance(run, dict):
        raise CorruptRecording(f"{folder.raw_file(raw_files.RUN)} is missing or not a JSON object")
    target_raw: dict[str, Any] = read_json(folder.raw_file(raw_files.TARGET)) or {}
    events = list(read_jsonl(folder.raw_file(raw_files.THREADS)))
    t0_ns = int(target_raw.get("t0_ns") or _first(events, "run_start") or run["go_ns"])
    end_ns = max(int(target_raw.get("end_ns") or run["exit_ns"]), t0_ns)
    mode = str(run.get("mode", "run"))
    status = str(target_raw.get("status") or run["status"]) if mode == "api" else run["status"]
    return _RunInput(run, target_raw, events, t0_ns, end_ns,
                     pid=int(target_raw.get("pid") or run["pid"]), mode=mode,
                     status=RunStatus.of(status))


def _sources(given: _RunInput) -> tuple[dict[SourceName, Source], list[str]]:
    """The recorders' sources as run.json has them, and the warnings the kind of run implies."""
    warnings: list[str] = []
    sources = {SourceName(name): _source(value)
               for name, value in given.run.get("sources", {}).items()}
    if given.mode == "attach":
        warnings.append(ATTACH_LIMITS)
        for name in (SourceName.VIZTRACER, SourceName.LOCKS, SourceName.TASKS):
            sources[name] = Source(used=False, reason="not available when attaching to a "
                                                      "running process")
    elif not given.target_raw:
        warnings.append("The target ended without writing its own record (killed or crashed "
                        "hard): the function timeline and thread names may be missing.")
    return sources, warnings


def _forks(raw: Path, cpu: CpuRecording | None, pid: int) -> set[int]:
    """The target's forked children (:func:`forked_children`), told by where the GIL sampler
    found their GILs when it followed them."""
    layout = read_json(raw / raw_files.GIL_LAYOUT)
    target_gil = int(layout["gil_addr"]) if isinstance(layout, dict) and isinstance(
        layout.get("gil_addr"), int) else None
    return forked_children(cpu.processes if cpu else [], pid,
                           child_gil_addresses(raw / raw_files.GIL_SAMPLES), target_gil)


def _gil_figure_sources(gil: GilResult | None, has_cpu: bool) -> dict[str, Method]:
    if gil is None:
        return {"gil": Method.MISSING,
                "thread_states": Method.SAMPLED if has_cpu else Method.MISSING}
    out = {"gil": gil.method, "thread_states": gil.method}
    if gil.holder_method != gil.method:
        out["gil_holder"] = gil.holder_method
    return out


def _target(given: _RunInput) -> Target:
    described = given.run["target"]
    return Target(
        kind=described["kind"],
        name=described["name"],
        argv=list(described["argv"]),
        python=str(given.target_raw.get("python") or given.run.get("python", "")),
        python_version=str(given.target_raw.get("python_version", "")),
        exit_code=given.run.get("exit_code"),
        status=given.status,
        error=given.target_raw.get("error"),
    )


def _run_metrics(cpu: CpuRecording | None, threads: list[ThreadTimeline], wall_s: float,
                 cores: int, gil: GilResult | None) -> RunMetrics:
    cpu_s = cpu.cpu_s if cpu else sum(t.cpu_s for t in threads)
    peak = max(cpu.parallelism.values) if cpu and cpu.parallelism and cpu.parallelism.values \
        else None
    return RunMetrics(
        cpu_s=round(cpu_s, 6),
        parallelism=round(cpu_s / wall_s, 4) if wall_s > 0 and cpu else None,
        cores=cores,
        threads=len(threads),
        peak_parallelism=peak,
        gil=gil.figures if gil is not None else None,
    )


def _first(events: list[dict[str, Any]], kind: str) -> int | None:
    for event in events:
        if event.get("ev") == kind:
            return int(event["t_ns"])
    return None


def _functions(folder: RunFolder, run: dict[str, Any], target_raw: dict[str, Any], t0_ns: int,
               sources: dict[SourceName, Source]) -> FunctionTrace:
    options = run.get("options", {})
    if run.get("mode") == "attach":
        return FunctionTrace()
    if not options.get("viztracer", False):
        if options.get("viztracer_by_default") or run.get("mode") == "api":
            sources[SourceName.VIZTRACER] = Source(used=False, reason=VIZTRACER_OFF_BY_DEFAULT,
                                          off_by_choice=True)
        return FunctionTrace()
    path = folder.raw_file(raw_files.VIZTRACER)
    error = target_raw.get("viztracer_error") or ""
    if not path.exists():
        reason = error or "the target ended before VizTracer could save its trace"
        sources[SourceName.VIZTRACER] = Source(used=False, reason=reason)
        return FunctionTrace()
    entries = target_raw.get("viztracer_entries")
    functions = load_function_trace(path, target_raw.get("viztracer_clock", []), t0_ns,
                                    buffer_entries=int(entries) if entries else None)
    notes = [f"{functions.entries:,} events, {functions.total_calls:,} of them calls"]
    if functions.overflow:
        notes.append("buffer full: the oldest calls were dropped")
    sources[SourceName.VIZTRACER] = Source(used=True, method=Method.INSTRUMENTED,
                                           samples=functions.entries, notes=notes)
    return functions


def _viztracer_slowdown(functions: FunctionTrace, target_raw: dict[str, Any],
                        model: RunModel, pid: int, warnings: list[str]) -> None:
    """Say up front what VizTracer did to this run: an overflow first, then how much it slowed
    the program (estimated from this run's calls), when that is material."""
    source = model.sources.get(SourceName.VIZTRACER)
    if source is None or not source.used:
        return
    up_front: list[str] = []
    figures = model.metrics.viztracer = VizTracerFigures(overflow=functions.overflow)
    if functions.overflow:
        figures.dropped_share = dropped_share(functions, model.wall_s)
        up_front.append(overflow_sentence(functions, target_raw.get("viztracer_entries"),
                                          model.wall_s))
    costs = [cost for cost in (MeasuredCost.from_raw(target_raw.get(key) or {})
                               for key in ("viztracer_cost", "viztracer_cost_end"))
             if cost is not None]
    if costs and functions.calls:
        entries = target_raw.get("viztracer_entries")
        estimate = estimate_slowdown(functions, CostRange.of(costs), model.threads, pid,
                                     model.wall_s,
                                     model.metrics.parallelism,
                                     buffer_entries=int(entries) if entries else None)
        contended = sum(lock.contended for lock in model.locks if lock.contention)
        sentence = explain_slowdown(estimate, model.target.python_version, contended)
        source.notes.append(sentence)
        figures.cost = estimate.figures()
        if estimate.material:
            up_front.append(sentence + " Timings, CPU and GIL shares here are the traced "
                            "program's: re-run without --viztracer for figures closer to an "
                            "untraced run.")
    else:
        source.notes.append("its cost was not measured at start-up: no slowdown estimate")
    warnings[0:0] = up_front


def _thread_facts(events: list[dict[str, Any]], pid: int) -> dict[tuple[int, int], _ThreadFacts]:
    """Per (pid, tid): a forked child's threads log to the target's file, with their own pid
    (records made before the pid was written are the target's)."""
    facts: dict[tuple[int, int], _ThreadFacts] = {}
    for event in events:
        kind = event.get("ev")
        if kind not in ("start", "end", "main", "existing"):
            continue
        key = (int(event.get("pid") or pid), int(event["tid"]))
        if key[0] != pid and kind in ("main", "existing"):
            continue  # a child's threads as the GIL sampler first walked them: not a start
        fact = facts.setdefault(key, _ThreadFacts())
        if event.get("name"):
            fact.name = str(event["name"])
        if kind == "start":
            fact.start_ns = int(event["t_ns"])
            fact.daemon = bool(event.get("daemon"))
        elif kind == "end":
            fact.end_ns = int(event["t_ns"])
        elif kind == "existing":
            fact.daemon = bool(event.get("daemon"))
        else:
            fact.is_main = True
            fact.daemon = False
    return facts


def _threads(pid: int, facts: dict[tuple[int, int], _ThreadFacts], cpu: CpuRecording | None,
             sampled: SampledThreads, functions: FunctionTrace, t0_ns: int,
             end_ns: int) -> list[ThreadTimeline]:
    keys: set[tuple[int, int]] = set(facts)
    if cpu:
        keys |= {key for key, t in cpu.threads.items() if t.last_ns >= t0_ns}
    keys |= set(sampled.samples)
    out: list[ThreadTimeline] = []
    for key in sorted(keys):
        fact = facts.get(key) or _ThreadFacts()
        cpu_thread = cpu.threads.get(key) if cpu else None
        name = (fact.name or sampled.names.get(key)
                or (functions.thread_names.get(key[1]) if key[0] == pid else None)
                or (cpu_thread.comm if cpu_thread else "") or f"thread {key[1]}")
        if name.startswith(INTERNAL_THREAD_PREFIX) or (
                cpu_thread is not None and cpu_thread.comm.startswith(INTERNAL_THREAD_PREFIX)):
            continue  # ours (a forked child's lock writer is named only by the OS)
        if key[0] != pid:  # a child process's thread: say which process it belongs to
            name = f"{'main' if key[0] == key[1] else name} [pid {key[0]}]"
        is_main = fact.is_main or key[0] == key[1] == pid
        seen = sampled.samples.get(key, [])
        if cpu_thread is None and seen and not is_main:  # only py-spy saw it: when it did
            first_ns, last_ns = t0_ns + int(seen[0].t * 1e9), t0_ns + int(seen[-1].t * 1e9)
        else:
            first_ns = t0_ns if is_main or not cpu_thread else max(cpu_thread.first_ns, t0_ns)
            last_ns = (cpu_thread.last_ns if cpu_thread and not is_main
                       and cpu_thread.last_ns < end_ns else end_ns)
        start_ns = fact.start_ns if fact.start_ns is not None else first_ns
        stop_ns = fact.end_ns if fact.end_ns is not None else last_ns
        start_s = round(max(0, start_ns - t0_ns) / 1e9, 6)
        end_s = round(max(0, min(stop_ns, end_ns) - t0_ns) / 1e9, 6)
        intervals = _clip(cpu_thread.intervals if cpu_thread else [], start_s, end_s)
        thread = ThreadTimeline(
            tid=key[1], pid=key[0], name=name, start_s=start_s, end_s=end_s,
            cpu_s=round(cpu_thread.cpu_s, 6) if cpu_thread else 0.0,
            daemon=fact.daemon, is_main=is_main and key[0] == pid,
            end_reason=EndReason.FINISHED if fact.end_ns is not None else None,
            intervals=intervals, samples=sampled.samples.get(key, []),
        )
        thread.state_s = state_seconds(thread.intervals)
        out.append(thread)
    out.sort(key=lambda t: (t.pid != pid, not t.is_main, t.start_s or 0.0, t.tid))
    return out


def _apply_gil(threads: list[ThreadTimeline], gil: GilResult, pid: int) -> None:
    """GIL states replace the OS view where known; the OS view fills what the GIL source missed
    (e.g. before a thread's first GIL event).

    A new thread must take the GIL before it runs its first line of Python, so its life starts
    at its first GIL wait, not at the hook that logs it: that wait belongs to the thread. The
    per-thread figures are computed from the same clipped intervals the timeline shows."""
    for thread in threads:
        if thread.pid == pid:
            timelines, wait_figures = gil.timelines, gil.wait_figures
        elif thread.pid in gil.children:  # a forked child's own GIL
            child = gil.children[thread.pid]
            timelines, wait_figures = child.timelines, child.wait_figures
        else:
            continue
        timeline = timelines.get(thread.tid)
        if not timeline or thread.start_s is None or thread.end_s is None:
            continue
        if not thread.is_main:
            thread.start_s = round(min(thread.start_s, max(0.0, timeline[0].start)), 6)
        known = _clip(timeline, thread.start_s, thread.end_s)
        thread.intervals = overlay(known, thread.intervals, frozenset())
        thread.state_s = state_seconds(thread.intervals)
        life = max(thread.end_s - thread.start_s, 1e-9)
        mine = gil_metrics({thread.tid: known}, life).threads.get(thread.tid, ThreadGilFigures())
        thread.gil_held_s = round(mine.held_s, 6)
        thread.gil_wait_s = round(mine.wait_s, 6)
        thread.gil_waits = mine.waits
        thread.max_gil_wait_s = round(mine.max_wait_s, 6)
        exact = wait_figures.get(thread.tid)
        if exact is not None:  # counted from the events themselves, not from intervals
            thread.gil_waits = exact.waits
            thread.max_gil_wait_s = round(exact.max_wait_s, 6)
        _sampled_uncertainty(thread, gil)


def _sampled_uncertainty(thread: ThreadTimeline, gil: GilResult) -> None:
    """A sampled source says, per thread, how sure its figures are (SampledGilFigures)."""
    evidence = gil.evidence.get(thread.tid) if isinstance(gil, SampledGilResult) else None
    if evidence is None or thread.start_s is None or thread.end_s is None:
        return
    thread.gil_sampled = sampled_figures(
        evidence, thread.start_s, thread.end_s, held_s=thread.gil_held_s or 0.0,
        wait_s=thread.gil_wait_s or 0.0, waits=thread.gil_waits or 0,
        max_wait_s=thread.max_gil_wait_s or 0.0)


def _in_target_file(path: Path, given: _RunInput, sources: dict[SourceName, Source],
                    name: SourceName, refused: str, recorder: str) -> Path | None:
    """The raw file of a recorder inside the target, or None with the source saying why: the
    target said it could not install it (a ``refused`` event), or it never wrote the file."""
    unavailable = [e.get("reason", "") for e in given.events if e.get("ev") == refused]
    if unavailable or not path.exists():
        sources[name] = Source(used=False, reason=(unavailable or [
            f"the target ended before the {recorder} wrote anything"])[0])
        return None
    return path


def _locks(raw: Path, given: _RunInput, sources: dict[SourceName, Source],
           warnings: list[str]) -> LockModel | None:
    if not given.run.get("options", {}).get("locks", False) or given.mode == "attach":
        return None
    path = _in_target_file(raw / raw_files.LOCKS, given, sources, SourceName.LOCKS,
                           "locks_unavailable", "lock recorder")
    if path is None:
        return None
    lock_events = load_lock_events(path)
    lock_model = build_lock_model(lock_events, given.t0_ns, given.end_ns)
    why_python = [e.get("why_python") or "a recording made before the C core existed"
                  for e in lock_events if e.get("ev") == "start" and e.get("core") != "c"]
    python_core = bool(why_python)
    contended = sum(lock.contended for lock in lock_model.locks if lock.contention)
    signalled = sum(lock.contended for lock in lock_model.locks if not lock.contention)
    sources[SourceName.LOCKS] = Source(
        used=True, method=Method.INSTRUMENTED, samples=contended + signalled,
        notes=[f"{len(lock_model.locks)} locks and other primitives, {contended} contended "
               f"acquisitions (threading.Lock/RLock/Semaphore) and {signalled} waits for a "
               "signal (Condition/Event/Barrier, queue)",
               f"Lock/RLock fast path in pure Python ({why_python[0]}): lock-heavy code "
               "runs slower and contends more than untraced" if python_core else
               "Lock/RLock fast path in C: switches threads where the real lock does"],
    )
    acquisitions = sum(lock.acquisitions for lock in lock_model.locks)
    if python_core and acquisitions >= BUSY_LOCK_ACQUISITIONS and contended:
        warnings.append(
            f"The program took locks {acquisitions:,} times with the lock recorder's "
            f"pure-Python fast path ({why_python[0]}). Its release is "
            "Python code, and CPython may switch threads on entering it while the lock is "
            "still held: short critical sections then contend far more than without the "
            f"recorder ({contended:,} contended acquisitions here). Re-run with --no-locks to "
            "compare wall times (up to 40x measured on a tight loop), or reinstall threadscope "
            "with a C compiler present."
        )
    dropped = sum(int(e.get("n", 0)) for e in lock_events if e.get("ev") == "dropped")
    if dropped:
        warnings.append(
            f"The lock recorder's buffer was full {dropped:,} times: that many contended "
            "waits or holds are missing from the lock figures (the program made them faster "
            "than the recorder wrote them).")
    for cycle in lock_model.cycles:
        steps = "; ".join(
            f"{step.thread} holds {', '.join(h.name or '?' for h in step.holds)} "
            f"and waits for {step.waits_for.name or '?'}" for step in cycle)
        warnings.append(f"Deadlock: {steps}.")
    for held in lock_model.held_at_exit:
        warnings.append(f"{held.thread or held.tid} still held "
                        f"{held.name or 'a lock'} when the program ended.")
    return lock_model


def _apply_locks(threads: list[ThreadTimeline], lock_model: LockModel, pid: int) -> None:
    """Instrumented waits turn the blocked time they cover into ``lock_wait`` (contention: a
    Lock, RLock or Semaphore another thread held) or ``signal_wait`` (a Condition, Event,
    Barrier or queue: a signal nobody owes), as the lock model classed each wait."""
    for thread in threads:
        if thread.pid != pid or thread.start_s is None or thread.end_s is None:
            continue
        waits = _clip(lock_model.waits.get(thread.tid, []), thread.start_s, thread.end_s)
        thread.holds = _clip(lock_model.holds.get(thread.tid, []), thread.start_s, thread.end_s)
        if waits:
            thread.intervals = overlay(thread.intervals, waits, BLOCKING_STATES)
            thread.state_s = state_seconds(thread.intervals)
        thread.lock_wait_s = round(thread.state_s.get(LOCK_WAIT, 0.0), 6)
        thread.signal_wait_s = round(thread.state_s.get(SIGNAL_WAIT, 0.0), 6)


def _blocked_causes(threads: list[ThreadTimeline], gil: GilResult | None,
                    sources: dict[SourceName, Source], stacks: list[list[str]], t0_ns: int,
                    pid: int) -> None:
    """Each thread's blocked time by cause (:mod:`tracer.model.blocked`), from the GIL
    sampler's syscalls; the GIL source's notes say how."""
    syscalls = gil.syscalls if gil is not None else None
    pyspy = sources.get(SourceName.PYSPY)
    period = 1.0 / pyspy.rate_hz if pyspy is not None and pyspy.rate_hz else 0.0
    for thread in threads:
        apply_blocked(thread, syscalls if thread.pid == pid else None, t0_ns, stacks, period)
    if gil is not None and gil.source in sources and any(t.blocked_by for t in threads):
        sources[gil.source].notes.append(evidence_note(gil.method == Method.EXACT, syscalls))


def _clip(intervals: list[Interval], start: float, end: float) -> list[Interval]:
    out = []
    for interval in intervals:
        s, e = max(interval.start, start), min(interval.end, end)
        if e > s:
            out.append(Interval(s, e, interval.state, interval.detail))
    return out


def _mark_thread_ends(threads: list[ThreadTimeline], target_raw: dict[str, Any],
                      status: RunStatus, sampled: SampledThreads, wall_s: float) -> None:
    """Say how each thread ended: finished, killed at interpreter exit, or still running."""
    alive = {int(a["tid"]): a for a in target_raw.get("daemon_alive", []) if a.get("tid")}
    for thread in threads:
        if thread.tid in alive and thread.end_reason is None:
            thread.end_reason = EndReason.KILLED_AT_EXIT if alive[thread.tid].get("daemon") \
                else EndReason.RUNNING_AT_STOP
            thread.last_stack = list(alive[thread.tid].get("stack", []))
            thread.end_s = round(wall_s, 6)
        elif thread.end_reason is None and thread.is_main:
            thread.end_reason = EndReason.FINISHED if status in (
                RunStatus.OK, RunStatus.ENDED, RunStatus.FAILED) else EndReason.RUNNING_AT_STOP
        elif thread.end_reason is None and status.stopped_early:
            thread.end_reason = EndReason.RUNNING_AT_STOP
        final = sampled.final_stacks.get((thread.pid, thread.tid))
        if final and not thread.last_stack:
            thread.last_stack = final


def _markers(records: Any, t0_ns: int, end_ns: int) -> list[Marker]:
    out: list[Marker] = []
    open_phases: dict[tuple[str, int], Marker] = {}
    for record in records:
        t = round((int(record["t_ns"]) - t0_ns) / 1e9, 6)
        name, tid = str(record.get("name", "")), record.get("tid")
        if record.get("kind") == "mark":
            out.append(Marker(name, "mark", t, None, tid, dict(record.get("fields", {}))))
        elif record.get("kind") == "phase_start":
            marker = Marker(name, "phase", t, None, tid, dict(record.get("fields", {})))
            open_phases[(name, tid or 0)] = marker
            out.append(marker)
        elif record.get("kind") == "phase_end":
            started = open_phases.pop((name, tid or 0), None)
            if started is not None:
                started.end = t
    for marker in open_phases.values():
        marker.end = round((end_ns - t0_ns) / 1e9, 6)
    return out


def _source(value: dict[str, Any]) -> Source:
    """A recorder's source from run.json. Recordings made before ``off_by_choice`` existed said
    a recorder was left out only by its reason's wording."""
    source = source_from_dict(value)
    if "off_by_choice" not in value and source.reason == TURNED_OFF:
        source.off_by_choice = True
    return source


def hook_fault_warnings(faults: Any) -> list[str]:
    """What the hooks inside the program recorded otherwise than it was, or lost, rather than
    raise into the user's code (``hook_faults`` in target.json, see tracer.instrument.faults)."""
    if not isinstance(faults, dict) or not faults:
        return []
    parts = []
    for kind, fault in sorted(faults.items()):
        if not isinstance(fault, dict):
            continue
        example = str(fault.get("example") or "")
        parts.append(f"{kind} ×{int(fault.get('n', 0)):,}" + (f" ({example})" if example else ""))
    if not parts:
        return []
    return ["threadscope's hooks inside the program recorded these otherwise than they were, or "
            "not at all, rather than raise into its code: " + "; ".join(parts) + "."]


def _source_warnings(sources: dict[SourceName, Source]) -> list[str]:
    return [f"{name.value} was not used: {source.reason}"
            for name, source in sorted(sources.items())
            if not source.used and source.reason and not source.off_by_choice]

