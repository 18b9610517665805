"""Run every benchmark and print the tables; ``--write`` also records them in RESULTS.md.

    python -m benchmarks.run            # about 6 minutes on 2 cores
    python -m benchmarks.run --quick    # one round, fewer cases
    python -m benchmarks.run --write    # and update benchmarks/RESULTS.md

Timing claims live here, measured side by side in one run, never in the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import gil_accuracy, lock_cost, overhead, report_scale

HERE = Path(__file__).resolve().parent


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--quick", action="store_true", help="one round, fewer cases")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--only", choices=["overhead", "gil", "locks", "scale"], action="append")
    args = parser.parse_args(argv)
    console = Console()
    chosen = set(args.only or ["overhead", "gil", "locks", "scale"])
    sections = []
    began = time.monotonic()
    if "overhead" in chosen:
        rows = overhead.measure(rounds=1 if args.quick else 3)
        sections.append(_show(
            console, "Recording overhead (scenario time traced / untraced, median)",
            ["scenario", "mode", "untraced s", "ratio"],
            [[s, m, f"{u:.2f}", f"{r:.2f}x"] for s, m, u, r in rows]))
    if "gil" in chosen:
        rows_gil = gil_accuracy.measure()
        sections.append(_show(
            console, "Sampled GIL states vs exact (same run), per-thread share of lifetime",
            ["case", "threads", "held err max (pp)", "held err mean", "wait err max (pp)",
             "wait err mean"],
            [[c, str(n), f"{a:.1f}", f"{b:.1f}", f"{d:.1f}", f"{e:.1f}"]
             for c, n, a, b, d, e in rows_gil]))
    if "locks" in chosen:
        rows_lock = lock_cost.measure(_pythons())
        sections.append(_show(
            console, "Lock instrumentation: ns per uncontended pair",
            ["python", "form", "plain ns", "instrumented ns", "added ns"],
            [[v, f, f"{p:.0f}", f"{t:.0f}", f"{t - p:.0f}"] for v, f, p, t in rows_lock]))
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
