"""py-spy's stacks as per-thread samples, with stacks interned once per run.

The continuous recorder writes a record when a thread's stack changes, so a stack last set
before the run's start still holds at its start: it becomes a sample at t=0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracer.model.schema import StackSample


@dataclass
class StackTable:
    """Each distinct stack stored once; samples refer to it by index."""

    stacks: list[list[str]] = field(default_factory=list)
    index: dict[tuple[str, ...], int] = field(default_factory=dict)

    def intern(self, frames: list[str]) -> int:
        if not frames:
            return -1
        key = tuple(frames)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.stacks)
            self.stacks.append(list(frames))
        return found


@dataclass
class SampledThreads:
    samples: dict[tuple[int, int], list[StackSample]] = field(default_factory=dict)
    names: dict[tuple[int, int], str] = field(default_factory=dict)
    final_stacks: dict[tuple[int, int], list[str]] = field(default_factory=dict)


def load_samples(records: Iterable[dict[str, Any]], t0_ns: int, end_ns: int,
                 table: StackTable, exclude_pid: int | None = None) -> SampledThreads:
    """``exclude_pid``: the recorder process itself, when the API records its own parent."""
    out = SampledThreads()
    before: dict[tuple[int, int], StackSample] = {}  # each thread's last stack before t0
    for record in records:
        t_ns = (int(record["t0"]) + int(record["t1"])) // 2
        for thread in record.get("threads", []):
            if thread.get("tid") is None or thread.get("pid") == exclude_pid:
                continue
            key = (int(thread.get("pid") or 0), int(thread["tid"]))
            if thread.get("name"):
                out.names[key] = str(thread["name"])
            frames = [str(f) for f in thread.get("frames", [])]
            if record.get("final"):
                out.final_stacks[key] = frames
            if t_ns > end_ns:
                continue
            sample = StackSample(t=round(max(0, t_ns - t0_ns) / 1e9, 6),
                                 owns_gil=thread.get("owns_gil"), active=thread.get("active"),
                                 stack=table.intern(frames))
            if t_ns < t0_ns:
                before[key] = sample  # py-spy records a stack when it changes: it still holds
            else:
                out.samples.setdefault(key, []).append(sample)
    for key, sample in before.items():
        mine = out.samples.setdefault(key, [])
        if not mine or mine[0].t > 0:
            mine.insert(0, sample)
    return out
