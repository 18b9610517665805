"""What the controller-side samplers share: a daemon thread that samples until told to stop, and
a JSON-lines raw file that opens with a ``meta`` record and closes with an ``end`` record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson

from tracer.recorders.base import Recorder


class SamplingRecorder(Recorder):
    """Base of the OS sampler and the GIL sampler (they run in the controller, never the target)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._out: IO[bytes] | None = None
        self._started_ns = 0
        self._stopped_ns = 0

    def _open(self, path: Path, meta: dict[str, object]) -> None:
        self._out = open(path, "wb")  # noqa: SIM115 (closed in _close_sampling)
        self._write({"kind": "meta", **meta})
        self._started_ns = time.monotonic_ns()

    def _start_sampling(self, loop: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=loop, name=name, daemon=True)
        self._thread.start()

    def _close_sampling(self, end: dict[str, object] | None = None) -> None:
        """Stop the thread (idempotent), then write the ``end`` record and close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._out is not None:
            self._stopped_ns = time.monotonic_ns()
            self._write({"kind": "end", "t": self._stopped_ns, **(end or {})})
            self._out.close()
            self._out = None

    def _write(self, record: dict[str, object]) -> None:
        if self._out is not None:
            self._out.write(orjson.dumps(record) + b"\n")
