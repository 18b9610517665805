"""Lock contention with a known answer: N threads meet at a barrier, then each takes one lock and
holds it for a fixed time. The k-th thread in line waits k hold-times, so the total wait per round
is hold x N(N-1)/2: known by construction, and the recorder must measure it."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from tracer.markers import phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel

critical_section = threading.Lock()


def expected_wait_s(threads: int, rounds: int, hold_ms: float) -> float:
    return rounds * hold_ms / 1000 * threads * (threads - 1) / 2


def check(model: RunModel) -> list[Claim]:
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    expected = expected_wait_s(params.threads, params.rounds, params.hold_ms)
    rows = [lock for lock in model.locks if "critical_section" in lock.name]
    if not rows:
        reason = ("lock waits were not recorded" if model.figure_sources.get("locks") is None
                  else "the lock never showed up as contended")
        return [Claim("The recorded lock wait matches the wait known by construction", None,
                      reason)]
    measured = sum(lock.wait_s for lock in rows)
    worst = max(lock.max_wait_s for lock in rows)
    return [
        Claim(
            claim="The recorded lock wait matches the wait known by construction (within 10%)",
            held=abs(measured - expected) <= 0.1 * expected,
            detail=f"measured {measured:.3f} s, expected {expected:.3f} s "
                   f"({params.rounds} rounds x {params.hold_ms:g} ms x "
                   f"{params.threads}x{params.threads - 1}/2)",
        ),
        Claim(
            claim="The longest wait is the last in line: (N-1) hold times",
            held=abs(worst - (params.threads - 1) * params.hold_ms / 1000)
            <= 0.25 * params.hold_ms / 1000 + 0.1 * (params.threads - 1) * params.hold_ms / 1000,
            detail=f"longest wait {worst * 1000:.1f} ms, expected "
                   f"{(params.threads - 1) * params.hold_ms:g} ms",
        ),
    ]


SCENARIO = Scenario(
    name="lock_contention",
    concept="Locks",
    section="7: Thread synchronization using Lock (the cost of waiting)",
    summary="Threads queue for one lock held a known time: measured wait vs the known answer",
    claim="Threads that need the same lock wait in line: total wait = hold x N(N-1)/2 per round",
    look_for="Lock waits stacked like stairs on the timeline, hand-off arrows in trace.json",
    params=(
        Param("threads", 4, "number of threads"),
        Param("rounds", 3, "how many times every thread takes the lock"),
        Param("hold_ms", 50.0, "how long each holder keeps the lock (sleeping inside it)"),
    ),
    check=check,
)


def worker(barrier: threading.Barrier, rounds: int, hold_s: float) -> None:
    for _ in range(rounds):
        barrier.wait()
        with critical_section:
            time.sleep(hold_s)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    barrier = threading.Barrier(args.threads)
    workers = [threading.Thread(target=worker, args=(barrier, args.rounds, args.hold_ms / 1000),
                                name=f"contender-{i}") for i in range(args.threads)]
    with phase("contention"):
        began = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    print(f"{args.threads} threads x {args.rounds} rounds x {args.hold_ms:g} ms: "
          f"{time.perf_counter() - began:.2f} s; expected total wait "
          f"{expected_wait_s(args.threads, args.rounds, args.hold_ms):.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
