"""The lock-contended LRU cache of viztracer_targets.py (four threads, every get and put under one
lock) as a script without arguments, so that tools taking only a script path (gil_truth.py) run
it too. Plain script."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from viztracer_targets import cache  # type: ignore[import-not-found]  # beside this file

from tracer.markers import phase

if __name__ == "__main__":
    with phase("work"):
        cache(threads=4, lookups=60_000)
