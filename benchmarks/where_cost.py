"""What attributing time to code costs the analysis: a synthetic VizTracer trace of 1M calls on
four threads (a parent call with nine children, over and over) and GIL states that alternate every
5 ms, timed through the same functions the model build uses (the stack timelines from VizTracer's
calls, then the attribution and the GIL and lock blame). The issue's budget: at most 5 s more for
1M VizTracer events.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson

from tracer.model.schema import GIL_WAIT, RUNNING, Interval, StackSource, ThreadTimeline
from tracer.model.stacks import StackTrie, viztracer_timelines
from tracer.model.where import attribute

HEADER = ["calls", "threads", "state intervals", "stack timelines s", "attribution s", "total s"]
CHILDREN = 9
CALL_US = 50
BATCH = 60_000  # events per chunk, as the VizTracer reader keeps them


def synthetic_trace(calls: int, threads: int) -> tuple[list[bytes], float]:
    """VizTracer-like chunks (times in µs from t0) and the trace's length in seconds."""
    events: list[dict[str, Any]] = []
    for tid in range(threads):
        t, made = 0.0, 0
        while made < calls // threads:
            start = t
            for child in range(CHILDREN):
                events.append({"ph": "X", "name": f"child{child} (app.py:{child + 10})",
                               "ts": t + 1, "dur": CALL_US - 2, "tid": tid, "pid": 1})
                t += CALL_US
            events.append({"ph": "X", "name": "parent (app.py:3)", "ts": start,
                           "dur": t - start + 2, "tid": tid, "pid": 1})
            t += 5
            made += CHILDREN + 1
    wall = max(e["ts"] + e["dur"] for e in events) / 1e6
    return [orjson.dumps(events[i:i + BATCH]) for i in range(0, len(events), BATCH)], wall


def gil_states(threads: int, wall: float) -> list[ThreadTimeline]:
    """Threads taking 5 ms GIL turns: one in four runs, the others wait."""
    out = []
    for tid in range(threads):
        intervals, at, turn = [], 0.0, 0
        while at < wall:
            state = RUNNING if (turn + tid) % threads == 0 else GIL_WAIT
            intervals.append(Interval(at, min(wall, at + 0.005), state))
            at, turn = at + 0.005, turn + 1
        out.append(ThreadTimeline(tid=tid, pid=1, name=f"t{tid}", start_s=0.0, end_s=wall,
                                  cpu_s=0.0, intervals=intervals))
    return out


def measure(rounds: int = 3, calls: int = 1_000_000, threads: int = 4) -> list[list[str]]:
    chunks, wall = synthetic_trace(calls, threads)
    states = gil_states(threads, wall)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        trie = StackTrie()
        timelines = viztracer_timelines(chunks, 1, trie)
        swept = time.perf_counter()
        attribute(states, timelines, trie, StackSource.VIZTRACER, None)
        timings.append((swept - started, time.perf_counter() - swept))
    sweep = statistics.median(t for t, _ in timings)
    blame = statistics.median(b for _, b in timings)
    return [[f"{calls:,}", str(threads), f"{sum(len(t.intervals) for t in states):,}",
             f"{sweep:.2f}", f"{blame:.2f}", f"{sweep + blame:.2f}"]]
