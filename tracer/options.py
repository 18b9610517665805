"""What a recording can be asked to do, declared once.

:class:`RecordOptions` is what the controllers (:mod:`tracer.session`, :mod:`tracer.attach`)
receive and what ``raw/run.json`` keeps. Each field also says where it applies (``tracer run``,
``tracer attach``, ``tracer.record()``) and how it looks on the command line, so the flags of
``run`` and ``attach`` are made from it (:func:`add_flags`, :func:`from_args`), the bootstrap gets
its share from it (:meth:`RecordOptions.for_target`), and a unit test holds ``tracer.record()``'s
keywords to it: an option added here reaches every place that takes it, or a test says where not.
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Callable, Iterator
from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

from tracer.inprocess import DEFAULT_TRACER_ENTRIES
from tracer.raw_files import SourceName

T = TypeVar("T")


class AppliesTo(enum.Flag):
    """Where an option can be given."""

    NOWHERE = 0  # worked out by the tracer, never asked for
    RUN = enum.auto()  # `tracer run`: the target starts under the tracer
    ATTACH = enum.auto()  # `tracer attach PID`: only the out-of-process recorders reach it
    API = enum.auto()  # `tracer.record()`: the calling process records itself


EVERYWHERE = AppliesTo.RUN | AppliesTo.ATTACH | AppliesTo.API
IN_PROCESS = AppliesTo.RUN | AppliesTo.API  # needs code inside the target: not for attach


class Switch(enum.Enum):
    """The kind of command-line flag."""

    VALUE = "value"  # --flag VALUE
    OFF = "off"  # --no-thing: stores False
    ON = "on"  # --thing: stores True
    EITHER = "either"  # --thing / --no-thing; None when neither is given, and the command decides


@dataclass(frozen=True)
class Option:
    """How one field of :class:`RecordOptions` reaches its users."""

    applies_to: AppliesTo
    flag: str  # "" for an option with no flag of its own
    help: str
    switch: Switch = Switch.VALUE
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # VALUE flags: the default's type unless given
    source: SourceName | None = None  # the run.json source that a False value leaves out
    in_target: bool = False  # the bootstrap hands it to InProcessRecording inside the target
    not_in_api: str = ""  # why tracer.record() has no such keyword, for a `run` option


_KEY = "threadscope.option"


def _option(default: T, spec: Option) -> T:
    return field(default=default, metadata={_KEY: spec})


@dataclass(kw_only=True)
class RecordOptions:
    """Everything a recording can be asked to do; the defaults are those of ``tracer run``."""

    timeout_s: float | None = _option(None, Option(
        AppliesTo.RUN, "--timeout", metavar="S", parse=float,
        help="stop the target after S seconds (a partial report is written)",
        not_in_api="the recorded block is the caller's own code, which ends when it returns"))
    rate_hz: float = _option(200.0, Option(
        EVERYWHERE, "--rate", metavar="HZ",
        help="OS sampler rate (default: 200 Hz, one sample per 5 ms switch interval)"))
    python: str = _option(sys.executable, Option(
        AppliesTo.RUN, "--python", metavar="PATH",
        help="interpreter that runs the target (default: this one)",
        not_in_api="the recorded interpreter is the one that calls tracer.record()"))
    viztracer: bool = _option(False, Option(
        IN_PROCESS, "--viztracer", switch=Switch.EITHER, source=SourceName.VIZTRACER,
        in_target=True,
        help="record VizTracer's in-process function timeline (default: on for the bundled "
             "scenarios, off for your own scripts and modules: it slows Python code, 1.6-4.9x "
             "on real programs; the report estimates by how much)"))
    viztracer_by_default: bool = _option(False, Option(
        AppliesTo.NOWHERE, "",
        help="nobody said either way about VizTracer: the kind of target decided"))
    tracer_entries: int = _option(DEFAULT_TRACER_ENTRIES, Option(
        IN_PROCESS, "--tracer-entries", metavar="N", in_target=True,
        help=f"VizTracer's buffer size in events (default: {DEFAULT_TRACER_ENTRIES:,}, about "
             "10 s of a call-heavy program; up to 90 bytes each in the target, about "
             f"{DEFAULT_TRACER_ENTRIES * 90 / 1e9:.2f} GB when full, and about 170 bytes each "
             "while the report is made; the oldest calls are dropped past it, and the report "
             "says so first)"))
    pyspy: bool = _option(True, Option(
        EVERYWHERE, "--no-pyspy", switch=Switch.OFF, source=SourceName.PYSPY,
        help="do not record py-spy stack sampling"))
    perf: bool = _option(True, Option(
        EVERYWHERE, "--no-perf", switch=Switch.OFF, source=SourceName.PERF,
        help="do not record exact GIL waits from perf (the GIL's futex calls)"))
    gil_sampler: bool = _option(True, Option(
        EVERYWHERE, "--no-gil-sampler", switch=Switch.OFF, source=SourceName.GIL_SAMPLER,
        help="do not record the out-of-process GIL sampler"))
    sched: bool = _option(True, Option(
        EVERYWHERE, "--no-sched", switch=Switch.OFF, source=SourceName.SCHED,
        help="do not record the /proc CPU sampler"))
    locks: bool = _option(True, Option(
        IN_PROCESS, "--no-locks", switch=Switch.OFF, source=SourceName.LOCKS, in_target=True,
        help="do not record lock-wait instrumentation"))
    tasks: bool = _option(True, Option(
        IN_PROCESS, "--no-tasks", switch=Switch.OFF, source=SourceName.TASKS, in_target=True,
        help="do not record pool work items and asyncio tasks (concurrent.futures, asyncio)"))
    slow_step_s: float = _option(0.1, Option(
        IN_PROCESS, "--slow-step", metavar="S", parse=float,
        help="an asyncio step that runs this long blocks the event loop (default: 0.1 s, "
             "asyncio debug mode's slow_callback_duration)"))
    perf_budget: bool = _option(True, Option(
        EVERYWHERE, "--no-perf-budget", switch=Switch.OFF,
        help="record every GIL event and context switch even when that slows the program by "
             "more than ~10%% (by default exact recording stops then, the GIL sampler carries "
             "on, and the report says so)"))
    quiet: bool = _option(False, Option(
        EVERYWHERE, "--quiet", switch=Switch.ON, help="print only the report path"))

    def for_target(self) -> dict[str, Any]:
        """The keywords of :class:`tracer.inprocess.InProcessRecording`: what the recording
        inside the target needs (the bootstrap receives them in its config)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if option_of(f).in_target}

    def turned_off(self, applies_to: AppliesTo = AppliesTo.RUN) -> list[SourceName]:
        """The sources these options leave out, of those a recording of ``applies_to`` has."""
        return [spec.source for f, spec in declared()
                if spec.source and applies_to & spec.applies_to and getattr(self, f.name) is False]


def option_of(declared_field: Field[Any]) -> Option:
    return declared_field.metadata[_KEY]


def declared() -> Iterator[tuple[Field[Any], Option]]:
    """Every field of :class:`RecordOptions` with its declaration, in order."""
    for declared_field in fields(RecordOptions):
        yield declared_field, option_of(declared_field)


def flagged(applies_to: AppliesTo) -> list[Field[Any]]:
    """The fields a command line of ``applies_to`` has a flag for."""
    return [f for f, spec in declared() if spec.flag and applies_to & spec.applies_to]


def add_flags(parser: argparse.ArgumentParser, applies_to: AppliesTo) -> None:
    """Add a flag to ``parser`` for each option that applies there, in declaration order; the
    flag stores into the field's own name."""
    for declared_field in flagged(applies_to):
        spec = option_of(declared_field)
        parser.add_argument(spec.flag, dest=declared_field.name, help=spec.help,
                            **_flag_arguments(declared_field, spec))


def _flag_arguments(declared_field: Field[Any], spec: Option) -> dict[str, Any]:
    if spec.switch is Switch.OFF:
        return {"action": "store_false"}
    if spec.switch is Switch.ON:
        return {"action": "store_true"}
    if spec.switch is Switch.EITHER:
        return {"action": argparse.BooleanOptionalAction, "default": None}
    default = declared_field.default
    return {"default": default, "metavar": spec.metavar,
            "type": spec.parse or type(default)}


def from_args(args: argparse.Namespace, applies_to: AppliesTo, **decided: Any) -> RecordOptions:
    """The options that :func:`add_flags` put in ``args``, with ``decided`` for those the command
    works out itself (an EITHER flag left unset, an option that does not apply to it)."""
    given = {f.name: getattr(args, f.name) for f in flagged(applies_to)}
    return RecordOptions(**{**given, **decided})
