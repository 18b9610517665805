"""The one interface every out-of-process recorder implements.

The controllers, through :class:`tracer.recorders.lifecycle.RecorderSet`, call
:meth:`Recorder.check` before the target starts (a failure there is a reason, not an error: the run
goes on without that source), :meth:`Recorder.start` while the target waits at its starting line,
:meth:`Recorder.final_dump` when they stop a target that still runs, and :meth:`Recorder.stop`
after the target has ended, however it ended. What sets one recorder apart from the others is said
here, by overriding a method, never by a controller testing which recorder it holds.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

from tracer.model.schema import Source
from tracer.raw_files import SourceName


@dataclass
class RecordContext:
    """What a recorder needs to know about the run."""

    raw_dir: Path
    python: str  # interpreter that runs the target
    pid: int = 0  # filled in once the target process exists
    rate_hz: float = 200.0
    options: dict[str, object] = field(default_factory=dict)


class Recorder(abc.ABC):
    name: SourceName  # the source it leaves in run.json

    @abc.abstractmethod
    def check(self, ctx: RecordContext) -> None:
        """Raise :class:`tracer.errors.RecorderUnavailable` (with the reason) if it cannot run."""

    @abc.abstractmethod
    def start(self, ctx: RecordContext) -> None:
        """Begin recording ``ctx.pid``; return once recording is live."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop and flush raw files. Idempotent; never raises for cleanup problems."""

    @abc.abstractmethod
    def describe(self) -> Source:
        """After :meth:`stop`: what was recorded (rate, samples, notes)."""

    def final_dump(self) -> None:  # noqa: B027 (a hook: doing nothing is the default)
        """The recording is being stopped while the target still runs (a timeout, the end of an
        attach): record the state at this moment, marked final, if this recorder keeps such a
        thing. Most do not (this default); py-spy's last stack dump is what a timed-out report
        shows as "the stacks at the moment it was stopped"."""

    def progress(self) -> str:
        """A few words for the live progress line while recording ("" for nothing)."""
        return ""
