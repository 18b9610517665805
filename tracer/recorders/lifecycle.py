"""The out-of-process recorders of one recording, started and stopped the same way by every
controller (:mod:`tracer.session` for ``tracer run``, :mod:`tracer.attach` for ``tracer attach``
and the Python API).

The guarantees: a recorder that cannot run is left out with its reason, and the run goes on;
recorders start in order and stop in the reverse order; every one that started is stopped,
however the recording ends, even if an earlier one fails to stop, so that one failing recorder
never loses the others' data; and each leaves a :class:`~tracer.model.schema.Source` for
``run.json`` saying what it recorded or why it did not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from tracer.errors import RecorderUnavailable
from tracer.model.schema import TURNED_OFF, Source
from tracer.options import RecordOptions
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext, Recorder
from tracer.recorders.gil_sampler import GilSampler
from tracer.recorders.perf_gil import PerfGilRecorder
from tracer.recorders.pyspy import PySpyRecorder
from tracer.recorders.sched import SchedSampler


def build_recorders(options: RecordOptions) -> list[Recorder]:
    """The recorders ``options`` ask for, in the order they start."""
    wanted = ((options.sched, SchedSampler), (options.gil_sampler, GilSampler),
              (options.pyspy, PySpyRecorder), (options.perf, PerfGilRecorder))
    return [make() for on, make in wanted if on]


def recorder_context(options: RecordOptions, raw_dir: Path, python: str,
                     pid: int = 0) -> RecordContext:
    """What the recorders are told about the run (``pid`` is 0 until the target exists)."""
    return RecordContext(raw_dir=raw_dir, python=python, pid=pid, rate_hz=options.rate_hz,
                         options={"perf_budget": options.perf_budget})


class RecorderSet:
    """The recorders of one recording, and the source each leaves (or why it is missing)."""

    def __init__(self, recorders: Iterable[Recorder]) -> None:
        self.sources: dict[SourceName, Source] = {}
        self._ready = list(recorders)
        self._running: list[Recorder] = []

    def check(self, ctx: RecordContext) -> None:
        """Leave out, with the reason, each recorder that cannot run here. Done before the target
        starts when it can be, so that a missing tool costs the target no time at its line."""
        ready = []
        for recorder in self._ready:
            try:
                recorder.check(ctx)
            except RecorderUnavailable as exc:
                self._unavailable(recorder, exc)
            else:
                ready.append(recorder)
        self._ready = ready

    def note_turned_off(self, names: Iterable[SourceName]) -> None:
        """Sources the user (or the default for their target) left out, as such."""
        for name in names:
            self.sources[name] = Source(used=False, reason=TURNED_OFF, off_by_choice=True)

    @contextlib.contextmanager
    def started(self, ctx: RecordContext) -> Iterator[RecorderSet]:
        """Start the checked recorders on ``ctx.pid``, in order; stop every one that started
        when the block ends, however it ends (an error while starting one included)."""
        try:
            for recorder in self._ready:
                self._start(recorder, ctx)
            yield self
        finally:
            self._stop_all()

    def final_dump(self) -> None:
        """The recording is being stopped while the target still runs: each running recorder
        may keep the state at this moment (:meth:`Recorder.final_dump`)."""
        for recorder in self._running:
            with contextlib.suppress(Exception):  # a last look is not worth the others' data
                recorder.final_dump()

    def progress(self) -> list[str]:
        """The running recorders' words for the live progress line."""
        return [words for words in (r.progress() for r in self._running) if words]

    def _start(self, recorder: Recorder, ctx: RecordContext) -> None:
        try:
            recorder.start(ctx)
        except RecorderUnavailable as exc:
            self._unavailable(recorder, exc)
        else:
            self._running.append(recorder)

    def _stop_all(self) -> None:
        while self._running:
            recorder = self._running.pop()
            self.sources[recorder.name] = _stopped(recorder)

    def _unavailable(self, recorder: Recorder, exc: RecorderUnavailable) -> None:
        self.sources[recorder.name] = Source(used=False, reason=str(exc))


def _stopped(recorder: Recorder) -> Source:
    """Stop ``recorder`` and say what it recorded. A recorder whose stop fails still describes
    what it wrote; one that cannot describe itself is reported as missing, with the error."""
    failure = ""
    try:
        recorder.stop()
    except Exception as exc:  # Recorder.stop promises not to raise; this keeps the promise
        failure = f"stopping it failed: {type(exc).__name__}: {exc}"
    try:
        source = recorder.describe()
    except Exception as exc:
        return Source(used=False, reason=f"{recorder.name} failed when it stopped: "
                                         f"{type(exc).__name__}: {exc}")
    if failure:
        source.notes.append(failure)
    return source
