"""The units of work scenarios are built from, shared so each scenario measures the same thing."""

from __future__ import annotations


def count(n: int) -> int:
    """Pure-Python CPU work that never releases the GIL voluntarily and makes no calls, so an
    in-process tracer sees one long call, not millions of short ones."""
    total = 0
    for i in range(n):
        total += i
    return total
