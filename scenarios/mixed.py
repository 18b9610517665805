"""Mixed work, the notebook's recommendation: asyncio for the waits, a ProcessPoolExecutor for the
CPU-heavy parts. The same workload (a few waits, a few CPU-bound tasks, and a heartbeat coroutine
that should tick every few milliseconds) runs twice: once with the CPU work called straight from a
coroutine, which holds the event loop until it returns, and once handed to worker processes with
``loop.run_in_executor``. The heartbeat's lateness measures how responsive the loop stayed.

The pool is started with "spawn" (see compare_cpu) and warmed up in its own phase."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from scenarios.workloads import count
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, Marker, RunModel

PHASES = ("cpu_in_loop", "cpu_in_processes")


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import (
        in_process_tracer_note,
        marks,
        not_checked,
        phase_window,
        run_params,
    )
    from tracer.model.queries import mean_parallelism
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    windows = {name: phase_window(model, name) for name in PHASES}
    if any(window is None for window in windows.values()):
        return [not_checked("asyncio with a process pool keeps the loop responsive",
                            "the run ended before both phases were recorded")]

    def inside(found: list[Marker], name: str) -> list[Marker]:
        window = windows[name]
        assert window is not None
        return [m for m in found if window[0] <= m.start <= window[1]]

    ticks = marks(model, "tick")
    lag = {name: max((float(m.fields.get("lag_ms", 0.0)) for m in inside(ticks, name)),
                     default=None) for name in PHASES}
    tasks = [float(m.fields.get("seconds", 0.0)) for m in inside(marks(model, "cpu_task"),
                                                                  "cpu_in_loop")]
    claims: list[Claim] = []
    block_text = "CPU work called from a coroutine blocks the event loop while it runs"
    loop_lag, pool_lag = lag["cpu_in_loop"], lag["cpu_in_processes"]
    if loop_lag is None or not tasks:
        claims.append(not_checked(block_text, "no heartbeat or CPU task was recorded"))
    else:
        task_ms = statistics.median(tasks) * 1000
        claims.append(Claim(
            block_text,
            held=loop_lag >= 0.5 * task_ms,
            detail=f"the {params.tick_ms:g} ms heartbeat was up to {loop_lag:.0f} ms late; "
                   f"each CPU task took {task_ms:.0f} ms",
        ))
    responsive_text = "With a ProcessPoolExecutor the loop stays responsive during the CPU work"
    if loop_lag is None or pool_lag is None:
        claims.append(not_checked(responsive_text, "the heartbeat was not recorded"))
    else:
        claims.append(Claim(
            responsive_text,
            held=pool_lag < 0.25 * loop_lag,
            detail=f"heartbeat at most {pool_lag:.0f} ms late with the pool vs "
                   f"{loop_lag:.0f} ms with the CPU work in the loop",
        ))
    parallel_text = "The CPU tasks run in parallel in the worker processes"
    # While the tasks ran: from the earliest start to the last end their marks give.
    done = inside(marks(model, "cpu_task"), "cpu_in_processes")
    spans = [(m.start - float(m.fields.get("seconds", 0.0)), m.start) for m in done]
    busy = (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None
    parallelism = mean_parallelism(model, *busy) if busy else None
    if model.cores < 2 or params.cpu_tasks < 2:
        claims.append(not_checked(parallel_text, f"{model.cores} core(s), {params.cpu_tasks} "
                                                 "CPU task(s): nothing to run in parallel"))
    elif busy is None or parallelism is None:
        claims.append(not_checked(parallel_text, "the CPU tasks or CPU parallelism were not "
                                                 "recorded"))
    else:
        claims.append(Claim(
            parallel_text,
            held=parallelism > 1.2,
            detail=f"CPU parallelism {parallelism:.2f} on {model.cores} cores while the "
                   f"{len(done)} tasks ran ({busy[1] - busy[0]:.2f} s, vs "
                   f"{sum(tasks):.2f} s one after another in the loop)"
                   f"{in_process_tracer_note(model)}",
        ))
    return claims


SCENARIO = Scenario(
    name="mixed",
    concept="Choosing a model",
    section="9: Mixed work: asyncio + ProcessPoolExecutor",
    summary="asyncio waits plus CPU tasks: in the loop vs in a ProcessPoolExecutor",
    claim="For mixed work, combine asyncio with a ProcessPoolExecutor: the loop stays "
          "responsive and the CPU work runs on other cores",
    look_for="The heartbeat marks: long gaps while the CPU work runs in the loop, regular with "
             "the pool; the worker processes busy side by side in the second phase",
    params=(
        Param("io_tasks", 4, "concurrent waits (asyncio.sleep standing in for network calls)"),
        Param("seconds", 0.5, "how long each wait lasts"),
        Param("cpu_tasks", 2, "CPU-bound tasks"),
        Param("work", 5_000_000, "loop iterations per CPU task"),
        Param("tick_ms", 20.0, "heartbeat period: how often a responsive loop runs it"),
    ),
    check=check,
)


def timed_count(work: int) -> int:
    """The CPU task; its mark comes from whichever process runs it."""
    began = time.perf_counter()
    total = count(work)
    mark("cpu_task", seconds=round(time.perf_counter() - began, 6))
    return total


async def heartbeat(stop: asyncio.Event, tick: float) -> None:
    """Ticks every ``tick`` seconds; how late each tick wakes up is how long the loop was busy."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(tick)
        mark("tick", lag_ms=round((loop.time() - before - tick) * 1000, 3))


async def cpu_in_coroutine(work: int) -> int:
    return timed_count(work)


async def workload(args: argparse.Namespace, pool: ProcessPoolExecutor | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop, args.tick_ms / 1000))
    await asyncio.sleep(0)  # the heartbeat is ticking before any work starts
    waits = [asyncio.sleep(args.seconds) for _ in range(args.io_tasks)]
    if pool is None:
        cpu = [cpu_in_coroutine(args.work) for _ in range(args.cpu_tasks)]
        await asyncio.gather(*waits, *cpu)
    else:
        jobs = [loop.run_in_executor(pool, timed_count, args.work) for _ in range(args.cpu_tasks)]
        await asyncio.gather(*waits, *jobs)
    stop.set()
    await beat


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    walls: dict[str, float] = {}
    with phase("cpu_in_loop"):
        began = time.perf_counter()
        asyncio.run(workload(args, None))
        walls["CPU work in the event loop"] = time.perf_counter() - began
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.cpu_tasks, mp_context=context) as pool:
        with phase("process_pool_startup"):
            list(pool.map(count, [1] * args.cpu_tasks))
        with phase("cpu_in_processes"):
            began = time.perf_counter()
            asyncio.run(workload(args, pool))
            walls["CPU work in a ProcessPoolExecutor"] = time.perf_counter() - began
    for name, wall in walls.items():
        print(f"{name:>34}: {wall:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
