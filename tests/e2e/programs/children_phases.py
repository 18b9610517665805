"""A thread phase, then a process phase, doing the same CPU-bound work; each child writes down
the CPU time it used, as the kernel counts it for itself, so a test can hold the tracer's
per-process figures to it.

Usage: children_phases.py OUT.json [START_METHOD] [PROCESSES] [WORK]
"""

import json
import multiprocessing as mp
import os
import resource
import sys
import threading


def burn(n: int) -> None:
    x = 0
    for i in range(n):
        x += i * i


def child(n: int, q: "mp.Queue[tuple[int, float]]") -> None:
    burn(n)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    q.put((os.getpid(), usage.ru_utime + usage.ru_stime))


def main() -> None:
    out = sys.argv[1]
    method = sys.argv[2] if len(sys.argv) > 2 else "fork"
    processes = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    work = int(sys.argv[4]) if len(sys.argv) > 4 else 3_000_000
    threads = [threading.Thread(target=burn, args=(work,), name=f"cpu-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx = mp.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=child, args=(work, q)) for _ in range(processes)]
    for p in procs:
        p.start()
    got = dict(q.get() for _ in procs)
    for p in procs:
        p.join()
    with open(out, "w") as handle:
        json.dump({str(pid): cpu for pid, cpu in got.items()}, handle)


if __name__ == "__main__":
    main()
