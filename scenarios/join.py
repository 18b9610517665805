"""The notebook's counter thread, joined: ``join()`` makes the main thread wait until the thread has
finished, so "main Ends" comes after the last number. The no_join and daemon scenarios run the
same counter without the join."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel, ThreadTimeline


def counter(iterations: int, interval: float) -> None:
    """The notebook's ``counter``: print a number, sleep, repeat. Each iteration leaves a mark,
    so a thread cut off early shows which iteration it was in."""
    for i in range(iterations):
        mark("iteration", i=i)
        print(i)
        time.sleep(interval)


def counter_thread(model: RunModel) -> ThreadTimeline | None:
    """The thread that left the iteration marks."""
    from scenarios.checks import marks, thread_by_tid

    found = marks(model, "iteration")
    return thread_by_tid(model, found[0].tid) if found else None


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import busy_seconds, marks, not_checked, run_params, states_note
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    thread = counter_thread(model)
    ends = marks(model, "main_ends")
    starts = marks(model, "main_starts")
    claims: list[Claim] = []
    wait_claim = "join() makes the main thread wait until the counter thread has finished"
    if thread is None or thread.end_s is None or not ends or not starts:
        return [not_checked(wait_claim, "the counter thread or the main marks are missing")]
    done = len(marks(model, "iteration"))
    claims.append(Claim(
        claim=wait_claim,
        held=ends[0].start >= thread.end_s - 0.001 and done == params.iterations,
        detail=f"counter ran {done} of {params.iterations} iterations and ended at "
               f"{thread.end_s:.3f} s; main printed 'main Ends' at {ends[0].start:.3f} s",
    ))
    main = next((t for t in model.threads if t.is_main), None)
    waited = ends[0].start - starts[0].start
    if main is None or not main.intervals or waited <= 0:
        claims.append(not_checked("The joining main thread waits without using the CPU",
                                  "the main thread's states were not recorded"))
    else:
        busy = busy_seconds(main, starts[0].start, ends[0].start)
        claims.append(Claim(
            claim="The joining main thread waits without using the CPU",
            held=busy < 0.1 * waited,
            detail=f"{busy * 1000:.1f} ms on CPU during {waited:.2f} s in join(); "
                   f"{states_note(model)}",
        ))
    return claims


SCENARIO = Scenario(
    name="join",
    concept="Threads",
    section="What happens if we don't join() a thread? (with join)",
    summary="A counter thread, joined: main ends after the thread",
    claim="join() makes the main thread wait: 'main Ends' comes after the counter finishes",
    look_for="The main thread blocked in join() for the counter's whole life, and 'main_ends' "
             "after the counter thread's end",
    params=(
        Param("iterations", 5, "numbers the counter prints (the notebook: 5)"),
        Param("interval", 0.2, "seconds between numbers (the notebook: 1 s)"),
    ),
    check=check,
)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    t1 = threading.Thread(target=counter, args=(args.iterations, args.interval), name="counter")
    t1.start()
    mark("main_starts")
    print("main starts")
    t1.join()
    mark("main_ends")
    print("main Ends")


if __name__ == "__main__":
    main(sys.argv[1:])
