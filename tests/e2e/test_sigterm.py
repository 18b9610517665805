"""SIGTERM to the tracer alone (``timeout``, a service manager) stops a run as Ctrl-C does: the
target is stopped, the recorders too, and the report is written, marked partial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.helpers import PROGRAMS, REPO, load_model

DEADLINE_S = 120.0  # a loaded 2-core box: interpreter start, VizTracer import, perf start-up


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tracer", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_thread(raw: Path, name: str, proc: subprocess.Popen[str]) -> None:
    """Until the target has started its thread ``name``: it is past its starting line, and
    every recorder is attached."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        log = raw / "threads.jsonl"
        if log.is_file() and f'"name":"{name}"' in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


def _perf_records_writing_into(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"perf", b"record"] and str(folder).encode() in b" ".join(argv):
                found.append(int(entry.name))
    return found


def _assert_partial_report(out: Path) -> None:
    model = load_model(out)
    assert model["target"]["status"] == "interrupted"
    assert model["partial"] is True
    assert (out / "report.html").is_file()
    assert "interrupted" in (out / "report.html").read_text()
    assert json.loads((out / "raw" / "run.json").read_text())["status"] == "interrupted"


def test_sigterm_stops_the_run_and_writes_a_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "terminated"
    proc = _start("run", "--out", str(out), str(PROGRAMS / "hangs.py"))
    try:
        _wait_for_thread(out / "raw", "stuck-forever", proc)
        proc.send_signal(signal.SIGTERM)  # to the tracer only, not its process group
        _, stderr = proc.communicate(timeout=DEADLINE_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM: stopping the target" in stderr
    assert 'File "' not in stderr.split("KeyboardInterrupt: signal 15", 1)[-1]  # no traceback
    _assert_partial_report(out)
    (stuck,) = [t for t in load_model(out)["threads"] if t["name"] == "stuck-forever"]
    assert stuck["end_reason"] == "running_at_stop"
    assert _perf_records_writing_into(out) == []


def test_a_second_sigterm_still_leaves_every_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "twice"
    proc = _start("run", "--out", str(out), "--no-perf", str(PROGRAMS / "hangs.py"))
    try:
        _wait_for_thread(out / "raw", "stuck-forever", proc)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=DEADLINE_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    _assert_partial_report(out)
    for name in ("threads.jsonl", "target.json", "run.json"):
        assert (out / "raw" / name).stat().st_size > 0
    json.loads((out / "raw" / "target.json").read_text())  # the target's save was not cut short


def test_sigterm_ends_run_all_after_the_current_scenario(tmp_path: Path) -> None:
    out = tmp_path / "tour"
    proc = _start("run", "--out", str(out), "--no-perf", "--no-viztracer", "all")
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not list(out.glob("*/raw/threads.jsonl")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=DEADLINE_S)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM after" in stderr
    assert (out / "index.html").is_file()
    recorded = [folder for folder in out.iterdir() if folder.is_dir()]
    assert 1 <= len(recorded) <= 2  # the one it hit (and the next, if it hit between them)
    assert 'File "' not in stderr.split("KeyboardInterrupt: signal 15")[-1]


def test_sigterm_ends_attach_early_like_ctrl_c(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    out = tmp_path / "attached"
    proc = _start("attach", str(target.pid), "--duration", "200", "--out", str(out), "--no-perf")
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (out / "raw" / "sched.jsonl").is_file() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=DEADLINE_S)
        stopped_after = time.monotonic() - began
    finally:
        proc.kill()
        proc.wait()
        target.kill()
        target.wait()
    assert proc.returncode == 0, stderr  # stopping early is what Ctrl-C is for in attach
    assert stopped_after < 200  # it did not record for the whole --duration
    assert (out / "report.html").is_file()
    assert json.loads((out / "raw" / "run.json").read_text())["pid"] == target.pid
    assert os.path.getsize(out / "model.json") > 0
