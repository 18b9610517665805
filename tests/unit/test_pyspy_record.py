"""The py-spy recorder's life with one ``py-spy record`` process (a stand-in script here): it
starts once, stops on SIGINT and writes its trace, is killed if it will not stop, and says what it
recorded."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tracer import raw_files
from tracer.recorders import pyspy
from tracer.recorders.base import RecordContext
from tracer.recorders.pyspy import DEFAULT_RATE_HZ, PySpyRecorder

FAKE = """#!{python}
import json, signal, sys, time
args = sys.argv[1:]
if args == ["--version"]:
    print("py-spy 0.4.3"); sys.exit(0)
out = args[args.index("--output") + 1]
with open(sys.argv[0] + ".args", "w") as f:
    json.dump(args, f)
stop = []
signal.signal(signal.SIGINT, (lambda *a: stop.append(1)) if {obeys} else signal.SIG_IGN)
print("py-spy> Sampling process 100 times a second. Press Control-C to exit.", flush=True)
while not stop:
    time.sleep(0.01)
events = [
    {{"ph": "B", "ts": 10, "pid": 5, "tid": 1, "name": "thread (5): MainThread",
      "args": {{"filename": "", "line": 0}}}},
    {{"ph": "B", "ts": 10, "pid": 5, "tid": 1, "name": "f",
      "args": {{"filename": "/a.py", "line": 3}}}},
    {{"ph": "E", "ts": 90, "pid": 5, "tid": 1, "name": "f",
      "args": {{"filename": "/a.py", "line": 3}}}},
]
with open(out, "w") as f:
    json.dump(events, f)
print(f"py-spy> Wrote chrome trace to '{{out}}'. Samples: 12 Errors: 1", flush=True)
"""


def _recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obeys: bool = True) -> tuple[
        PySpyRecorder, RecordContext, Path]:
    exe = tmp_path / "py-spy"
    exe.write_text(FAKE.format(python=sys.executable, obeys=obeys))
    exe.chmod(0o755)
    monkeypatch.setattr(pyspy, "find_pyspy", lambda: str(exe))
    monkeypatch.setattr(pyspy, "ptrace_scope", lambda: 0)
    raw = tmp_path / "raw"
    raw.mkdir()
    ctx = RecordContext(raw_dir=raw, python=sys.executable, pid=os.getpid())
    recorder = PySpyRecorder()
    recorder.check(ctx)
    return recorder, ctx, exe


def test_one_record_process_stopped_by_sigint_writes_the_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, ctx, exe = _recorder(tmp_path, monkeypatch)
    recorder.start(ctx)
    args = json.loads(Path(str(exe) + ".args").read_text())
    assert args[:1] == ["record"]
    for flag in ("--idle", "--nonblocking", "--threads", "--subprocesses"):
        assert flag in args
    assert args[args.index("--rate") + 1] == f"{DEFAULT_RATE_HZ:g}" == "100"
    assert args[args.index("--pid") + 1] == str(os.getpid())
    recorder.stop()
    recorder.stop()  # idempotent
    lines = [json.loads(line) for line in (ctx.raw_dir / raw_files.PYSPY).read_text().splitlines()]
    header, records = lines[0], lines[1:]
    assert header["threads"] == [] and "clock" in header["header"]
    offset = header["header"]["clock"]["offset_ns"]
    assert [(r["t0"] - offset, r["threads"][0]["frames"]) for r in records] == [
        (10_000, ["f (a.py:3)"]), (90_000, [])]
    source = recorder.describe()
    assert source.used and source.rate_hz == 100 and source.samples == 12
    assert any("failed to read the stacks 1 times" in note for note in source.notes)
    assert any("own CPU time" in note for note in source.notes)
    assert any("clock:" in note for note in source.notes)


def test_a_py_spy_that_ignores_sigint_is_killed(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    recorder, ctx, _ = _recorder(tmp_path, monkeypatch, obeys=False)
    monkeypatch.setattr(pyspy, "STOP_TIMEOUT_S", 0.3)
    recorder.start(ctx)
    began = time.monotonic()
    recorder.stop()
    assert time.monotonic() - began < 5
    source = recorder.describe()
    assert not source.used
    assert "killed" in source.reason


def test_the_rate_is_a_constructor_argument() -> None:
    assert PySpyRecorder(rate_hz=250.0).progress() == ""  # not started: nothing to say
    assert PySpyRecorder(rate_hz=250.0)._rate_hz == 250.0
