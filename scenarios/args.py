"""Passing arguments to threads: ``greet(name, delay)`` for Alice (2 s) and Bob (1 s). Alice is
started first, yet Bob finishes first: threads that wait run side by side, so each finishes when
its own delay is up, not in the order they were started."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

GUESTS = (("Alice", 2.0), ("Bob", 1.0))  # the notebook's names and delays, before --scale


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import marks, not_checked, run_params, thread_by_tid
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    greeted = marks(model, "greeted")
    claims: list[Claim] = []
    order_claim = "Bob (shorter delay) finishes before Alice, although Alice started first"
    if len(greeted) < len(GUESTS):
        return [not_checked(order_claim, "the greetings' marks are missing")]
    finish_order = [str(m.fields.get("who")) for m in greeted]
    threads = {str(m.fields.get("who")): thread_by_tid(model, m.tid) for m in greeted}
    starts = sorted((t.start_s or 0.0, who) for who, t in threads.items() if t is not None)
    start_order = [who for _, who in starts]
    claims.append(Claim(
        claim=order_claim,
        held=finish_order == ["Bob", "Alice"] and start_order == ["Alice", "Bob"],
        detail=f"started: {', '.join(start_order)}; finished: {', '.join(finish_order)}",
    ))
    timings = []
    off = []
    for mark_ in greeted:
        who = str(mark_.fields.get("who"))
        delay = float(mark_.fields.get("delay", 0.0))
        thread = threads.get(who)
        if thread is None or thread.start_s is None:
            continue
        took = mark_.start - thread.start_s
        timings.append(f"{who} {took:.2f} s for a {delay:g} s delay")
        # The thread was given (name, delay) as args: the mark it left must carry them back.
        if thread.name != f"greet-{who}" or not delay <= took <= delay * 1.5 + 0.05:
            off.append(who)
    claims.append(Claim(
        claim="Each thread receives its own arguments and finishes its own delay after it starts",
        held=len(timings) == len(GUESTS) and not off,
        detail="; ".join(timings) + (f"; off: {', '.join(off)}" if off else "")
               + f" (delays scaled by {params.scale:g})",
    ))
    return claims


SCENARIO = Scenario(
    name="args",
    concept="Threads",
    section="4: Passing arguments to threads",
    summary="greet(name, delay) in two threads: Bob (1 s) finishes before Alice (2 s)",
    claim="Arguments go in with args=(...); threads finish in the order of their delays, not "
          "of their start",
    look_for="Two greeting threads starting together; Bob's bar ends halfway through Alice's",
    params=(Param("scale", 0.5, "multiplies the notebook's delays (1 = Alice 2 s, Bob 1 s)"),),
    check=check,
)


def greet(name: str, delay: float) -> None:
    time.sleep(delay)
    mark("greeted", who=name, delay=delay)
    print(f"Hello {name}, after {delay:g} seconds!")


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    threads = [threading.Thread(target=greet, args=(name, delay * args.scale), name=f"greet-{name}")
               for name, delay in GUESTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main(sys.argv[1:])
