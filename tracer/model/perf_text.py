"""Read a ``perf script`` text file into GIL events, its common lines in C.

Why: a minute of 64 threads is ~5 million lines, and reading them one Python string method at a
time (:func:`tracer.model.gil_exact.parse_perf_script`) was a third of the exact analysis, and
holding each as a Python object ~800 MB. The C scanner (``_perfscan.c``) reads only the lines
whose every character it understands, into packed records that become numpy columns
(:class:`tracer.model.gil_events.EventColumns`), and hands the rest back; those go through the
same Python reading as before, so the events are the same either way
(``tests/unit/test_perf_text.py``). Without the C scanner (not built, or
``THREADSCOPE_PURE_PARSE=1``), every line is read in Python.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_events import EV_ORDER, RECORD, EventColumns, GilEvent
from tracer.model.gil_exact import FutexClassifier, read_line

# Lines are read in chunks this size (cut at a newline): the text is never in memory whole.
CHUNK_BYTES = 8 << 20


def _load_scanner() -> Any:
    if os.environ.get("THREADSCOPE_PURE_PARSE") == "1":
        return None
    try:
        from tracer.model import _perfscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    # its event codes are indices into EV_ORDER: a scanner built from other sources is not used
    if tuple(_perfscan.KINDS) != tuple(kind.value for kind in EV_ORDER[:len(_perfscan.KINDS)]):
        return None
    return _perfscan


_scanner = _load_scanner()
NATIVE = _scanner is not None


def read_perf_events(path: Path, words: FutexWords) -> EventColumns:
    """The events of a ``perf script`` text file (as ``parse_perf_script`` reads it opened as
    UTF-8 text with errors replaced), as columns in the file's order."""
    if _scanner is None:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return _read_in_python(enumerate(lines, start=1), FutexClassifier(words))
    return scan_chunks(_chunks(path), words)


def read_perf_script(path: Path, words: FutexWords) -> list[GilEvent]:
    """:func:`read_perf_events` as a list of events, in the file's order."""
    return list(in_file_order(read_perf_events(path, words)).events())


def scan_chunks(chunks: Iterable[bytes], words: FutexWords) -> EventColumns:
    """Events from chunks of perf script bytes, each ending at a line's end (or the file's)."""
    assert _scanner is not None
    classify = FutexClassifier(words)
    cond, switch = tuple(words.cond), tuple(words.switch)
    parts: list[EventColumns] = []
    first_line = 1
    for chunk in chunks:
        if b"\r" in chunk:  # text mode reads "\r" as a line end: leave the chunk to Python
            text = io.TextIOWrapper(io.BytesIO(chunk), encoding="utf-8", errors="replace")
            unread = [(first_line + n, line) for n, line in enumerate(text)]
            count = len(unread)
        else:
            records, raw_lines, count = _scanner.scan(chunk, cond, switch, words.mutex,
                                                      first_line)
            parts.append(EventColumns.from_records(np.frombuffer(records, dtype=RECORD)))
            unread = [(n, raw.decode("utf-8", errors="replace")) for n, raw in raw_lines]
        parts.append(_read_in_python(unread, classify))
        first_line += count
    return EventColumns.joined(parts)


def _read_in_python(lines: Iterable[tuple[int, str]], classify: FutexClassifier
                    ) -> EventColumns:
    events: list[GilEvent] = []
    numbers: list[int] = []
    for number, line in lines:
        parsed = read_line(line, classify, number)
        if parsed is not None:
            if not -(1 << 63) <= parsed.t_ns < 1 << 63 or not (
                    -(1 << 31) <= parsed.pid < 1 << 31 and -(1 << 31) <= parsed.tid < 1 << 31):
                raise CorruptRecording(f"perf script line {number}: a time, pid or tid out of "
                                       f"range: {line[:80]!r}")
            events.append(parsed)
            numbers.append(number)
    return EventColumns.from_events(events, numbers)


def in_file_order(columns: EventColumns) -> EventColumns:
    """The columns sorted by line (a file read in chunks interleaves C's and Python's events)."""
    order = np.argsort(columns.line, kind="stable")
    return EventColumns(*(getattr(columns, name)[order]
                          for name in ("t_ns", "line", "pid", "tid", "kind")))


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        carry = b""
        while block := raw.read(CHUNK_BYTES):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                carry = block
                continue
            carry = block[cut:]
            yield block[:cut]
        if carry:
            yield carry
