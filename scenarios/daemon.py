"""The counter as a daemon thread without ``join()``: when the main thread's code ends, the
interpreter waits only for non-daemon threads, then exits and the daemon thread is stopped
wherever it is, mid-loop, with no ``finally`` run and no chance to finish.

Notebooks (Jupyter, Colab) behave differently, which is why the notebook says "in Colab this works
differently": a cell ending is not the process ending. The kernel process keeps running between
cells, so the interpreter never reaches exit and a daemon thread is never killed; it keeps
printing into whichever cell is running. Run this as a script to see the real behaviour.
"""

from __future__ import annotations

import sys
import threading
import time
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
    killed_claim = "A daemon thread is killed when the main thread ends, before it finishes"
    if thread is None or thread.end_s is None or not ends:
        return [not_checked(killed_claim, "the counter thread or the main_ends mark is missing")]
    # Iterations the thread began before it was stopped (it may run on briefly while the
    # recorders save at exit; those do not count as the point where it was cut off).
    begun = [m for m in marks(model, "iteration") if m.start <= thread.end_s]
    last = begun[-1].fields.get("i") if begun else None
    where = thread.last_stack[0] if thread.last_stack else "an unknown place"
    main_end = ends[0].start
    remaining = (params.iterations - len(begun)) * params.interval
    return [
        Claim(
            claim=killed_claim,
            held=thread.end_reason == "killed_at_exit" and len(begun) < params.iterations,
            detail=(f"killed at interpreter exit while in {where}, iteration {last} "
                    f"({len(begun)} of {params.iterations} begun)"
                    if thread.end_reason == "killed_at_exit" else
                    f"the thread's end: {thread.end_reason or 'unknown'}; "
                    f"{len(begun)} of {params.iterations} iterations begun"),
        ),
        Claim(
            claim="A daemon thread does not keep the process alive",
            held=model.wall_s - main_end < max(0.5 * remaining, params.interval),
            detail=f"'main Ends' at {main_end:.3f} s; the process ended at {model.wall_s:.3f} s, "
                   f"while the counter had about {remaining:.1f} s of work left",
        ),
    ]


SCENARIO = Scenario(
    name="daemon",
    concept="Threads",
    section="2: Daemon threads",
    summary="A daemon counter thread without join: killed mid-loop when main ends",
    claim="A daemon thread is killed as soon as the main program ends, even mid-task",
    look_for="The counter thread's bar ending at the process exit, marked 'killed at exit' with "
             "the iteration and line it was in. In Jupyter/Colab the kernel process keeps "
             "running after a cell, so the daemon thread would not be killed there",
    params=(
        Param("iterations", 5, "numbers the counter would print (the notebook: 5)"),
        Param("interval", 0.2, "seconds between numbers (the notebook: 1 s)"),
        Param("main_seconds", 0.3, "how long the main thread works before it ends (the "
                                   "notebook: 0)"),
    ),
    check=check,
)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    t1 = threading.Thread(target=counter, args=(args.iterations, args.interval), name="counter",
                          daemon=True)
    t1.start()
    mark("main_starts")
    print("main starts")
    time.sleep(args.main_seconds)
    mark("main_ends")
    print("main Ends")


if __name__ == "__main__":
    main(sys.argv[1:])
