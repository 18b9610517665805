"""Two non-daemon threads deadlock for good: only --timeout ends this program."""

import threading
import time

first_lock = threading.Lock()
second_lock = threading.Lock()


def one() -> None:
    with first_lock:
        time.sleep(0.1)
        with second_lock:
            pass


def two() -> None:
    with second_lock:
        time.sleep(0.1)
        with first_lock:
            pass


threading.Thread(target=one, name="alpha").start()
threading.Thread(target=two, name="beta").start()
