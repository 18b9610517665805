"""A fixed amount of threaded work for measuring how recording cost grows
(benchmarks/recording_scale.py): N threads each repeat ``--iterations`` work items, where one
item is what a threaded service typically does per request: some pure-Python CPU work spread
over a few function calls (so VizTracer has events), an update of shared state under a
``with lock:``, and a short blocking wait that releases the GIL.

The work is fixed by the arguments, not by a clock, so a traced and an untraced run do the same
work and their phase times (``start``: starting the threads, ``work``: the items) compare like
with like. ``--calibrate`` prints what one item costs
here, untraced and on one thread, so the benchmark can choose ``--iterations`` for a wanted
duration. A plain script: it runs without the tracer (markers then cost one write each).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from tracer.markers import phase

# One item is about 0.4 ms of CPU and a 0.1 ms wait (about 0.16 ms with the kernel's timer
# slack; Python 3.11, 2020s core): one thread keeps the GIL about 75 % busy, two or more saturate
# it, so an S-second case does nearly the same work at every thread count and a change with
# threads is the recorders' per-thread cost. Each item still hands the GIL over once (the wait),
# as I/O does. The CPU share is deliberately large per call: an item makes 10 VizTracer events
# (its 9 calls and the lock recorder's ``__exit__``), so a 60 s run records under 2 million,
# which the analysis can still hold in memory.
SPIN = 8000  # loop steps of CPU work per item
WAIT_S = 0.0001  # the blocking wait per item


def mix(value: int, salt: int) -> int:
    """A small call, several per item, as parsing or validation helpers are."""
    return (value * 31 + salt) & 0xFFFF


def crunch(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += (i * i) % 7
    return total


def compute(steps: int, seed: int) -> int:
    value = crunch(steps)
    for salt in range(3):
        value = mix(value, seed + salt)
    return value


def record(shared: list[int], lock: threading.Lock, value: int) -> None:
    """The critical section: short, as a well-written one is."""
    with lock:
        shared[0] += 1
        shared[1] ^= value


def wait_for_io(seconds: float) -> None:
    time.sleep(seconds)


def work_item(index: int, steps: int, wait_s: float, shared: list[int],
              lock: threading.Lock) -> None:
    record(shared, lock, compute(steps, index))
    wait_for_io(wait_s)


def worker(go: threading.Event, iterations: int, steps: int, wait_s: float, shared: list[int],
           lock: threading.Lock) -> None:
    go.wait()
    for index in range(iterations):
        work_item(index, steps, wait_s, shared, lock)


def run(threads: int, iterations: int, steps: int, wait_s: float) -> int:
    """Start every thread, let them all go at once, join them; returns the number of items done.

    The threads wait for ``go`` because ``Thread.start`` waits for the new thread to run, which
    needs the GIL: started one by one into busy threads, 512 of them take seconds to start and
    the first finish before the last begin. Released together they still leave ``wait()`` one
    GIL turn at a time (measured: 2.9 s untraced for 512 threads, about 11 s traced), so in the
    1 s and 10 s cases "512 threads" is a few dozen working at once plus many waiting, and only
    the 60 s case has most of them working together: CPython's behaviour, not this program's."""
    lock = threading.Lock()
    shared = [0, 0]
    go = threading.Event()
    workers = [threading.Thread(target=worker, args=(go, iterations, steps, wait_s, shared, lock),
                                name=f"scale-{i}") for i in range(threads)]
    with phase("start", threads=threads):
        for thread in workers:
            thread.start()
    with phase("work", threads=threads, iterations=iterations):
        go.set()
        for thread in workers:
            thread.join()
    return shared[0]


def calibrate(steps: int, wait_s: float, items: int = 200) -> dict[str, float]:
    """Seconds per item of CPU (everything but the wait) and of waiting, one thread, untraced.
    Best of three, so a busy machine inflates it less."""
    lock = threading.Lock()
    shared = [0, 0]
    cpu_s = wait = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for index in range(items):
            record(shared, lock, compute(steps, index))
        cpu_s = min(cpu_s, (time.perf_counter() - began) / items)
        began = time.perf_counter()
        for _ in range(items // 4):
            wait_for_io(wait_s)
        wait = min(wait, (time.perf_counter() - began) / (items // 4))
    return {"cpu_s": cpu_s, "wait_s": wait}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=1000, help="work items per thread")
    parser.add_argument("--steps", type=int, default=SPIN, help="CPU loop steps per item")
    parser.add_argument("--wait", type=float, default=WAIT_S, help="blocking wait per item, s")
    parser.add_argument("--calibrate", action="store_true",
                        help="print one item's CPU and wait seconds as JSON, and exit")
    args = parser.parse_args(argv)
    if args.calibrate:
        print(json.dumps(calibrate(args.steps, args.wait)))
        return 0
    done = run(args.threads, args.iterations, args.steps, args.wait)
    expected = args.threads * args.iterations
    if done != expected:  # the lock guards the count: anything else is a broken lock
        print(f"lost updates: {done} of {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
