"""A deadlock: two threads take two locks in opposite order. Each ends up holding one lock and
waiting forever for the other. The main thread gives up after a timeout and the program exits
(the stuck threads are daemons), so the scenario always ends; the recording names the cycle."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

lock_a = threading.Lock()
lock_b = threading.Lock()


def check(model: RunModel) -> list[Claim]:
    from tracer.model.schema import Claim

    if model.figure_sources.get("locks") != "instrumented":
        return [Claim("The deadlock cycle is named", None, "lock waits were not recorded")]
    names = {str(step.thread) for cycle in model.deadlocks for step in cycle}
    found = {"first", "second"} <= names
    detail = "; ".join(
        " -> ".join(f"{step.thread} holds {'/'.join(str(h.name) for h in step.holds)}, "
                    f"waits for {step.waits_for.name}" for step in cycle)
        for cycle in model.deadlocks) or "no cycle found"
    return [Claim("The deadlock cycle is named: each thread holds one lock and waits for the "
                  "other", found, detail)]


SCENARIO = Scenario(
    name="deadlock",
    concept="Locks",
    section="7: Thread synchronization using Lock (what goes wrong)",
    summary="Two threads, two locks, opposite order: a deadlock, named in the report",
    claim="Locks taken in opposite orders deadlock; the recording names who holds what",
    look_for="Both threads in lock_wait until the end, and the cycle named at the top",
    params=(
        Param("timeout", 1.5, "seconds the main thread waits before giving up"),
        Param("delay", 0.1, "pause between taking the first and the second lock"),
    ),
    check=check,
)


def take(first: threading.Lock, second: threading.Lock, delay: float) -> None:
    with first:
        time.sleep(delay)  # let the other thread take its first lock too
        with second:
            pass


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    threads = [
        threading.Thread(target=take, args=(lock_a, lock_b, args.delay), name="first",
                         daemon=True),
        threading.Thread(target=take, args=(lock_b, lock_a, args.delay), name="second",
                         daemon=True),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + args.timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        print(f"deadlock: {', '.join(stuck)} still waiting after {args.timeout:g} s; giving up")
    else:
        print("no deadlock this time (the threads did not interleave)")


if __name__ == "__main__":
    main(sys.argv[1:])
