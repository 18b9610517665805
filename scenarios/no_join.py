"""The counter thread without ``join()``: the main thread's code ends at once, but a non-daemon
thread keeps the process alive. At exit the interpreter itself waits for every non-daemon thread
(``threading._shutdown``), so the counter still prints all its numbers after "main Ends"."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from scenarios.join import counter, counter_thread
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, run_params
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    thread = counter_thread(model)
    ends = marks(model, "main_ends")
    if thread is None or thread.end_s is None or not ends:
        return [not_checked("Without join(), main ends first but the process waits",
                            "the counter thread or the main_ends mark is missing")]
    done = len(marks(model, "iteration"))
    main_end = ends[0].start
    return [
        Claim(
            claim="Without join(), the main thread's code ends before the counter thread",
            held=main_end < thread.end_s - params.interval / 2,
            detail=f"'main Ends' at {main_end:.3f} s, counter thread ended at "
                   f"{thread.end_s:.3f} s",
        ),
        Claim(
            claim="A non-daemon thread keeps the process alive until it has finished",
            held=(thread.end_reason == "finished" and done == params.iterations
                  and model.wall_s >= thread.end_s - 0.001),
            detail=f"counter ran {done} of {params.iterations} iterations "
                   f"({thread.end_reason or 'end unknown'}); the process ended at "
                   f"{model.wall_s:.3f} s, {model.wall_s - main_end:.2f} s after 'main Ends'",
        ),
    ]


SCENARIO = Scenario(
    name="no_join",
    concept="Threads",
    section="What happens if we don't join() a thread? (non-daemon, no join)",
    summary="A non-daemon counter thread without join: main ends, the process waits",
    claim="Without join(), a non-daemon thread still runs to the end: Python waits for it at exit",
    look_for="'main_ends' early on the main thread, then the counter thread carrying on to its "
             "last iteration before the process ends",
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
    # t1.join()  -- left out on purpose
    mark("main_ends")
    print("main Ends")


if __name__ == "__main__":
    main(sys.argv[1:])
