"""The raw-file contract: the name of every file a run leaves in its ``raw/`` folder, and the run
record (``raw/run.json``) that says how the run went.

Recorders, the bootstrap inside the target, the model and the benchmarks all read or write these
files; one module owning the names keeps them agreeing (they were literals in a dozen places).
It imports nothing but the standard library because the bootstrap loads it inside the target.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Word(str, Enum):
    """A word of a fixed vocabulary, written and read as the plain word: JSON, templates and
    f-strings see ``"exact"``, never ``Method.EXACT``."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# Written by the controller (tracer run / attach)
RUN = "run.json"  # the run record, written last: its presence means the recording is complete
BOOTSTRAP = "bootstrap.json"  # the bootstrap's configuration (and the controller's pid)

# Written inside the target (tracer.bootstrap, tracer.inprocess, tracer.instrument)
TARGET = "target.json"  # how the target ended: exit code, daemon threads still alive
THREADS = "threads.jsonl"  # thread starts and ends, names, native ids
MARKERS = "markers.jsonl"  # tracer.markers phases and marks
GIL_LAYOUT = "gil_layout.json"  # where the GIL and the thread states are in memory
VIZTRACER = "viztracer.json"  # VizTracer's function trace
LOCKS = "locks.jsonl"  # the lock recorder's JSON lines
LOCK_RECORDS = "locks.bin"  # the C lock core's binary records (named by the LOCKS header)
TASKS = "tasks.bin"  # pool work items and asyncio steps (tracer.instrument.tasks: marshal chunks)

# Written by the out-of-process recorders
GIL_SAMPLES = "gil_samples.jsonl"  # the GIL sampler
SCHED = "sched.jsonl"  # the OS sampler
PYSPY = "pyspy.jsonl"  # py-spy's stacks, as the model reads them
PYSPY_TRACE = "pyspy_chrometrace.json"  # py-spy record's own output, converted into PYSPY
PYSPY_LOG = "pyspy_record.log"  # py-spy record's own messages
PERF_DATA = "perf.data"  # perf record's output
PERF_TEXT = "perf_gil.txt"  # perf script's text of it, what the exact model reads
PERF_LOG = "perf_record.log"  # perf record's own messages
STOP_REASON = "stop_reason"  # why the controller stopped the target ("timeout"), before its SIGINT
PERF_BUDGET = "perf_budget.json"  # where the cost guard stopped perf, if it did


@dataclass(frozen=True)
class BudgetCut:
    """When and why exact recording stopped (``PERF_BUDGET``): the cost guard writes it, the
    model says it."""

    t_ns: int  # CLOCK_MONOTONIC
    switches_per_s: float
    bytes_per_s: float
    reason: str

    def save(self, raw_dir: Path) -> None:
        (raw_dir / PERF_BUDGET).write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, raw_dir: Path) -> BudgetCut | None:
        try:
            raw = json.loads((raw_dir / PERF_BUDGET).read_text(encoding="utf-8"))
            return cls(int(raw["t_ns"]), float(raw["switches_per_s"]), float(raw["bytes_per_s"]),
                       str(raw["reason"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


class SourceName(Word):
    """The recorders a run can use, as run.json's ``sources`` and the model name them."""

    PERF = "perf"  # exact GIL events (tracer.recorders.perf_gil)
    GIL_SAMPLER = "gil-sampler"  # sampled GIL ownership (tracer.recorders.gil_sampler)
    SCHED = "sched"  # the OS sampler: CPU time and run states (tracer.recorders.sched)
    PYSPY = "py-spy"  # Python stacks (tracer.recorders.pyspy)
    LOCKS = "locks"  # the lock recorder inside the target (tracer.instrument.locks)
    TASKS = "tasks"  # pool work items and asyncio tasks inside the target (instrument.tasks)
    VIZTRACER = "viztracer"  # the function timeline inside the target


class RunStatus(Word):
    """How a recording ended: one vocabulary for the controller, the bootstrap, the model and the
    reports (``attach`` once wrote a status nothing else knew, and a normal end showed as a
    failure)."""

    OK = "ok"  # the target exited with 0, or attach stopped at its duration or on request
    ENDED = "ended"  # attach: the process exited while attached (a normal end)
    FAILED = "failed"  # the target exited non-zero or raised
    TIMEOUT = "timeout"  # stopped by --timeout
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or SIGTERM
    KILLED = "killed"  # ended by a signal nobody here sent
    ERROR = "error"  # the tracer could not run it

    @classmethod
    def of(cls, value: str) -> RunStatus:
        """The status a recording wrote; an unknown word (a newer threadscope) is an error."""
        try:
            return cls(value)
        except ValueError:
            return cls.ERROR

    @property
    def normal(self) -> bool:
        """The target ran to its own end or to the end the user asked for."""
        return self in (RunStatus.OK, RunStatus.ENDED)

    @property
    def stopped_early(self) -> bool:
        """Cut short from outside: what was recorded is a part of the run."""
        return self in (RunStatus.TIMEOUT, RunStatus.INTERRUPTED, RunStatus.KILLED)


@dataclass
class RunRecord:
    """What ``raw/run.json`` holds. ``target``, ``options`` and ``sources`` are the JSON forms of
    the target spec, the record options and each recorder's :class:`~tracer.model.schema.Source`.
    """

    threadscope_version: str
    target: dict[str, Any]
    python: str
    options: dict[str, Any]
    started_ns: int
    go_ns: int
    exit_ns: int
    exit_code: int | None
    status: str
    pid: int
    cores: int
    mode: str = "run"  # run | attach
    controller_pid: int | None = None  # attach only: the tracer that recorded
    sources: dict[str, Any] = field(default_factory=dict)

    def to_json_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode("utf-8")
