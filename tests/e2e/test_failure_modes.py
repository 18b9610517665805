"""What must never go wrong: every bad input or bad ending still leaves what was recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.helpers import PROGRAMS, REPO, load_model, thread_named, tracer


def test_syntax_error_is_shown_as_python_shows_it(tmp_path: Path) -> None:
    out = tmp_path / "syntax"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "syntax_error.py"))
    plain = subprocess.run([sys.executable, str(PROGRAMS / "syntax_error.py")],
                           capture_output=True, text=True, check=False)
    assert result.returncode == plain.returncode == 1
    assert "SyntaxError" in result.stderr
    model = load_model(out)
    assert model["target"]["status"] == "failed"
    assert (out / "report.html").is_file()


def test_exception_in_a_thread_is_shown_and_exit_code_kept(tmp_path: Path) -> None:
    out = tmp_path / "thread"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "thread_raises.py"))
    assert result.returncode == 0  # as with plain python: a thread's exception does not exit
    assert "ValueError: raised in a thread" in result.stderr
    assert "main carries on" in result.stdout
    assert thread_named(load_model(out), "doomed")


def test_killed_by_a_signal_keeps_what_was_recorded(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "killed.py"))
    assert result.returncode == 128 + signal.SIGKILL
    model = load_model(out)
    assert model["target"]["status"] == "killed"
    assert model["partial"] is True
    assert model["wall_s"] > 0.2
    assert thread_named(model, "sleeper")
    assert (out / "report.html").is_file()


def test_ctrl_c_interrupts_the_target_and_writes_a_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracer", "run", "--out", str(out), "--no-perf",
         str(PROGRAMS / "long_sleep.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "KeyboardInterrupt" in stderr
    model = load_model(out)
    assert model["target"]["status"] == "interrupted"
    assert model["partial"] is True
    (napping,) = thread_named(model, "napping")
    assert napping["end_reason"] == "running_at_stop"


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    out = tmp_path / "hostile"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "hostile_names.py"))
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text()
    assert "<img src=x onerror=alert(1)>" not in html
    assert "<script>alert(2)</script>" not in html
    assert thread_named(load_model(out), "<img")


def test_five_hundred_threads(tmp_path: Path) -> None:
    out = tmp_path / "many"
    result = tracer("run", "--out", str(out), "--no-perf", "--no-viztracer",
                    str(PROGRAMS / "many_threads.py"), "--", "500")
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert len(thread_named(model, "w")) == 500
    assert (out / "report.html").stat().st_size < 10_000_000


def test_viztracer_overflow_is_reported_not_hidden(tmp_path: Path) -> None:
    out = tmp_path / "overflow"
    result = tracer("run", "--out", str(out), "--no-perf", "--viztracer", "--tracer-entries",
                    "5000", str(PROGRAMS / "calls_a_lot.py"))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert "overflowed" in model["warnings"][0]  # the first thing the warnings say
    assert model["metrics"]["viztracer"]["overflow"] is True
    assert 0 < model["metrics"]["viztracer"]["dropped_share"] < 1
    # the summary says it up front, before the run's numbers
    summary = " ".join(result.stderr.split())
    assert "buffer overflowed" in summary
    assert summary.index("buffer overflowed") < summary.index("wall ")
    assert "buffer full" in " ".join(model["sources"]["viztracer"]["notes"])
    # the calls were counted from the part kept, then scaled up to the whole run
    assert model["metrics"]["viztracer"]["cost"]["calls_extrapolated"] is True
    assert model["metrics"]["viztracer"]["cost"]["calls"] > 5000


def test_corrupt_raw_file_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "corrupt"
    assert tracer("run", "--out", str(out), "--no-perf", "--no-viztracer", "gil_io", "--",
                  "--threads", "1", "--seconds", "0.05").returncode == 0
    (out / "raw" / "sched.jsonl").write_text("{not json\n{}\n")
    result = tracer("report", str(out))
    assert result.returncode == 2
    assert "sched.jsonl" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (out / "raw" / "run.json").write_text("[1, 2")
    result = tracer("report", str(out))
    assert result.returncode == 2 and "run.json" in result.stderr


def test_report_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = tracer("report", str(tmp_path))
    assert result.returncode == 2 and "not a run folder" in result.stderr
    assert json.dumps(result.stderr)  # one line, no traceback
    assert "Traceback" not in result.stderr
