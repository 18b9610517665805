"""Four CPU-bound threads taking turns on the GIL: every wait lasts the other threads' turns
(about 15 ms at the 5 ms switch interval), longer than the sampling period, so the sampler sees
each one. Plain script; its work is one phase (tracer.markers: a no-op unless traced or timed)."""

from __future__ import annotations

import threading

from tracer.markers import phase

STEPS = 3_000_000


def spin() -> None:
    total = 0
    for i in range(STEPS):
        total += i


def main() -> None:
    threads = [threading.Thread(target=spin, name=f"cpu-{i}") for i in range(4)]
    with phase("spin"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
