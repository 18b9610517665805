"""Keep the exact GIL recorder within its cost budget, or stop it and say so.

Recording a GIL event or a context switch costs the target about a microsecond or two (the
kernel's tracepoint, perf's per-thread context switch, the record itself, and perf's own CPU on a
machine whose cores the target wants). That is nothing for a program that hands the GIL over a few
thousand times a second, and far too much for one that switches threads 150,000 times a second
(two threads bouncing bytes over a socket ran 1.6x slower). Such a program cannot be recorded
exactly at a bounded cost, so the guard watches two rates while perf records, and stops perf when
either stays above its budget for :data:`SUSTAIN_POLLS` polls in a row:

- the target's context switches per second (the third field of every thread's
  ``/proc/PID/task/TID/schedstat``: how many times it was put on a CPU), which costs a switch
  record in and out plus the per-thread bookkeeping of perf's events;
- the bytes per second perf writes (GIL futex calls are ~100-byte records), which catches GIL
  contention that does not switch much.

The budgets (:data:`SWITCHES_PER_S`, :data:`BYTES_PER_S`) were measured on this project's 2-core
test machine to keep recording within about 10% of the program's untraced time; see
``benchmarks/RESULTS.md``. After a stop, the run's GIL figures come from the sampler, and the report
says when and why exact recording stopped (:class:`BudgetCut`, written as ``raw/perf_budget.json``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tracer.raw_files import BudgetCut

POLL_S = 0.05  # 20 Hz: a stop within ~0.1-0.2 s of a costly phase starting
SUSTAIN_POLLS = 3  # above budget for 3 polls in a row (0.1 s of rates), not one noisy reading
SWITCHES_PER_S = 25_000.0
BYTES_PER_S = 6_000_000.0
# Reading every thread's schedstat costs ~3 us each: past this many threads, read a sample of
# them and scale (the budget is a rate, an estimate is enough).
MAX_THREADS_READ = 256


def context_switches(pid: int) -> int | None:
    """Times the process's threads were put on a CPU so far (None once it is gone)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    step = max(1, len(tids) // MAX_THREADS_READ)
    total = 0
    for tid in tids[::step]:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as handle:
                total += int(handle.read().split()[2])
        except (OSError, IndexError, ValueError):
            continue
    return total * step


def over_budget(switches_per_s: float, bytes_per_s: float,
                switch_budget: float = SWITCHES_PER_S,
                byte_budget: float = BYTES_PER_S) -> str | None:
    """Why these rates are over budget, in words; None when they are not."""
    if switches_per_s > switch_budget:
        return (f"the program switched threads {switches_per_s:,.0f} times a second (recording "
                f"each costs about a microsecond or two; the budget is {switch_budget:,.0f}/s)")
    if bytes_per_s > byte_budget:
        return (f"perf had to write {bytes_per_s / 1e6:.1f} MB/s of GIL and scheduler events "
                f"(the budget is {byte_budget / 1e6:.0f} MB/s)")
    return None


class BudgetGuard:
    """A thread that watches the rates and calls ``stop(cut)`` once when they stay too high."""

    def __init__(self, pid: int, data: Path, stop: Callable[[BudgetCut], None],
                 switch_budget: float = SWITCHES_PER_S,
                 byte_budget: float = BYTES_PER_S) -> None:
        self._pid, self._data, self._stop_perf = pid, data, stop
        self._budgets = (switch_budget, byte_budget)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="threadscope-perf-budget",
                                        daemon=True)
        self.cut: BudgetCut | None = None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _size(self) -> int:
        try:
            return self._data.stat().st_size
        except OSError:
            return 0

    def _watch(self) -> None:
        last_t, last_switches = time.monotonic(), context_switches(self._pid)
        # perf writes in chunks (half its buffer per CPU): rate its bytes over a longer window.
        window: list[tuple[float, int]] = [(last_t, 0)]
        streak = 0
        while not self._done.wait(POLL_S):
            now, switches, size = time.monotonic(), context_switches(self._pid), self._size()
            if switches is None or last_switches is None:
                return  # the target is gone
            switch_rate = (switches - last_switches) / max(now - last_t, 1e-6)
            window = [*window[-9:], (now, size)]
            byte_rate = (size - window[0][1]) / max(now - window[0][0], 1e-6)
            reason = over_budget(switch_rate, byte_rate, *self._budgets)
            streak = streak + 1 if reason else 0
            if reason and streak >= SUSTAIN_POLLS:
                self.cut = BudgetCut(time.monotonic_ns(), switch_rate, byte_rate, reason)
                self._stop_perf(self.cut)
                return
            last_t, last_switches = now, switches
