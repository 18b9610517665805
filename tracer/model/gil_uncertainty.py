"""How far a thread's sampled GIL figures can be trusted: the bounds its samples prove and the
uncertainty of its shares, as :class:`tracer.model.schema.SampledGilFigures`.

Shares. A state's sampled time is the sum over its runs of whole sample periods, unbiased however
short the runs when the sampling's phase is independent of them. Its error is the quantisation at
the runs' ends: a run whose length has a random phase against the sampling grid gets ``floor`` or
``ceil`` of ``length / T`` samples, a variance of at most ``T² / 4``; a run seen in one sample may
be any event shorter than ``2T``, and the Horvitz-Thompson estimate of the variance of such events
(seen with probability ``w / T``, each counted as ``T``) is below ``T²`` per event seen; an event
no sample saw (an estimated turn, a wait the counters allow) adds at most ``w (T - w) <= T² / 4``.
With the phases independent, the standard error of the thread's time in the state is
``T sqrt(n1 + (n2 + unseen) / 4)``, where ``n1`` and ``n2`` count the runs seen in one and in
several samples; ``T`` is the root-mean-square gap between samples (late ticks weigh more). The
phase is not quite independent, because each tick takes a CPU for ``tau`` (the sampler's CPU time
per tick, from the file's end record) and can delay or advance what the thread does next: each
run a sample credited may be off by up to ``tau`` at either end. Figures state twice the standard
error plus that shift, ``2 sigma + 2 tau (n1 + n2)``, over the thread's life.
benchmarks/gil_accuracy.py and tests/unit/test_gil_hidden_turns.py check them against exact
timelines.

Everything here is pure: evidence in, figures out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import SampledGilFigures


@dataclass
class WaitEvidence:
    """What one thread's samples prove about its GIL, in seconds from t0: the input of
    :func:`sampled_figures`, which clips it to the thread's life."""

    period_s: float  # root-mean-square gap between samples
    tick_s: float = 0.0  # CPU time one tick of the sampler took
    # when each sample was taken, in C doubles: a minute of 64 threads at 1 kHz is 4 million
    sample_times: Sequence[float] = field(default_factory=list)
    # Runs of consecutive samples in the state: (start, end, samples)
    held_runs: list[tuple[float, float, int]] = field(default_factory=list)
    wait_runs: list[tuple[float, float, int]] = field(default_factory=list)
    hidden_turns: list[float] = field(default_factory=list)  # where a turn split a wait
    # (start, end, proven waits, most waits or None) of every stretch the count is made of
    counts: list[tuple[float, float, int, int | None]] = field(default_factory=list)
    certain: list[tuple[float, float]] = field(default_factory=list)  # surely one wait throughout
    possible: list[tuple[float, float]] = field(default_factory=list)  # most one wait can span


def sampled_figures(evidence: WaitEvidence, start_s: float, end_s: float, *, held_s: float,
                    wait_s: float, waits: int, max_wait_s: float) -> SampledGilFigures:
    """A thread's :class:`SampledGilFigures` over its life ``[start_s, end_s]``, around the
    figures its timeline gives (``held_s``, ``wait_s``, ``waits``, ``max_wait_s``)."""
    life = max(end_s - start_s, 1e-9)

    def inside(lo: float, hi: float) -> bool:
        return lo < end_s and hi > start_s

    def overlap(lo: float, hi: float) -> float:
        return max(0.0, min(hi, end_s) - max(lo, start_s))

    hidden = sum(1 for t in evidence.hidden_turns if start_s <= t < end_s)
    low, high = 0, 0
    bounded = True
    for lo, hi, proven, most in evidence.counts:
        if inside(lo, hi):
            low += proven
            if most is None:
                bounded = False
            else:
                high += most
    # A wait cut by the life's edges may count in one figure and not the other: keep them ordered.
    low = min(low, waits)
    top = max(high, waits) if bounded else None
    longest_low = max((overlap(lo, max(hi, lo)) for lo, hi in evidence.certain
                       if inside(lo, max(hi, lo + 1e-12))), default=0.0)
    longest_high = max((overlap(lo, hi) for lo, hi in evidence.possible if inside(lo, hi)),
                       default=0.0)
    # Waits the counters allow but no sample saw are events of unknown length too.
    unseen = hidden + ((top - waits) if top is not None else 0)
    return SampledGilFigures(
        period_ms=round(evidence.period_s * 1e3, 4),
        samples=sum(1 for t in evidence.sample_times if start_s <= t < end_s),
        gil_held_share=round(held_s / life, 4),
        gil_held_share_pm=round(_share_error(evidence, evidence.held_runs, unseen, inside, life),
                                4),
        gil_wait_share=round(wait_s / life, 4),
        gil_wait_share_pm=round(_share_error(evidence, evidence.wait_runs, unseen, inside, life),
                                4),
        gil_waits_low=low,
        gil_waits_high=top,
        max_gil_wait_low_s=round(min(longest_low, max_wait_s), 6),
        max_gil_wait_high_s=round(max(longest_high, max_wait_s), 6),
        hidden_turns=hidden,
    )


def _share_error(evidence: WaitEvidence, runs: list[tuple[float, float, int]], unseen: int,
                 inside: Any, life: float) -> float:
    """Two standard errors of a state's sampled share, plus what the sampler's own ticks can
    shift it by (the module docstring says why)."""
    single = sum(1 for lo, hi, n in runs if n == 1 and inside(lo, hi))
    longer = sum(1 for lo, hi, n in runs if n > 1 and inside(lo, hi))
    sigma = evidence.period_s * math.sqrt(single + (longer + unseen) / 4)
    shifted = 2 * (single + longer) * evidence.tick_s  # only runs a sample credited
    return min((2 * sigma + shifted) / life, 1.0)
