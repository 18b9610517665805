"""A thread that sleeps, spins for a known time between two markers, then sleeps again: the
markers are the ground truth every source is checked against."""

import threading
import time

from tracer.markers import mark


def spin_for(seconds: float) -> None:
    """Busy for ``seconds``, with few calls (VizTracer records every call, C calls included)."""
    end = time.monotonic() + seconds
    while True:
        for _ in range(20_000):
            pass
        if time.monotonic() >= end:
            return


def worker() -> None:
    time.sleep(0.3)
    mark("spin_start")
    spin_for(0.4)
    mark("spin_end")
    time.sleep(0.3)


thread = threading.Thread(target=worker, name="spinner")
thread.start()
thread.join()
