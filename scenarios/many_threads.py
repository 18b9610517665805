"""Many threads in a loop: start N workers that each sleep, then join them all. The sleeps
overlap, so the whole takes about one sleep, not N. Scaled up (``--threads 50``, ``--threads
500``) it shows what each thread costs: the time from ``start()`` to the worker's first line, and
the CPU spent per thread, next to the sleep they all share."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, phase_window, run_params, window_cpu_seconds
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    n, seconds = params.threads, params.seconds
    window = phase_window(model, "threads")
    claims: list[Claim] = []
    wall_claim = (f"{n} threads sleeping {seconds:g} s each finish in about {seconds:g} s, "
                  f"not {n * seconds:g} s")
    if window is None:
        return [not_checked(wall_claim, "the run ended before the threads phase was recorded")]
    wall = window[1] - window[0]
    claims.append(Claim(
        claim=wall_claim,
        # 2 ms per thread allows for starting and joining them on a slow, loaded machine.
        held=wall <= 1.5 * seconds + 0.002 * n and (n < 2 or wall < 0.5 * n * seconds),
        detail=f"wall {wall:.2f} s for {n * seconds:g} s of sleeping "
               f"({n * seconds / wall:.1f}x the work done per second of wall time)",
    ))
    called = {m.fields.get("i"): m.start for m in marks(model, "start_called")}
    running = {m.fields.get("i"): m.start for m in marks(model, "worker_running")}
    latencies = sorted(running[i] - called[i] for i in running if i in called)
    cost_claim = "Starting a thread costs little next to the wait it overlaps"
    if not latencies:
        claims.append(not_checked(cost_claim, "the start marks are missing"))
    else:
        median = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        cpu = window_cpu_seconds(model, *window)
        cpu_note = (f"; {cpu / n * 1000:.2f} ms of CPU per thread in all" if cpu is not None
                    else "")
        claims.append(Claim(
            claim=cost_claim,
            held=median < 0.05 * seconds,
            detail=f"start() to first line: median {median * 1000:.2f} ms, 95th percentile "
                   f"{p95 * 1000:.2f} ms, max {latencies[-1] * 1000:.2f} ms over {len(latencies)} "
                   f"threads{cpu_note}; {(wall - seconds) / n * 1000:.2f} ms of wall time per "
                   "thread beyond one sleep",
        ))
    finished = marks(model, "worker_finished")
    if running and finished:
        last_start = max(running.values())
        first_end = finished[0].start
        claims.append(Claim(
            claim="All the threads are alive at the same time",
            held=last_start < first_end,
            detail=f"the last thread started at {last_start:.3f} s, the first finished at "
                   f"{first_end:.3f} s; finishing spread {finished[-1].start - first_end:.3f} s "
                   "(every wake-up needs the GIL in turn)",
        ))
    return claims


SCENARIO = Scenario(
    name="many_threads",
    concept="Threads",
    section="5: Running multiple threads",
    summary="N sleeping workers started in a loop and joined: one sleep, not N",
    claim="Five 2 s workers take about 2 s, not 10 s; the cost per thread stays small at scale",
    look_for="N worker bars starting in a staircase and ending together; try --threads 500 to "
             "see the start-up staircase and the wake-up spread grow",
    params=(
        Param("threads", 5, "number of worker threads (try 50, 500)"),
        Param("seconds", 1.0, "how long each worker sleeps (the notebook: 2 s)"),
    ),
    check=check,
)


def worker(i: int, seconds: float, quiet: bool) -> None:
    mark("worker_running", i=i)
    if not quiet:
        print(f"Thread {i} starting")
    time.sleep(seconds)
    mark("worker_finished", i=i)
    if not quiet:
        print(f"Thread {i} finished")


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    quiet = args.threads > 20  # 500 pairs of lines tell nothing the timeline does not
    with phase("threads"):
        began = time.perf_counter()
        threads = []
        for i in range(args.threads):
            t = threading.Thread(target=worker, args=(i, args.seconds, quiet), name=f"worker-{i}")
            threads.append(t)
            mark("start_called", i=i)
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    print(f"All {args.threads} threads completed in {wall:.2f} s "
          f"({args.threads * args.seconds:g} s of sleeping)")


if __name__ == "__main__":
    main(sys.argv[1:])
