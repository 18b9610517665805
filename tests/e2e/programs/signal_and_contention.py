"""Known by construction: a persister that only sleeps in ``Event.wait(0.05)`` in a loop (a
signal nobody holds), and two threads taking turns to hold one Lock for 50 ms while the other
waits for it (contention). The persister waits longest; the Lock is the contention."""

import sys
import threading
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 6
HOLD_S = 0.05

stop = threading.Event()
cache_lock = threading.Lock()
started = threading.Barrier(2)


def persist() -> None:
    while not stop.wait(0.05):
        pass


def contend() -> None:
    started.wait()
    for _ in range(ROUNDS):
        with cache_lock:
            time.sleep(HOLD_S)  # hold it: the other thread must wait this long


def main() -> None:
    persister = threading.Thread(target=persist, name="persister")
    persister.start()
    workers = [threading.Thread(target=contend, name=f"request-{n}") for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    time.sleep(0.3)  # the persister goes on polling alone
    stop.set()
    persister.join()


if __name__ == "__main__":
    main()
