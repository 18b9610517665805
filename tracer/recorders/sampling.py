"""What the controller-side samplers share: a daemon thread that samples until told to stop, and
a JSON-lines raw file that opens with a ``meta`` record and closes with an ``end`` record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson

from tracer.recorders.base import Recorder

# A sampling thread may use at most this share of one core. With hundreds of threads to read per
# tick, the GIL sampler at its full 1 kHz took half a core of a 2-core machine (at real-time
# priority) from the program it measured; past this share it samples less often instead.
CPU_SHARE_MAX = 0.2
# Below this share of the requested rate, the source's notes say the rate was not reached.
RATE_SHORTFALL = 0.8


def pace(period_ns: int, next_ns: int, tick_cost_ns: int) -> tuple[int, int]:
    """The sleep after a tick and the next deadline: the requested period, stretched so that a
    tick costing ``tick_cost_ns`` of the thread's own CPU time (not wall time, which includes
    waiting for the controller's GIL) keeps it within CPU_SHARE_MAX of one core. A sampler that
    fell behind never catches up in a burst."""
    now = time.monotonic_ns()
    floor = max(period_ns // 4, int(tick_cost_ns * (1 - CPU_SHARE_MAX) / CPU_SHARE_MAX))
    delay = next_ns - now
    if delay < floor:
        delay = floor
        next_ns = now + delay
    return delay, next_ns


def rate_notes(requested_hz: float, reached_hz: float, threads: int) -> list[str]:
    """A note when the sampler fell well short of its rate, and why it may have."""
    if reached_hz >= RATE_SHORTFALL * requested_hz:
        return []
    return [f"reached {reached_hz:.0f} Hz of the {requested_hz:g} Hz requested: with up to "
            f"{threads} threads to read per tick it keeps itself under {CPU_SHARE_MAX:.0%} of one "
            "core (and a busy machine delays it), so states are sampled more coarsely"]


class SamplingRecorder(Recorder):
    """Base of the OS sampler and the GIL sampler (they run in the controller, never the target)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._out: IO[bytes] | None = None
        self._started_ns = 0
        self._stopped_ns = 0

    def _open(self, path: Path, meta: dict[str, object]) -> None:
        self._out = open(path, "wb")  # noqa: SIM115 (closed in _close_sampling)
        self._write({"kind": "meta", **meta})
        self._started_ns = time.monotonic_ns()

    def _start_sampling(self, loop: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=loop, name=name, daemon=True)
        self._thread.start()

    def _close_sampling(self, end: dict[str, object] | None = None) -> None:
        """Stop the thread (idempotent), then write the ``end`` record and close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._out is not None:
            self._stopped_ns = time.monotonic_ns()
            self._write({"kind": "end", "t": self._stopped_ns, **(end or {})})
            self._out.close()
            self._out = None

    def _write(self, record: dict[str, object]) -> None:
        if self._out is not None:
            self._out.write(orjson.dumps(record) + b"\n")
