"""Run every benchmark and print the tables; ``--write`` also records them in RESULTS.md.

    python -m benchmarks.run                 # all: ~35 min on 2 cores (6 without growth)
    python -m benchmarks.run --quick         # one round, fewer cases
    python -m benchmarks.run --only growth   # one of: overhead, gil-cost, gil, gil-waits, locks,
                                             # tasks, scale, growth, viztracer, pyspy,
                                             # children, where, cpython
    python -m benchmarks.run --write         # and update benchmarks/RESULTS.md

The sections: ``overhead`` (traced / untraced time of three scenarios, per recorder),
``gil-cost`` (benchmarks/gil_cost.py: the exact GIL path on sqlite writers, chunked hashing, a
socket ping-pong, a convoy and CPU threads: cost per mode, whether the cost guard kept exact
recording, wait counts against gil_truth.py and against uprobes in the same execution, ~6 min),
``gil``
(sampled GIL states against exact ones), ``gil-waits`` (benchmarks/gil_accuracy.py: the
sampled-only mode's wait counts and longest waits, with their bounds, against an independent
uprobe count of the same run: convoys and CPU threads, 3 rounds, ~2 min), ``locks`` (ns per
instrumented lock pair), ``tasks`` (benchmarks/task_cost.py: 100,000 short pool tasks and
100,000 asyncio tasks with only the task recorder, ~3 min), ``scale``
(analysis and report of synthetic recordings up to 512 threads and 60 s), ``growth``
(benchmarks/recording_scale.py: a real threaded program recorded at 1/8/64/512 threads for
1/10/60 s, with overhead, time after exit, sizes and events per case, and where cost per thread or
per second stops being linear) and ``viztracer`` (benchmarks/viztracer_cost.py: the report's
estimate of VizTracer's slowdown against measured runs of three threaded programs, ~10 min) and
``pyspy`` (benchmarks/pyspy_cost.py: the continuous py-spy recorder's cost on gil_cpu, and py-spy
record's --nonblocking, blocking and --gil by hand, ~3 min) and ``where`` (benchmarks/where_cost.py:
what attributing time to code adds to the analysis of 1M synthetic VizTracer calls, ~1 min) and
``children`` (benchmarks/children_cost.py: a process pool traced with and without the GIL
sampler following its workers, ~4 min) and
``cpython`` (benchmarks/cpython_tests.py: CPython's test_threading, test_thread, test_queue,
test_asyncio and, on 3.13, test_concurrent_futures, untraced and under ``tracer run``, compared
test by test on 3.11-3.13, ~15 min; ``--quick`` leaves test_asyncio and
test_concurrent_futures out).
``growth`` is most of the full run's time: 28 minutes on 2
busy cores, because its cases add up to about 5 minutes of untraced work, each run three ways
(untraced, full about 2x slower, sampled) and the biggest recordings take 2 minutes to analyse;
so it runs one round even without ``--quick`` (its 1 s cases three, being the noisiest), and
``--quick`` keeps its 1 s and 10 s cases with 1, 8 and 64 threads (about 4 minutes).

Timing claims live here, measured side by side in one run, never in the test suite.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import (
    children_cost,
    cpython_tests,
    gil_accuracy,
    gil_cost,
    lock_cost,
    overhead,
    pyspy_cost,
    recording_scale,
    report_scale,
    task_cost,
    viztracer_cost,
    where_cost,
)

HERE = Path(__file__).resolve().parent
SECTIONS = ["overhead", "gil-cost", "gil", "gil-waits", "locks", "tasks", "scale", "growth",
            "viztracer", "pyspy", "children", "where", "cpython"]


def _pythons() -> list[str]:
    found = [sys.executable]
    for version in ("3.12.1", "3.13.0"):
        candidate = Path.home() / ".pyenv" / "versions" / version / "bin" / "python"
        if candidate.exists():
            found.append(str(candidate))
    return found


def _markdown(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _show(console: Console, title: str, header: list[str], rows: list[list[str]]) -> str:
    table = Table(title=title, title_justify="left")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return _markdown(title, header, rows)


def growth_cases(quick: bool) -> list[tuple[int, float]]:
    """Every thread count with every duration; quick keeps what takes seconds, not minutes."""
    if quick:
        return [(n, s) for s in (1.0, 10.0) for n in (1, 8, 64)]
    return [(n, s) for s in (1.0, 10.0, 60.0) for n in (1, 8, 64, 512)]


def _fmt(value: float, spec: str = ".2f", suffix: str = "") -> str:
    """A measured number, or "-" where the run failed."""
    return "-" if math.isnan(value) else format(value, spec) + suffix


def _growth(console: Console, quick: bool) -> str:
    rows = recording_scale.measure(growth_cases(quick), rounds=1)
    overhead_rows, cost_rows, notes = [], [], []
    for row in rows:
        full, sampled = row.runs["full"], row.runs["sampled"]
        notes += [f"{row.threads} threads, {row.seconds:g} s, {mode} mode: {run.status}"
                  for mode, run in row.runs.items() if run.status != "ok"]
        overhead_rows.append([
            str(row.threads), f"{row.seconds:g}", f"{row.threads * row.iterations:,}",
            f"{row.untraced_s:.2f}", _fmt(full.work_s), _fmt(row.ratio("full"), ".2f", "x"),
            _fmt(sampled.work_s), _fmt(row.ratio("sampled"), ".2f", "x")])
        cost_rows.append([
            str(row.threads), f"{row.seconds:g}",
            f"{_fmt(full.after_exit_s, '.1f')} = {_fmt(full.stop_s, '.1f')}+"
            f"{_fmt(full.analyse_s, '.1f')}+{_fmt(full.write_s, '.1f')}",
            _fmt(sampled.after_exit_s, ".1f"), _fmt(full.wall_s, ".1f"),
            _fmt(full.raw_mb, ".0f"), _fmt(full.report_mb, ".1f"), _fmt(full.trace_mb, ".0f"),
            f"{full.events:,}" + (" overflow" if full.overflow else ""),
            f"{full.perf_events:,}", f"{_fmt(full.sched_hz, '.0f')}/{_fmt(full.gil_hz, '.0f')}",
            _fmt(full.peak_mib, ".0f")])
    markdown = _show(
        console, "Recording a real program: work time traced / untraced (scale_target.py)",
        ["threads", "seconds", "items", "untraced s", "full s", "full", "sampled s", "sampled"],
        overhead_rows)
    markdown += "\n" + _show(
        console, "Recording a real program: time after the target exited, and sizes (full mode "
                 "unless named)",
        ["threads", "seconds", "after exit s = stop+analyse+write", "sampled after exit s",
         "command s", "raw MB", "report MB", "trace MB", "VizTracer events", "perf events",
         "sched/GIL Hz", "peak MiB"],
        cost_rows)
    notes += recording_scale.growth_notes(rows)
    for note in notes:
        console.print(f"- {note}", highlight=False, markup=False)
    return markdown + "\n" + "".join(f"- {note}\n" for note in notes)


def _gil_cost(console: Console, rounds: int) -> str:
    rows = gil_cost.measure(rounds)
    markdown = _show(
        console, "Exact GIL path on GIL-release-heavy programs: work time traced / untraced "
                 "(median), whether the cost guard kept exact recording, and the worker threads' "
                 "GIL waits against gil_truth.py (separate run under its uprobes)",
        gil_cost.HEADER, gil_cost.table(rows))
    same = []
    for case, (name, args, prefix) in gil_cost.CASES.items():
        try:
            counts = gil_cost.same_run(gil_cost.PROGRAMS / name, prefix, args)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            console.print(f"- same-run count of {case} failed: {exc}", markup=False)
            continue
        for thread, (ours, theirs) in sorted(counts.items()):
            same.append([case, thread, f"{ours:,}", f"{theirs:,}",
                         f"{(ours - theirs) / theirs:+.0%}" if theirs else "-"])
    markdown += "\n" + _show(
        console, "GIL waits of one execution counted twice: threadscope's futex events against "
                 "take_gil calls that took > 20 us (uprobes, same perf session)",
        ["program", "thread", "threadscope waits", "uprobe waits > 20 us", "difference"], same)
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="one round, fewer cases")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--only", choices=SECTIONS, action="append")
    args = parser.parse_args(argv)
    console = Console()
    chosen = set(args.only or SECTIONS)
    sections = []
    began = time.monotonic()
    if "overhead" in chosen:
        rows = overhead.measure(rounds=1 if args.quick else 3)
        sections.append(_show(
            console, "Recording overhead (scenario time traced / untraced, median)",
            ["scenario", "mode", "untraced s", "ratio"],
            [[s, m, f"{u:.2f}", f"{r:.2f}x"] for s, m, u, r in rows]))
    if "gil-cost" in chosen:
        sections.append(_gil_cost(console, rounds=1 if args.quick else 5))
    if "pyspy" in chosen:
        sections.append(_show(
            console, "py-spy's cost (gil_cpu's work phase traced / untraced, side by side)",
            pyspy_cost.HEADER, pyspy_cost.measure(rounds=1 if args.quick else 5)))
    if "children" in chosen:
        sections.append(_show(
            console, "Following child processes: a process pool's work phase traced / untraced",
            children_cost.HEADER, children_cost.measure(rounds=1 if args.quick else 3)))
    if "where" in chosen:
        sections.append(_show(
            console, "Where the time went: analysis added by attributing 1M VizTracer calls",
            where_cost.HEADER, where_cost.measure(rounds=1 if args.quick else 3)))
    if "gil" in chosen:
        rows_gil = gil_accuracy.measure()
        sections.append(_show(
            console, "Sampled GIL states vs exact (same run), per-thread share of lifetime",
            ["case", "threads", "held err max (pp)", "held err mean", "wait err max (pp)",
             "wait err mean"],
            [[c, str(n), f"{a:.1f}", f"{b:.1f}", f"{d:.1f}", f"{e:.1f}"]
             for c, n, a, b, d, e in rows_gil]))
    if "gil-waits" in chosen:
        rows_waits = gil_accuracy.measure_waits(rounds=1 if args.quick else 3)
        inside = sum(row.inside for row in rows_waits)
        sections.append(_show(
            console, "Sampled-only GIL waits vs an independent uprobe count (same run): "
                     f"{inside} of {len(rows_waits)} inside the sampled bounds",
            ["case", "thread", "waits (low-high)", "independent", "error", "longest (low-high)",
             "independent longest"],
            [[r.case, r.thread, f"{r.waits} ({r.waits_low}-{r.waits_high})", str(r.truth_waits),
              f"{(r.waits - r.truth_waits) / r.truth_waits:+.0%}",
              f"{r.longest_s * 1e3:.1f} ms ({r.longest_low_s * 1e3:.1f}-"
              f"{r.longest_high_s * 1e3:.1f})", f"{r.truth_longest_s * 1e3:.1f} ms"]
             for r in rows_waits] or [["(needs root and perf)", "", "", "", "", "", ""]]))
    if "locks" in chosen:
        rows_lock = lock_cost.measure(_pythons())
        sections.append(_show(
            console, "Lock instrumentation: ns per uncontended pair",
            ["python", "form", "plain ns", "instrumented ns", "added ns"],
            [[v, f, f"{p:.0f}", f"{t:.0f}", f"{t - p:.0f}"] for v, f, p, t in rows_lock]))
    if "tasks" in chosen:
        rows_task = task_cost.measure(_pythons(), rounds=3 if args.quick else task_cost.ROUNDS)
        sections.append(_show(
            console, f"Task recorder alone: {task_cost.TASKS:,} short tasks, traced / untraced "
                     "(pairs in one interpreter, median ratio)", task_cost.HEADER,
            [task_cost.row(r) for r in rows_task]))
    if "scale" in chosen:
        cases = [(1, 1.0, 10_000), (8, 10.0, 100_000), (64, 60.0, 1_000_000)]
        if not args.quick:
            cases[2:2] = [(8, 60.0, 300_000), (64, 10.0, 300_000), (512, 10.0, 500_000)]
        rows_scale = report_scale.measure(cases)
        sections.append(_show(
            console, "Analysis and report at scale (synthetic recordings, fresh process each)",
            ["threads", "seconds", "VizTracer events", "analyse+render s", "peak MiB",
             "report.html MB", "trace.json MB", "browser load s"],
            [[str(n), f"{s:g}", f"{e:,}", f"{t:.1f}", f"{m:.0f}", f"{r:.1f}", f"{j:.0f}",
              "-" if b is None else f"{b:.1f}"] for n, s, e, t, m, r, j, b in rows_scale]))
    if "growth" in chosen:
        sections.append(_growth(console, args.quick))
    if "viztracer" in chosen:
        rows_viz = viztracer_cost.measure(rounds=1 if args.quick else 5)
        sections.append(_show(
            console, "VizTracer's slowdown: the report's estimate against measured runs "
                     "(work phase, median)", viztracer_cost.HEADER, viztracer_cost.table(rows_viz)))
    if "cpython" in chosen:
        only = ("test_threading", "test_thread", "test_queue") if args.quick else ()
        sections.append(_show(
            console, "CPython's thread test suites, untraced and under tracer run "
                     "(--no-viztracer): pass/fail/skip per test", cpython_tests.HEADER,
            [result.row() for result in cpython_tests.measure(only=only)]))
    elapsed = time.monotonic() - began
    console.print(f"benchmarks took {elapsed:.0f} s")
    if args.write:
        header = (
            "# Benchmark results\n\n"
            f"Recorded {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}: "
            f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; `python -m benchmarks.run` "
            f"({'quick' if args.quick else 'full'}, {elapsed:.0f} s). Ratios are medians of "
            "rounds that alternate modes, so machine noise hits every mode alike.\n\n"
        )
        (HERE / "RESULTS.md").write_text(header + "\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
