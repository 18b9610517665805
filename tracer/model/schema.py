"""The analysed model: the one value every renderer reads, saved as ``model.json``.

Times are seconds relative to ``t0_ns`` (CLOCK_MONOTONIC when the target began running user code);
``t0_ns`` keeps the absolute anchor. The schema is versioned and loaders refuse versions they do not
know, so a report is never built from a model it would misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer.errors import CorruptRecording, UnknownSchema

SCHEMA_VERSION = 2  # 2: GIL figures per thread, figure_sources, locks and lock holds

# Thread states, finest first. ``on_cpu``/``off_cpu`` are what the OS alone can tell; the GIL
# recorders refine them into ``running``/``native`` and ``gil_wait``/``blocked``/``lock_wait``.
RUNNING = "running"  # holds the GIL and executes Python
NATIVE = "native"  # on a CPU without the GIL (C code that released it)
GIL_WAIT = "gil_wait"  # ready to run Python, waiting for the GIL
LOCK_WAIT = "lock_wait"  # blocked on a known threading lock
BLOCKED = "blocked"  # sleep, I/O, join, queue, condition: not wanting the GIL
CPU_WAIT = "cpu_wait"  # ready to run but no free core: preempted or queued by the OS
ON_CPU = "on_cpu"  # on a CPU, GIL ownership unknown
OFF_CPU = "off_cpu"  # off CPU, reason unknown
LOCK_HOLD = "lock_hold"  # not a thread state: a lock held (ThreadTimeline.holds)
STATES = (RUNNING, NATIVE, ON_CPU, GIL_WAIT, CPU_WAIT, LOCK_WAIT, BLOCKED, OFF_CPU)
ON_CPU_STATES = frozenset({RUNNING, NATIVE, ON_CPU})


@dataclass
class Interval:
    """A thread was in ``state`` from ``start`` to ``end`` (seconds from t0)."""

    start: float
    end: float
    state: str
    detail: dict[str, Any] | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class StackSample:
    """What a sampler saw on one thread at one instant: GIL flags and the Python stack."""

    t: float
    owns_gil: bool | None
    active: bool | None
    stack: int  # index into RunModel.stacks (-1: no Python frames)


@dataclass
class SampledGilFigures:
    """How far one thread's sampled GIL figures can be trusted (:mod:`tracer.model.gil_uncertainty`
    says how each is derived). Shares are of the thread's life; ``_pm`` is the half-width of a 95%
    interval (2 standard errors of the sampling), so 0.41 with 0.02 reads "41% ±2 pp". A count or
    longest wait the samples cannot pin down is given as the bounds they prove."""

    period_ms: float  # root-mean-square time between samples
    samples: int  # samples that saw this thread
    gil_held_share: float
    gil_held_share_pm: float
    gil_wait_share: float
    gil_wait_share_pm: float
    gil_waits_low: int  # distinct waits the samples prove
    gil_waits_high: int | None  # most waits the counters allow (None: nothing bounds them)
    max_gil_wait_low_s: float  # the longest wait lasted at least this
    max_gil_wait_high_s: float  # and at most this: no wait can have been longer
    hidden_turns: int  # GIL turns between samples, estimated from the counters, that split waits


@dataclass
class ThreadTimeline:
    tid: int  # OS thread id (Linux: the tid in /proc, ``threading.get_native_id()``)
    pid: int
    name: str
    start_s: float | None
    end_s: float | None
    cpu_s: float
    daemon: bool | None = None
    is_main: bool = False
    end_reason: str | None = None  # finished | killed_at_exit | running_at_stop
    intervals: list[Interval] = field(default_factory=list)
    state_s: dict[str, float] = field(default_factory=dict)
    samples: list[StackSample] = field(default_factory=list)
    last_stack: list[str] = field(default_factory=list)  # frames seen last, innermost first
    # GIL figures (None when GIL ownership was not recorded); see RunModel.figure_sources
    gil_held_s: float | None = None
    gil_wait_s: float | None = None
    gil_waits: int | None = None
    max_gil_wait_s: float | None = None
    lock_wait_s: float | None = None
    holds: list[Interval] = field(default_factory=list)  # lock hold intervals (state lock_hold)
    gil_sampled: SampledGilFigures | None = None  # the uncertainty of sampled GIL figures


TURNED_OFF = "turned off on the command line"  # the reason of a recorder the user left out


@dataclass
class Source:
    """One recorder's contribution: was it used, why not, and how good its figures are."""

    used: bool
    reason: str = ""
    method: str = ""  # exact | sampled | instrumented
    rate_hz: float | None = None
    samples: int | None = None
    notes: list[str] = field(default_factory=list)
    # Not used because the user (or the default for their kind of target) left it out: said in
    # the sources table, not raised as a warning.
    off_by_choice: bool = False


@dataclass
class Target:
    kind: str  # scenario | script | module
    name: str
    argv: list[str]
    python: str
    python_version: str
    exit_code: int | None
    status: str  # a tracer.raw_files.RunStatus value (ok, ended, failed, timeout, ...)
    error: str | None = None


@dataclass
class Marker:
    name: str
    kind: str  # mark | phase
    start: float
    end: float | None
    tid: int | None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Series:
    """A regularly binned curve (e.g. CPU parallelism): ``values[i]`` covers [t[i], t[i]+bin_s)."""

    bin_s: float
    t: list[float]
    values: list[float]


@dataclass
class Claim:
    """A scenario's claim checked against the recording."""

    claim: str
    held: bool | None  # None: could not be checked
    detail: str


@dataclass
class RunModel:
    target: Target
    t0_ns: int
    wall_s: float
    cores: int
    sources: dict[str, Source]
    threads: list[ThreadTimeline]
    metrics: dict[str, Any] = field(default_factory=dict)
    parallelism: Series | None = None
    markers: list[Marker] = field(default_factory=list)
    stacks: list[list[str]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    partial: bool = False
    warnings: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    scenario: dict[str, Any] | None = None
    # figure -> how it was obtained, e.g. {"gil": "exact", "cpu": "sampled", "locks": ...}
    figure_sources: dict[str, str] = field(default_factory=dict)
    locks: list[dict[str, Any]] = field(default_factory=list)  # per-lock statistics
    deadlocks: list[list[dict[str, Any]]] = field(default_factory=list)  # cycles at stop time
    schema_version: int = SCHEMA_VERSION

    def to_json_bytes(self) -> bytes:
        # orjson serialises dataclasses itself: dataclasses.asdict deep-copies every interval
        # first, which took seconds on a run with a few hundred thousand lock holds.
        return orjson.dumps(self, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    def save(self, path: Path) -> None:
        from tracer.runfolder import atomic_write_bytes

        atomic_write_bytes(path, self.to_json_bytes())

    @classmethod
    def load(cls, path: Path) -> RunModel:
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CorruptRecording(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(raw, origin=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], origin: str = "model") -> RunModel:
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise UnknownSchema(
                f"{origin}: schema_version {version!r} is not {SCHEMA_VERSION}; "
                "rebuild it with `python -m tracer report RUN_DIR`"
            )
        try:
            return cls(
                target=Target(**raw["target"]),
                t0_ns=raw["t0_ns"],
                wall_s=raw["wall_s"],
                cores=raw["cores"],
                sources={k: Source(**v) for k, v in raw["sources"].items()},
                threads=[_thread_from_dict(t) for t in raw["threads"]],
                metrics=raw.get("metrics", {}),
                parallelism=Series(**raw["parallelism"]) if raw.get("parallelism") else None,
                markers=[Marker(**m) for m in raw.get("markers", [])],
                stacks=raw.get("stacks", []),
                processes=raw.get("processes", []),
                partial=raw.get("partial", False),
                warnings=raw.get("warnings", []),
                claims=[Claim(**c) for c in raw.get("claims", [])],
                scenario=raw.get("scenario"),
                figure_sources=raw.get("figure_sources", {}),
                locks=raw.get("locks", []),
                deadlocks=raw.get("deadlocks", []),
            )
        except (KeyError, TypeError) as exc:
            raise CorruptRecording(f"{origin}: malformed model ({exc})") from exc


def _thread_from_dict(raw: dict[str, Any]) -> ThreadTimeline:
    raw = dict(raw)
    raw["intervals"] = [Interval(**i) for i in raw.get("intervals", [])]
    raw["samples"] = [StackSample(**s) for s in raw.get("samples", [])]
    raw["holds"] = [Interval(**i) for i in raw.get("holds", [])]
    if raw.get("gil_sampled") is not None:
        raw["gil_sampled"] = SampledGilFigures(**raw["gil_sampled"])
    return ThreadTimeline(**raw)
