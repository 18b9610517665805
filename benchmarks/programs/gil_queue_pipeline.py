"""A three-stage queue pipeline: a producer makes items, two workers do some pure-Python work
on each, a consumer sums the results. Threads block on queues, wake, take the GIL for a short
piece of work and block again: waits of every length, from microseconds to several switch
intervals. Plain script."""

from __future__ import annotations

import queue
import threading

ITEMS = 3000
WORK = 3000  # loop steps per item in a worker: ~0.1-0.2 ms of Python
DONE = -1


def producer(out: queue.Queue[int]) -> None:
    for i in range(ITEMS):
        out.put(i)
    out.put(DONE)
    out.put(DONE)


def worker(inbox: queue.Queue[int], out: queue.Queue[int]) -> None:
    while (item := inbox.get()) != DONE:
        total = 0
        for i in range(WORK):
            total += i * item
        out.put(total & 0xFF)
    out.put(DONE)


def consumer(inbox: queue.Queue[int]) -> None:
    finished, total = 0, 0
    while finished < 2:
        item = inbox.get()
        if item == DONE:
            finished += 1
        else:
            total += item


def main() -> None:
    first: queue.Queue[int] = queue.Queue(maxsize=50)
    second: queue.Queue[int] = queue.Queue(maxsize=50)
    threads = [threading.Thread(target=producer, args=(first,), name="producer"),
               threading.Thread(target=worker, args=(first, second), name="worker-0"),
               threading.Thread(target=worker, args=(first, second), name="worker-1"),
               threading.Thread(target=consumer, args=(second,), name="consumer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
