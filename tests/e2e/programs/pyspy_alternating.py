"""A busy thread that alternates between two functions for a few milliseconds each (lengths
varied so that they never beat with a sampling rate), with a marker on each side of every call:
the markers say, on CLOCK_MONOTONIC, where the thread was at every moment, so that py-spy's
stacks can be checked against them."""

import random
import threading
import time

from tracer.markers import mark


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def left(seconds: float) -> None:
    spin(seconds)


def right(seconds: float) -> None:
    spin(seconds)


def worker() -> None:
    rng = random.Random(7)
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        for function in (left, right):
            mark("enter", function=function.__name__)
            function(rng.uniform(0.003, 0.009))
            mark("leave", function=function.__name__)


thread = threading.Thread(target=worker, name="busy")
thread.start()
thread.join()
