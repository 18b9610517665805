"""I/O-bound threads: N threads that each sleep. Sleeping releases the GIL, so they overlap and
the whole takes about one sleep, not the sum."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from tracer.markers import phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from tracer.model.queries import phase_parallelism, phase_seconds
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    threaded = phase_seconds(model, "threaded")
    total = params.threads * params.seconds
    claims = []
    if threaded:
        claims.append(Claim(
            claim=f"{params.threads} threads sleeping {params.seconds:g} s each finish in about "
                  f"{params.seconds:g} s, not {total:g} s",
            held=threaded < params.seconds + 0.5 * (total - params.seconds),
            detail=f"wall {threaded:.2f} s for {total:g} s of sleeping",
        ))
    parallelism = phase_parallelism(model, "threaded")
    if parallelism is not None:
        claims.append(Claim(
            claim="Sleeping threads use almost no CPU: the GIL is released while they wait",
            held=parallelism < 0.2,
            detail=f"CPU parallelism {parallelism:.3f} while they slept",
        ))
    return claims


SCENARIO = Scenario(
    name="gil_io",
    concept="The GIL",
    section="GIL: I/O-bound threading",
    summary="N threads that each sleep: they overlap because sleep releases the GIL",
    claim="I/O-bound threads run concurrently: wall time is one wait, not the sum",
    look_for="All threads blocked side by side and a parallelism near 0",
    params=(
        Param("threads", 4, "number of threads"),
        Param("seconds", 2.0, "how long each thread sleeps"),
    ),
    check=check,
)


def worker(seconds: float) -> None:
    time.sleep(seconds)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    workers = [threading.Thread(target=worker, args=(args.seconds,), name=f"io-{i}")
               for i in range(args.threads)]
    with phase("threaded"):
        began = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        wall = time.perf_counter() - began
    print(f"{args.threads} threads x {args.seconds:g} s of sleep took {wall:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
