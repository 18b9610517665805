"""One clock for every source: CLOCK_MONOTONIC in nanoseconds.

The OS sampler, py-spy and perf (``perf record -k mono``) read CLOCK_MONOTONIC directly; VizTracer
has its own time base, so the target records pairs of (VizTracer timestamp, monotonic ns) and
:class:`LinearClockMap` maps one onto the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


def now_ns() -> int:
    """The shared clock."""
    return time.monotonic_ns()


@dataclass(frozen=True)
class LinearClockMap:
    """Maps a foreign clock onto monotonic ns: ``mono = offset + scale * foreign``."""

    offset_ns: float
    scale: float = 1.0

    @classmethod
    def from_pairs(cls, pairs: list[tuple[float, int]], unit_ns: float) -> LinearClockMap:
        """Fit from (foreign timestamp, monotonic ns) pairs; ``unit_ns`` is ns per foreign unit.

        One pair gives an offset; two or more (first and last) also correct a drift in rate.
        """
        if not pairs:
            raise ValueError("no clock pairs")
        (f0, m0), (f1, m1) = pairs[0], pairs[-1]
        scale = unit_ns
        if len(pairs) > 1 and f1 != f0:
            fitted = (m1 - m0) / (f1 - f0)
            # Accept a fitted rate only when it is close to the nominal one: a pair taken while
            # the target was descheduled can be off by a few ms, and that must not skew the run.
            if abs(fitted / unit_ns - 1.0) < 1e-3:
                scale = fitted
        return cls(offset_ns=m0 - scale * f0, scale=scale)

    def to_ns(self, foreign: float) -> int:
        return round(self.offset_ns + self.scale * foreign)
