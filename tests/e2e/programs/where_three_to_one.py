"""Two threads, each alternating heavy() and light(): three loop iterations in heavy() for each
one in light(), so their Python time is 3:1 by construction."""

import sys
import threading

UNIT = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 25


def heavy() -> int:
    total = 0
    for i in range(3 * UNIT):
        total += i
    return total


def light() -> int:
    total = 0
    for i in range(UNIT):
        total += i
    return total


def work() -> None:
    for _ in range(ROUNDS):
        heavy()
        light()


threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
