"""CPU-bound threads under the GIL: N threads of pure-Python work against the same work run one
after another. On a GIL build the threads take turns, so they finish no sooner."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from scenarios.base import Param, Scenario, params_from_argv
from scenarios.workloads import count
from tracer.markers import phase

if TYPE_CHECKING:
    from tracer.model.schema import Claim, RunModel


def check(model: RunModel) -> list[Claim]:
    from tracer.model.queries import phase_parallelism, phase_seconds
    from tracer.model.schema import Claim

    params = params_from_argv(SCENARIO, model.target.argv)
    sequential = phase_seconds(model, "sequential")
    threaded = phase_seconds(model, "threaded")
    claims = []
    if sequential and threaded:
        ratio = threaded / sequential
        claims.append(Claim(
            claim=f"{params.threads} CPU-bound threads take about as long as running the same "
                  "work one after another",
            held=ratio >= 0.8,
            detail=f"threaded {threaded:.2f} s vs sequential {sequential:.2f} s: "
                   f"{ratio:.2f}x the time ({1 / ratio:.2f}x speed-up)",
        ))
    else:
        claims.append(Claim("threads take as long as sequential work", None,
                            "the run ended before both phases were recorded"))
    parallelism = phase_parallelism(model, "threaded")
    if parallelism is not None:
        claims.append(Claim(
            claim="While the threads run, the process uses about one core, whatever the number "
                  "of cores",
            held=parallelism < 1.3,
            detail=f"CPU parallelism {parallelism:.2f} during the threaded phase on a machine "
                   f"with {model.cores} cores",
        ))
    return claims


SCENARIO = Scenario(
    name="gil_cpu",
    concept="The GIL",
    section="GIL: CPU-bound threading",
    summary="N threads of pure-Python CPU work vs the same work run sequentially",
    claim="CPU-bound threads run one at a time under the GIL: no speed-up over sequential",
    look_for="Threads taking turns (each on CPU a 1/N share of the time) and a CPU parallelism "
             "near 1 even with more cores",
    params=(
        Param("threads", 4, "number of threads"),
        Param("work", 6_000_000, "loop iterations per thread"),
    ),
    check=check,
)


def main(argv: list[str] | None = None) -> None:
    args = SCENARIO.parse(argv)
    # The sequential run happens in a thread too: an in-process tracer slows the main thread
    # and worker threads by different amounts, which would bias the comparison.
    one_after_another = threading.Thread(
        target=lambda: [count(args.work) for _ in range(args.threads)], name="sequential")
    with phase("sequential"):
        began = time.perf_counter()
        one_after_another.start()
        one_after_another.join()
        sequential = time.perf_counter() - began
    workers = [threading.Thread(target=count, args=(args.work,), name=f"cpu-{i}")
               for i in range(args.threads)]
    with phase("threaded"):
        began = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        threaded = time.perf_counter() - began
    print(f"sequential: {sequential:.2f} s, {args.threads} threads: {threaded:.2f} s "
          f"(speed-up {sequential / threaded:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
