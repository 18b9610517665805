"""Read a ``perf script`` text file into GIL events, its common lines in C.

Why: a minute of 64 threads is ~5 million lines, and reading them one Python string method at a
time (:func:`tracer.model.gil_exact.parse_perf_script`) was a third of the exact analysis. The C
scanner (``_perfscan.c``) reads only the lines whose every character it understands and hands
the rest back; those go through the same Python reading as before, so the events are the same
either way (``tests/unit/test_perf_text.py``). Without the C scanner (not built, or
``THREADSCOPE_PURE_PARSE=1``), every line is read in Python.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from tracer.instrument.gil_probe import FutexWords
from tracer.model.gil_exact import Ev, FutexClassifier, GilEvent, parse_perf_script, read_line

# The scanner's event codes, in its enum's order.
KINDS = (Ev.WAIT, Ev.MUTEX_WAIT, Ev.NO_SLEEP, Ev.WAKE, Ev.HANDOFF_WAIT, Ev.HANDOFF_WAKE,
         Ev.SWITCH_OUT, Ev.PREEMPTED, Ev.SWITCH_IN)
# Lines are read in chunks this size (cut at a newline): memory stays flat however long the file.
CHUNK_BYTES = 8 << 20


def _load_scanner() -> Any:
    if os.environ.get("THREADSCOPE_PURE_PARSE") == "1":
        return None
    try:
        from tracer.model import _perfscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _perfscan


_scanner = _load_scanner()
NATIVE = _scanner is not None


def read_perf_script(path: Path, words: FutexWords) -> list[GilEvent]:
    """The events of a ``perf script`` text file, in its order (as ``parse_perf_script`` reads
    it opened as UTF-8 text with errors replaced)."""
    if _scanner is None:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return parse_perf_script(lines, words)
    return scan_chunks(_chunks(path), words)


def scan_chunks(chunks: Any, words: FutexWords) -> list[GilEvent]:
    """Events from chunks of perf script bytes, each ending at a line's end (or the file's)."""
    classify = FutexClassifier(words)
    cond, switch = tuple(words.cond), tuple(words.switch)
    events: list[GilEvent] = []
    append = events.append
    first_line = 1
    for chunk in chunks:
        if b"\r" in chunk:  # text mode reads "\r" as a line end: leave the chunk to Python
            lines = io.TextIOWrapper(io.BytesIO(chunk), encoding="utf-8", errors="replace")
            found, count = _read_in_python(list(lines), classify, first_line)
            events.extend(found)
            first_line += count
            continue
        items, count = _scanner.scan(chunk, cond, switch, words.mutex, tuple.__new__, GilEvent,
                                     KINDS)
        for item in items:
            if len(item) == 4:  # an event (GilEvent is a 4-tuple); else a line left to Python
                append(item)
                continue
            index, raw = item
            parsed = read_line(raw.decode("utf-8", errors="replace"), classify, first_line + index)
            if parsed is not None:
                append(parsed)
        first_line += count
    return events


def _read_in_python(lines: list[str], classify: FutexClassifier,
                    first_line: int) -> tuple[list[GilEvent], int]:
    found: list[GilEvent] = []
    for n, line in enumerate(lines):
        parsed = read_line(line, classify, first_line + n)
        if parsed is not None:
            found.append(parsed)
    return found, len(lines)


def _chunks(path: Path) -> Any:
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
