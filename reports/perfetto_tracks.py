"""Which synthetic tid each of trace.json's tracks has (see :mod:`reports.perfetto`).

Perfetto's JSON importer orders a process's thread tracks by tid and ignores
``thread_sort_index``, so a thread's tracks get consecutive tids: ``t * TRACK_STRIDE`` for its
function slices (VizTracer's calls, pool tasks, asyncio steps), then its states, then its lock
lanes; the GIL holder and the phases take tids 1 and 2, above every thread.
"""

from __future__ import annotations

# Each thread owns TRACK_STRIDE consecutive tids: its function slices, its state track, then up to
# LANES_PER_THREAD lock lanes. A real tid is at least 1 (and below pid_max, 4,194,304), so the
# tids 1 and 2 sort above every thread and no synthetic tid passes 2**31.
LANES_PER_THREAD = 20
TRACK_STRIDE = LANES_PER_THREAD + 2
GIL_TID = 1
PHASES_TID = 2


def function_tid(tid: int) -> int:
    """The synthetic tid of thread ``tid``'s function slices; its other tracks follow it."""
    return tid * TRACK_STRIDE


def state_tid(tid: int) -> int:
    return function_tid(tid) + 1


def lock_tid(tid: int, lane: int) -> int:
    return function_tid(tid) + 2 + lane
