"""The notebook's first example: start a thread that prints, print from the main thread, join.

Nothing in the code orders the two prints; which one lands first depends on whether the new
thread reaches its print before the main thread gets the GIL back from it. One traced run shows
the timeline; a few more runs of the same code in plain, untraced interpreters (fresh processes,
so each start is a new race) collect the orders actually seen on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

THREAD_LINE = "Hello from a thread!"
MAIN_LINE = "Hello from main thread"

# The notebook's cell, verbatim, run by a plain interpreter in each untraced run.
NOTEBOOK_CELL = f"""
import threading

def greet():
    print({THREAD_LINE!r})

t = threading.Thread(target=greet)
t.start()
print({MAIN_LINE!r})
t.join()
"""


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, thread_by_tid
    from tracer.model.schema import Claim

    claims: list[Claim] = []
    started = marks(model, "greet_started")
    joined = marks(model, "joined")
    thread = thread_by_tid(model, started[0].tid) if started else None
    join_claim = "join() makes the main thread wait until the thread has finished"
    if thread is None or thread.end_s is None or not joined:
        claims.append(not_checked(join_claim, "the greet thread or the join mark is missing"))
    else:
        after = joined[0].start - thread.end_s
        claims.append(Claim(
            claim=join_claim,
            held=after >= -0.001 and thread.end_reason == "finished",
            detail=f"the thread ran {thread.start_s:.4f}-{thread.end_s:.4f} s; join() returned "
                   f"{after * 1000:+.2f} ms after it ended",
        ))
    orders = [str(m.fields.get("first")) for m in marks(model, "order")]
    seen = Counter(o for o in orders if o in ("thread", "main"))
    mixed = sum(1 for m in marks(model, "order") if m.fields.get("interleaved"))
    order_claim = "The order of the two prints is not guaranteed"
    if not seen:
        claims.append(not_checked(order_claim, "no run's output was recorded"))
    else:
        counts = ", ".join(f"{who} first {n}x" for who, n in seen.most_common())
        detail = f"{len(orders)} plain runs: {counts}"
        printed = marks(model, "print")
        if printed:
            detail += f" (the traced run: {printed[0].fields.get('who')} first)"
        if mixed:
            detail += (f"; in {mixed} the two lines came out interleaved (print writes the text "
                       "and the newline separately, and a switch can fall in between)")
        if len(seen) > 1:
            claims.append(Claim(order_claim, True, detail))
        else:
            only = next(iter(seen))
            claims.append(not_checked(
                order_claim,
                f"{detail}: only '{only} first' seen, which does not prove a fixed order. "
                "start() returns once the new thread runs, and that thread usually keeps the GIL "
                "through its print; try more --runs, or a busier machine",
            ))
    return claims


SCENARIO = Scenario(
    name="hello_thread",
    concept="Threads",
    section="1: What is Threading?",
    summary="Start a thread that prints, print from main, join: which print comes first?",
    claim="Threads run concurrently, so the order of the two prints is not guaranteed; join() "
          "waits for the thread",
    look_for="The greet thread's short life between start() and join() on the timeline, the "
             "two print marks, and the orders seen over several plain runs",
    params=(Param("runs", 12, "untraced runs of the notebook cell to collect print orders"),),
    check=check,
)


def plain_python_env() -> dict[str, str]:
    """The environment of an untraced interpreter: no tracer variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("THREADSCOPE")}


def first_line(output: str) -> tuple[str, bool]:
    """Who printed first in one run's output, and whether the two lines interleaved."""
    lines = output.splitlines()
    interleaved = any(THREAD_LINE in line and MAIN_LINE in line for line in lines)
    head = lines[0] if lines else ""
    return ("thread" if head.startswith(THREAD_LINE) else "main"), interleaved


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed

    def greet() -> None:
        mark("greet_started")
        mark("print", who="thread")
        print(THREAD_LINE, flush=True)

    with phase("traced"):
        t = threading.Thread(target=greet, name="greet")
        t.start()
        mark("print", who="main")
        print(MAIN_LINE, flush=True)
        t.join()
        mark("joined")

    orders: Counter[str] = Counter()
    with phase("untraced_runs"):
        for run in range(args.runs):
            result = subprocess.run([sys.executable, "-c", NOTEBOOK_CELL], capture_output=True,
                                    text=True, env=plain_python_env(), check=True)
            first, interleaved = first_line(result.stdout)
            orders[first] += 1
            mark("order", run=run, first=first, interleaved=interleaved)
    print(f"print order over {args.runs} plain runs: "
          + ", ".join(f"{who} first {n}x" for who, n in orders.most_common()))


if __name__ == "__main__":
    main(sys.argv[1:])
