"""ThreadPoolExecutor(max_workers=3) with 5 tasks: the pool starts at most three threads and
reuses them, so tasks 4 and 5 wait in the pool's queue until a worker is free. The task
recorder times every work item's submit, start and end (model.json's ``tasks``), so the queue
wait and the two waves are measured, not assumed; the scenario marks only its results."""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, phase_window, run_params
    from tracer.model.schema import Claim, TaskKind

    params = run_params(SCENARIO, model)
    workers, tasks, seconds = params.workers, params.tasks, params.seconds
    # The task recorder's own figures for the pool: no marks of the scenario's own are needed.
    items = sorted((t for t in model.tasks if t.kind is TaskKind.THREAD_POOL
                    and t.pool == "pool" and t.function == "task"), key=lambda t: t.id)
    window = phase_window(model, "pool")
    ran = [t for t in items if t.start_s is not None and t.end_s is not None]
    if window is None or len(ran) < tasks:
        return [not_checked("The pool runs at most max_workers tasks at once",
                            "the pool phase or the pool's tasks are missing (recorded "
                            "without the task recorder?)")]
    claims: list[Claim] = []
    events = sorted([(t.start_s or 0.0, 1) for t in ran] + [(t.end_s or 0.0, -1) for t in ran],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    pool_threads = {t.tid for t in ran}
    claims.append(Claim(
        claim=f"At most max_workers={workers} tasks run at once, on {workers} reused threads",
        held=peak == min(workers, tasks) and len(pool_threads) == min(workers, tasks),
        detail=f"at most {peak} tasks ran at once; {tasks} tasks ran on "
               f"{len(pool_threads)} pool threads",
    ))
    waits = {index: t.queue_wait_s or 0.0 for index, t in enumerate(ran)}
    queued = [task for task in range(tasks) if task >= workers]
    first = [task for task in range(tasks) if task < workers]
    waits_text = ", ".join(f"Task-{task}: {waits[task]:.3f} s" for task in range(tasks))
    claims.append(Claim(
        claim=f"Tasks beyond the first {workers} wait in the queue until a worker is free",
        held=(all(waits[t] >= 0.8 * seconds for t in queued)
              and all(waits[t] < 0.5 * seconds for t in first)),
        detail=f"queue wait (submit to start) {waits_text}",
    ))
    wall = window[1] - window[0]
    waves = math.ceil(tasks / workers)
    claims.append(Claim(
        claim=f"The {tasks} tasks run in {waves} waves: about {waves * seconds:g} s in all",
        held=0.9 * waves * seconds <= wall <= waves * seconds * 1.3 + 0.1,
        detail=f"the pool phase took {wall:.2f} s for {tasks} tasks of {seconds:g} s on "
               f"{workers} workers",
    ))
    gathered = [int(m.fields.get("task", -1)) for m in marks(model, "result")]
    claims.append(Claim(
        claim="future.result() gathers the results in submission order, waiting where needed",
        held=gathered == list(range(tasks)),
        detail="results gathered for " + ", ".join(f"Task-{t}" for t in gathered),
    ))
    return claims


SCENARIO = Scenario(
    name="threadpool",
    concept="Thread pools",
    section="8: ThreadPoolExecutor",
    summary="ThreadPoolExecutor(max_workers=3) with 5 tasks: two waves, queued tasks wait",
    claim="A pool runs at most max_workers tasks at once and reuses its threads; extra tasks "
          "wait in its queue",
    look_for="Three pool threads; Task-0 to Task-2 start at once, Task-3 and Task-4 (the 4th and "
             "5th) start when the first two finish (their submit-to-start gap is the queue "
             "wait); results gathered in order",
    params=(
        Param("workers", 3, "max_workers of the pool (the notebook: 3)"),
        Param("tasks", 5, "tasks submitted (the notebook: 5)"),
        Param("seconds", 0.5, "how long each task sleeps (the notebook: 2 s)"),
    ),
    check=check,
)


def task(index: int, seconds: float) -> str:
    name = f"Task-{index}"
    print(f"Started {name}")
    time.sleep(seconds)
    print(f"Finished {name}")
    return f"{name} done"


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    with phase("pool"), ThreadPoolExecutor(max_workers=args.workers,
                                           thread_name_prefix="pool") as executor:
        futures = []
        for i in range(args.tasks):
            futures.append(executor.submit(task, i, args.seconds))
        for i, future in enumerate(futures):
            result = future.result()
            mark("result", task=i)
            print("Result:", result)


if __name__ == "__main__":
    main(sys.argv[1:])
