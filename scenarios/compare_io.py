"""When to use what, for I/O-bound work: the same waits (``sleep`` standing in for a network
call) run one after another, in threads, as asyncio coroutines and in worker processes, measured
side by side on the machine that runs it.

Waiting releases the GIL, so threads overlap their waits; coroutines overlap them on one thread by
awaiting; processes overlap them too, but each worker is a whole interpreter to start. The
workers are started with "spawn" in their own phase, so that cost is measured apart from the
waits (see compare_cpu for why spawn).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from scenarios.workloads import MODELS, run_four_ways
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel



def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import (
        compare_phases,
        comparison_text,
        not_checked,
        phase_window,
        run_params,
        threads_started_in,
        window_cpu_seconds,
    )
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    n, seconds = params.tasks, params.seconds
    rows = compare_phases(model, MODELS)
    if "sequential" not in rows:
        return [not_checked("I/O-bound work under each concurrency model",
                            "the sequential phase was not recorded")]
    # Overlapped waits take one wait; half-way to the sum still means they overlapped.
    overlapped = seconds + 0.5 * (n - 1) * seconds
    claims: list[Claim] = []
    for name, text in (
        ("threading", f"Threads overlap the {n} waits: about {seconds:g} s, not {n * seconds:g} s"),
        ("asyncio", f"asyncio overlaps the {n} waits on a single thread"),
        ("multiprocessing", f"Processes overlap the {n} waits too"),
    ):
        row = rows.get(name)
        if row is None or row["wall"] is None:
            claims.append(not_checked(text, f"the {name} phase was not recorded"))
            continue
        held = row["wall"] < overlapped
        detail = f"wall {row['wall']:.2f} s for {n * seconds:g} s of waiting"
        if name == "asyncio":
            window = phase_window(model, "asyncio")
            extra = threads_started_in(model, *window) if window else []
            held = held and not extra
            detail += (f"; threads started meanwhile: {', '.join(t.name for t in extra)}"
                       if extra else "; no thread started meanwhile")
        claims.append(Claim(text, held=held, detail=detail))
    startup = phase_window(model, "multiprocessing_startup")
    threaded = rows.get("threading")
    cost_text = "Processes cost far more to start than threads for the same waits"
    startup_cpu = window_cpu_seconds(model, *startup) if startup else None
    if startup is None or threaded is None or startup_cpu is None or threaded["cpu"] is None:
        claims.append(not_checked(cost_text, "the start-up phase or the CPU figures are missing"))
    else:
        claims.append(Claim(
            cost_text,
            held=startup_cpu > 2 * threaded["cpu"],
            detail=f"starting {n} worker processes: {startup[1] - startup[0]:.2f} s and "
                   f"{startup_cpu:.3f} CPU-s; the whole threading phase: {threaded['cpu']:.3f} "
                   f"CPU-s",
        ))
    idle = {name: rows[name]["parallelism"] for name in ("threading", "asyncio") if name in rows}
    if idle and all(value is not None for value in idle.values()):
        claims.append(Claim(
            "Waiting uses almost no CPU, in threads or coroutines",
            held=all((value or 0.0) < 0.3 for value in idle.values()),
            detail=comparison_text(rows),
        ))
    else:
        claims.append(not_checked("Waiting uses almost no CPU, in threads or coroutines",
                                  "CPU parallelism was not recorded (the OS sampler did not run?)"))
    return claims


SCENARIO = Scenario(
    name="compare_io",
    concept="Choosing a model",
    section="9: Threading vs async vs multiprocessing (I/O-bound)",
    summary="The same waits: sequential, threads, asyncio, processes, side by side",
    claim="For I/O-bound work threads and asyncio overlap the waits cheaply; processes do too, "
          "at the price of starting interpreters",
    look_for="Sequential as long as the sum of the waits, the other three about one wait; "
             "asyncio with no extra thread; the CPU spike of starting worker processes",
    params=(
        Param("tasks", 4, "number of waits (e.g. downloads)"),
        Param("seconds", 0.5, "how long each wait lasts"),
    ),
    check=check,
)


def wait(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


async def wait_async(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    # One process per wait, as one thread per wait.
    walls = run_four_ways(wait, wait_async, args.seconds, args.tasks, processes=args.tasks,
                          warm_up_arg=0.0, thread_prefix="io")
    for name, wall in walls.items():
        print(f"{name:>18}: {wall:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
