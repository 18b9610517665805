"""What following child processes costs: a process pool's work phase (32 fixed tasks on 2, 8
and 16 workers) untraced, traced with the GIL sampler following the children, and traced with
it following the target only (``THREADSCOPE_NO_CHILD_GIL=1``), in alternating rounds; median
ratios to untraced, and the GIL sampler's own CPU (its source note) with and without children.

perf, py-spy, VizTracer and the lock recorder are off, so the difference between the two traced
columns is the child follower's alone.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from benchmarks.common import REPO, run_traced, script_phase_seconds

PROGRAM = REPO / "benchmarks" / "programs" / "process_pool_work.py"
SAMPLER_ONLY = ["--no-perf", "--no-pyspy", "--no-locks", "--no-viztracer"]
WORKERS = (2, 8, 16)
HEADER = ["workers", "untraced s (median)", "following children", "target only",
          "sampler CPU, following", "sampler CPU, target only", "children followed", "rounds"]
_CPU = re.compile(r"controller CPU: ([\d.]+)% of one core")
_FOLLOWED = re.compile(r"followed (\d+) child process")


def _sampler(model: dict[str, Any]) -> tuple[float | None, int]:
    notes = " ".join(model["sources"].get("gil-sampler", {}).get("notes", []))
    cpu, followed = _CPU.search(notes), _FOLLOWED.search(notes)
    return (float(cpu.group(1)) if cpu else None), (int(followed.group(1)) if followed else 0)


def measure(rounds: int) -> list[list[str]]:
    rows = []
    for workers in WORKERS:
        args = [str(workers)]
        plain: list[float] = []
        follow: list[float] = []
        alone: list[float] = []
        cpu_follow: list[float] = []
        cpu_alone: list[float] = []
        followed = 0
        for _ in range(rounds):
            plain.append(script_phase_seconds(PROGRAM, args))
            seconds, model = run_traced(str(PROGRAM), args, SAMPLER_ONLY)
            follow.append(seconds)
            cpu, followed = _sampler(model)
            if cpu is not None:
                cpu_follow.append(cpu)
            seconds, model = run_traced(str(PROGRAM), args, SAMPLER_ONLY,
                                        env={"THREADSCOPE_NO_CHILD_GIL": "1"})
            alone.append(seconds)
            cpu, _ = _sampler(model)
            if cpu is not None:
                cpu_alone.append(cpu)
        base = statistics.median(plain)
        rows.append([
            str(workers), f"{base:.2f}",
            f"{statistics.median(f / p for f, p in zip(follow, plain, strict=True)):.2f}x",
            f"{statistics.median(a / p for a, p in zip(alone, plain, strict=True)):.2f}x",
            f"{statistics.median(cpu_follow):.1f}%" if cpu_follow else "—",
            f"{statistics.median(cpu_alone):.1f}%" if cpu_alone else "—",
            str(followed), str(rounds),
        ])
    return rows


if __name__ == "__main__":
    for row in measure(3):
        print(" | ".join(row))
