"""The notebook's fix for the race: every increment under a ``threading.Lock``. The count is then
always right; the price is the lock itself, and the time threads spend waiting for it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from tracer.markers import mark, phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

counter = 0
lock = threading.Lock()


def check(model: RunModel) -> list[Claim]:
    from tracer.model.queries import marks_named, phase_seconds
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    expected = params.threads * params.increments
    claims = []
    results = marks_named(model, "result")
    if results:
        values = [int(m.fields.get("counter", -1)) for m in results]
        claims.append(Claim(
            claim=f"With the lock, the counter is always {expected:,}",
            held=all(v == expected for v in values),
            detail=f"counter = {', '.join(f'{v:,}' for v in values)}",
        ))
    locked, unlocked = phase_seconds(model, "locked"), phase_seconds(model, "unlocked")
    if locked and unlocked:
        claims.append(Claim(
            claim="The lock costs time: the locked loop is slower than the unlocked one",
            held=locked > unlocked,
            detail=f"locked {locked:.2f} s vs unlocked {unlocked:.2f} s "
                   f"({locked / unlocked:.1f}x)",
        ))
    workers = [t for t in model.threads if t.name.startswith("locked-")]
    ours = [lock for lock in model.locks if lock.name == "lock"]
    if workers and ours and model.figure_sources.get("locks") == "instrumented":
        lock_wait = sum(t.state_s.get("lock_wait", 0.0) for t in workers)
        gil_wait = sum(t.state_s.get("gil_wait", 0.0) for t in workers)
        gil_known = model.figure_sources.get("gil") in ("exact", "sampled")
        taken = sum(lock.acquisitions for lock in ours)
        contended = sum(lock.contended for lock in ours)
        # CPython hands the GIL over at calls and loop back-edges, and the critical section
        # (`counter += 1`) has neither: a thread never stops while holding this lock, so the
        # others find it free. What they wait for is the GIL.
        claims.append(Claim(
            claim="The threads wait for the GIL, not for the lock: CPython does not switch "
                  "threads inside this short critical section",
            held=None if not gil_known else lock_wait <= 0.1 * gil_wait,
            detail=f"{contended:,} of {taken:,} acquisitions found the lock taken; lock waits "
                   f"{lock_wait:.2f} s, GIL waits "
                   + (f"{gil_wait:.2f} s" if gil_known else "not recorded")
                   + f" across {len(workers)} threads",
        ))
    return claims


SCENARIO = Scenario(
    name="lock",
    concept="Locks",
    section="7: Thread synchronization using Lock",
    summary="5 threads x N increments under a Lock vs without: correct count, and its cost",
    claim="A Lock makes the read-modify-write atomic: the count is always right",
    look_for="How much of the run went to lock waits vs GIL waits (see lock_contention for a "
             "lock that is really fought over), and what the lock costs",
    params=(
        Param("threads", 5, "number of threads"),
        Param("increments", 100_000, "increments per thread"),
    ),
    check=check,
)


def increment_locked(n: int) -> None:
    global counter
    for _ in range(n):
        with lock:
            counter += 1


def increment_unlocked(n: int) -> None:
    global counter
    for _ in range(n):
        counter += 1


def _run(target: Callable[[int], None], threads: int, increments: int, prefix: str) -> float:
    workers = [threading.Thread(target=target, args=(increments,), name=f"{prefix}-{i}")
               for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    global counter
    args = SCENARIO.parse(argv)
    with phase("unlocked"):
        counter = 0
        unlocked = _run(increment_unlocked, args.threads, args.increments, "unlocked")
    unlocked_count = counter
    with phase("locked"):
        counter = 0
        locked = _run(increment_locked, args.threads, args.increments, "locked")
    mark("result", counter=counter)
    print(f"without the lock: {unlocked_count:,} in {unlocked:.2f} s; "
          f"with it: {counter:,} in {locked:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
