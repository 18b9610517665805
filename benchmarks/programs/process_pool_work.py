"""A process pool doing a fixed amount of CPU work: WORKERS processes, TASKS tasks of STEPS loop
steps each, as one phase (tracer.markers). Usage: process_pool_work.py WORKERS [START_METHOD]."""

from __future__ import annotations

import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor

from tracer.markers import phase

STEPS = 1_500_000
TASKS = 32


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def main() -> None:
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    method = sys.argv[2] if len(sys.argv) > 2 else "fork"
    with phase("pool"), ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
        list(pool.map(spin, [STEPS] * TASKS))


if __name__ == "__main__":
    main()
