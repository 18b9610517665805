"""When to use what, for CPU-bound work: the same pure-Python tasks run one after another, in
threads, as asyncio coroutines and in worker processes, measured side by side (wall time, CPU
time, CPU parallelism, speed-up over sequential) on the machine that runs it.

Threads take turns on the GIL and coroutines share one thread, so neither is faster than running
the tasks in a row; each process has its own interpreter and GIL, so processes use several cores.
The worker processes are started (and warmed up) in their own phase before the timed work, so
their start-up cost is shown apart from the speed-up. They are started with "spawn": a clean
interpreter per worker, as on macOS and Windows, rather than a fork of a traced process.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from scenarios.workloads import MODELS, count, run_four_ways
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel



def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import compare_phases, comparison_text, not_checked, phase_window
    from tracer.model.schema import Claim

    rows = compare_phases(model, MODELS)
    if "sequential" not in rows:
        return [not_checked("CPU-bound work under each concurrency model",
                            "the sequential phase was not recorded")]
    table = comparison_text(rows)
    claims: list[Claim] = []
    for name, why in (("threading", "the GIL lets one thread run Python at a time"),
                      ("asyncio", "coroutines share one thread")):
        speedup = rows.get(name, {}).get("speedup")
        parallelism = rows.get(name, {}).get("parallelism")
        text = f"{name} gives no speed-up on CPU-bound work: {why}"
        if speedup is None:
            claims.append(not_checked(text, f"the {name} phase was not recorded"))
            continue
        # On a machine busy with other work the phases' wall times wander; a phase that never
        # used more than about one core cannot have been sped up by running concurrently.
        one_core = parallelism is not None and parallelism < 1.2
        note = ("" if speedup < 1.25 else
                " (faster in wall time, but on about one core: the machine's other load "
                "changed between phases)" if one_core else "")
        shown = "?" if parallelism is None else f"{parallelism:.2f}"
        claims.append(Claim(text, held=speedup < 1.25 or one_core,
                            detail=f"{speedup:.2f}x over sequential, CPU parallelism {shown}"
                                   f"{note}"))
    mp_text = "multiprocessing speeds CPU-bound work up by at least 1.5x"
    speedup = rows.get("multiprocessing", {}).get("speedup")
    startup = phase_window(model, "multiprocessing_startup")
    startup_note = (f"; starting the worker processes took {startup[1] - startup[0]:.2f} s "
                    "(not in the timed phase)" if startup else "")
    if model.cores < 2:
        claims.append(not_checked(mp_text, f"this machine has {model.cores} core: processes "
                                           "have nothing to run in parallel on"))
    elif speedup is None:
        claims.append(not_checked(mp_text, "the multiprocessing phase was not recorded"))
    else:
        claims.append(Claim(mp_text, held=speedup >= 1.5,
                            detail=f"{speedup:.2f}x on {model.cores} cores{startup_note}"
                                   f"{_tracer_note(model, rows)}"))
    cores_text = "Only multiprocessing uses more than one core"
    parallel = {name: row["parallelism"] for name, row in rows.items()}
    if model.cores < 2:
        claims.append(not_checked(cores_text, f"this machine has {model.cores} core"))
    elif any(value is None for value in parallel.values()) or len(parallel) < len(MODELS):
        claims.append(not_checked(cores_text, "CPU parallelism was not recorded for every "
                                              "model (the OS sampler did not run?)"))
    else:
        others = [parallel[name] or 0.0 for name in MODELS if name != "multiprocessing"]
        claims.append(Claim(
            cores_text,
            held=(parallel["multiprocessing"] or 0.0) > 1.3 and max(others) < 1.3,
            detail=table,
        ))
    return claims


def _tracer_note(model: RunModel, rows: dict[str, dict[str, float | None]]) -> str:
    """VizTracer slows the traced process but not the spawned workers, which flatters
    multiprocessing: say so, with the CPU each spent on the same work."""
    from scenarios.checks import in_process_tracer_note

    if not in_process_tracer_note(model):
        return ""
    sequential_cpu = rows.get("sequential", {}).get("cpu")
    workers_cpu = rows.get("multiprocessing", {}).get("cpu")
    cpus = (f" (the same work took {sequential_cpu:.2f} CPU-s traced, {workers_cpu:.2f} CPU-s "
            "in the workers)" if sequential_cpu and workers_cpu else "")
    return in_process_tracer_note(model) + cpus


SCENARIO = Scenario(
    name="compare_cpu",
    concept="Choosing a model",
    section="9: Threading vs async vs multiprocessing (CPU-bound)",
    summary="The same CPU-bound tasks: sequential, threads, asyncio, processes, side by side",
    claim="For CPU-bound work only multiprocessing is faster than running the tasks in a row "
          "(on 2+ cores); threads and asyncio are not",
    look_for="The parallelism curve near 1 for sequential, threading and asyncio and near the "
             "core count for multiprocessing, whose work shows up as other processes' threads",
    params=(
        Param("tasks", 4, "number of CPU-bound tasks"),
        Param("work", 6_000_000, "loop iterations per task"),
        Param("processes", 0, "worker processes (0: one per core)"),
    ),
    check=check,
)


async def cpu_coroutine(work: int) -> int:
    """A coroutine that never awaits: the event loop cannot run another until it returns."""
    return count(work)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    walls = run_four_ways(count, cpu_coroutine, args.work, args.tasks,
                          processes=args.processes or os.cpu_count() or 1, warm_up_arg=1,
                          thread_prefix="cpu")
    for name in MODELS:
        print(f"{name:>16}: {walls[name]:.2f} s "
              f"({walls['sequential'] / walls[name]:.2f}x over sequential)")


if __name__ == "__main__":
    main(sys.argv[1:])
