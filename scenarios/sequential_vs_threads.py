"""The notebook's greet example: two greetings that each wait, first one after the other, then in
two threads. Waiting (here ``time.sleep``) releases the GIL, so the two waits overlap and the
threaded version takes one wait instead of two: the ratio, not the absolute seconds, is the claim.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

NAMES = ("Alice", "Bob")


def check(model: RunModel) -> list[Claim]:
    from scenarios.checks import (
        busy_seconds,
        not_checked,
        phase_window,
        run_params,
        states_note,
        thread_called,
    )
    from tracer.model.schema import Claim

    params = run_params(SCENARIO, model)
    sequential = phase_window(model, "sequential")
    threaded = phase_window(model, "threaded")
    claims: list[Claim] = []
    ratio_claim = (f"Two {params.seconds:g} s greetings take about twice as long one after "
                   "another as in two threads")
    if sequential is None or threaded is None:
        claims.append(not_checked(ratio_claim, "the run ended before both phases were recorded"))
    else:
        seq_s = sequential[1] - sequential[0]
        thr_s = threaded[1] - threaded[0]
        ratio = seq_s / thr_s if thr_s > 0 else float("inf")
        claims.append(Claim(
            claim=ratio_claim,
            held=1.6 <= ratio <= 2.5,
            detail=f"sequential {seq_s:.2f} s, threaded {thr_s:.2f} s: {ratio:.2f}x "
                   "(2x expected: the two waits overlap)",
        ))
    greeters = [t for t in (thread_called(model, f"greet-{n}") for n in NAMES) if t is not None]
    wait_claim = "The greeting threads spend their time waiting, not on a CPU"
    lifetimes = sum((t.end_s or 0.0) - (t.start_s or 0.0) for t in greeters)
    if len(greeters) < len(NAMES) or lifetimes <= 0 or not any(t.intervals for t in greeters):
        claims.append(not_checked(wait_claim, "the greeting threads' states were not recorded"))
    else:
        busy = sum(busy_seconds(t) for t in greeters)
        claims.append(Claim(
            claim=wait_claim,
            held=busy < 0.1 * lifetimes,
            detail=f"{busy * 1000:.1f} ms on CPU in {lifetimes:.2f} s of thread lifetime "
                   f"({busy / lifetimes:.1%}); {states_note(model)}",
        ))
    return claims


SCENARIO = Scenario(
    name="sequential_vs_threads",
    concept="Threads",
    section="1: Without threads / with threads",
    summary="Two greetings that wait: one after another vs in two threads",
    claim="Two waiting greetings take about half the time in two threads (about 2 s instead "
          "of 4 s in the notebook)",
    look_for="The sequential phase twice as long as the threaded one; in the threaded phase, "
             "the two greeting threads blocked side by side",
    params=(Param("seconds", 1.0, "how long each greeting waits (the notebook: 2 s)"),),
    check=check,
)


def greet(name: str, seconds: float) -> None:
    time.sleep(seconds)
    mark("greeted", who=name)
    print(f"Hello, {name}!")


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    mark("params", **vars(args))  # also opens the marker sink before anything is timed
    with phase("sequential"):
        began = time.perf_counter()
        for name in NAMES:
            greet(name, args.seconds)
        sequential = time.perf_counter() - began
    with phase("threaded"):
        began = time.perf_counter()
        threads = [threading.Thread(target=greet, args=(name, args.seconds), name=f"greet-{name}")
                   for name in NAMES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        threaded = time.perf_counter() - began
    print("All done!")
    print(f"sequential {sequential:.2f} s, two threads {threaded:.2f} s "
          f"({sequential / threaded:.2f}x faster)")


if __name__ == "__main__":
    main(sys.argv[1:])
