"""Ctrl-C and SIGTERM mean the same to every command: stop, keep what was recorded, say so.

SIGTERM's default action ends the process at once, running no ``finally`` and no ``atexit``: a
tracer stopped by ``timeout`` or a service manager left a run folder with only ``raw/`` and could
leave perf children and mounts behind. So the CLI turns SIGTERM into :class:`Terminated`, a
KeyboardInterrupt, everywhere; and while a recording stops its target, its recorders and writes
``run.json``, both signals are only counted (:class:`StopRequests`), so that a second one cannot
cut any of that in half. Files written after that are written atomically, so a signal there
leaves a whole file or none.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from rich.console import Console

from tracer.runfolder import RunFolder

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python raises KeyboardInterrupt for Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's convention for "ended by this signal": 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + signum


def signal_of(exc: KeyboardInterrupt) -> int:
    return exc.signum if isinstance(exc, Terminated) else signal.SIGINT


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only; elsewhere Python
    cannot set handlers, and the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequests:
    """SIGINT and SIGTERM counted, never raised, while :meth:`deferred` is active: the recording
    polls :attr:`signals` and winds down in order."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    @property
    def first(self) -> int | None:
        return self.signals[0] if self.signals else None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[StopRequests]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def rebuild_hint(folder: RunFolder) -> Iterator[None]:
    """Ctrl-C or SIGTERM while analysing: the recording is complete (``run.json`` is written
    before analysis starts) and each output file is whole or absent, so say how to finish."""
    try:
        yield
    except KeyboardInterrupt:
        Console(stderr=True, highlight=False).print(
            f"stopped while writing the report; the recording in {folder.raw} is complete: "
            f"python -m tracer report {folder.root}", markup=False, soft_wrap=True)
        raise
