"""The units of work scenarios are built from, shared so each scenario measures the same thing."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tracer.markers import phase


def count(n: int) -> int:
    """Pure-Python CPU work that never releases the GIL voluntarily and makes no calls, so an
    in-process tracer sees one long call, not millions of short ones."""
    total = 0
    for i in range(n):
        total += i
    return total


MODELS = ("sequential", "threading", "asyncio", "multiprocessing")


def run_four_ways(work: Callable[[Any], Any], coroutine: Callable[[Any], Awaitable[Any]],
                  arg: Any, tasks: int, processes: int, warm_up_arg: Any,
                  thread_prefix: str) -> dict[str, float]:
    """The same ``tasks`` calls of ``work(arg)`` one after another, in threads, as asyncio
    coroutines and in a pool of worker processes, each in a phase of its own; returns each
    model's wall time (and the pool's start-up, measured apart in its own phase).

    Workers are started with "spawn" and warmed up (``work(warm_up_arg)`` in each) before the
    timed phase: forking a traced process would copy the tracer into every child, and start-up
    is a cost of its own, not of the work."""
    walls: dict[str, float] = {}
    with phase("sequential"):
        began = time.perf_counter()
        for _ in range(tasks):
            work(arg)
        walls["sequential"] = time.perf_counter() - began

    with phase("threading"):
        began = time.perf_counter()
        threads = [threading.Thread(target=work, args=(arg,), name=f"{thread_prefix}-{i}")
                   for i in range(tasks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        walls["threading"] = time.perf_counter() - began

    async def gather() -> list[Any]:
        return await asyncio.gather(*(coroutine(arg) for _ in range(tasks)))

    with phase("asyncio"):
        began = time.perf_counter()
        asyncio.run(gather())
        walls["asyncio"] = time.perf_counter() - began

    context = multiprocessing.get_context("spawn")
    with phase("multiprocessing_startup"):
        began = time.perf_counter()
        pool = context.Pool(processes)
        pool.map(work, [warm_up_arg] * processes, chunksize=1)  # every worker up and imported
        walls["starting processes"] = time.perf_counter() - began
    try:
        with phase("multiprocessing"):
            began = time.perf_counter()
            pool.map(work, [arg] * tasks, chunksize=1)
            walls["multiprocessing"] = time.perf_counter() - began
    finally:
        pool.close()
        pool.join()
    return walls
