"""The C reader of perf script text gives the events and errors that Python's reading gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_gil_exact import _PAYLOADS, COND, FIXTURE, LINES, MUTEX, SWITCH, WORDS, _futex
from tracer.errors import CorruptRecording
from tracer.instrument.gil_probe import FutexWords
from tracer.model import perf_text
from tracer.model.gil_exact import GilEvent
from tracer.model.perf_text import read_perf_script

if not perf_text.NATIVE and os.environ.get("CI") != "true":
    pytest.skip("the C reader is not built here", allow_module_level=True)


def test_ci_has_the_c_reader() -> None:
    assert perf_text.NATIVE, "setup.py should have built tracer/model/_perfscan"


def _both(path: Path, words: FutexWords, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[list[GilEvent] | str, list[GilEvent] | str]:
    """What the C path and the Python path read from ``path`` (or the error each raised)."""
    def read() -> list[GilEvent] | str:
        try:
            return read_perf_script(path, words)
        except CorruptRecording as exc:
            return str(exc)

    native = read()
    with monkeypatch.context() as patch:
        patch.setattr(perf_text, "_scanner", None)
        python = read()
    return native, python


def _fixture_words() -> FutexWords:
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("# layout "):
            return FutexWords(int(json.loads(line.removeprefix("# layout "))["gil_addr"]))
    raise AssertionError("fixture has no layout line")


@pytest.mark.parametrize("chunk_bytes", [64, 4096, perf_text.CHUNK_BYTES])
def test_a_real_recording_reads_the_same_in_c_and_in_python(
        chunk_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perf_text, "CHUNK_BYTES", chunk_bytes)
    native, python = _both(FIXTURE, _fixture_words(), monkeypatch)
    assert isinstance(native, list) and len(native) > 100
    assert native == python
    assert all(type(event) is GilEvent for event in native)


def test_a_damaged_line_names_the_same_line_in_both(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perf_text, "CHUNK_BYTES", 100)
    path = tmp_path / "perf.txt"
    path.write_text(LINES + LINES + "this is not perf output\n" + LINES)
    native, python = _both(path, WORDS, monkeypatch)
    assert isinstance(native, str) and f"line {2 * len(LINES.splitlines()) + 1}" in native
    assert native == python


_SPACE = st.sampled_from([" ", "  ", "\t", "\x1c", "\xa0", "\r", "\x0b"])
_HEX = st.sampled_from(["0x{:x}", "0X{:X}", "{:x}", "0x{:_x}", "-0x{:x}", "0x{:x} ", "0x{:020x}"])
_PAYLOAD = st.one_of(
    _PAYLOADS,
    st.builds(lambda word, op: _futex(word, op), st.sampled_from([COND, MUTEX, SWITCH, 0x1234]),
              st.sampled_from([0x0, 0x1, 0x9, 0x80, 0x81, 0x89, 0x8a, 0x18a])),
    st.builds(lambda form, word, op: f"syscalls:sys_enter_futex: uaddr: {form.format(word)}, "
                                     f"op: {form.format(op)}",
              _HEX, st.sampled_from([COND, SWITCH]), st.sampled_from([0x80, 0x89])),
    st.builds(lambda form, value: f"syscalls:sys_exit_futex: {form.format(value)}",
              _HEX, st.sampled_from([(1 << 64) - 11, 11, 0, (1 << 64) - 1])),
    st.builds(lambda space, word: f"PERF_RECORD_SWITCH OUT{space}{word}", _SPACE,
              st.sampled_from(["preempt", "preempted", ""])),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 99_999), st.integers(0, 99_999), st.integers(0, 10**13),
       st.integers(1, 10), st.integers(0, 999_999_999), _PAYLOAD, _SPACE, _SPACE,
       st.sampled_from(["\n", "", "\r\n"]))
def test_any_line_reads_the_same_in_c_and_in_python(
        pid: int, tid: int, sec: int, digits: int, frac: int, payload: str, pad: str,
        gap: str, ending: str) -> None:
    line = f"{pad}{pid:>5}/{tid:<5}{gap}{sec:>8}.{frac % 10**digits:0{digits}d}: {payload}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        native = _scan(line + ending)
        monkeypatch.setattr(perf_text, "_scanner", None)
        assert native == _scan(line + ending)


def _scan(text: str) -> list[GilEvent] | str:
    """Read ``text`` as a file holding it (UTF-8) would be read."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "perf.txt"
        path.write_bytes(text.encode())
        try:
            return read_perf_script(path, WORDS)
        except CorruptRecording as exc:
            return str(exc)


def test_columns_group_each_thread_in_time_order_and_threads_by_first_event() -> None:
    from tracer.model.gil_events import Ev, EventColumns

    events = [GilEvent(30, 1, 7, Ev.WAIT), GilEvent(10, 1, 8, Ev.SWITCH_IN),
              GilEvent(20, 2, 7, Ev.WAKE), GilEvent(20, 1, 7, Ev.SWITCH_OUT),
              GilEvent(5, 1, 9, Ev.START)]
    columns = EventColumns.from_events(events)
    assert list(columns.events()) == events
    assert columns.pids() == [1, 2]
    assert [(tid, times, kinds) for tid, times, kinds in columns.of_process(1).by_thread()] == [
        (9, [5], [Ev.START]), (8, [10], [Ev.SWITCH_IN]), (7, [20, 30], [Ev.SWITCH_OUT, Ev.WAIT])]
    # one instant: perf's order (the line) decides
    tied = EventColumns.from_events([GilEvent(5, 1, 3, Ev.WAKE), GilEvent(5, 1, 3, Ev.WAIT)],
                                    lines=[2, 1])
    assert [kinds for _, _, kinds in tied.by_thread()] == [[Ev.WAIT, Ev.WAKE]]
