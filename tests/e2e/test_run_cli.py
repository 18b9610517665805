"""The CLI end to end, as a user runs it: scenarios, run folders, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer


def _phase(model: dict, name: str) -> tuple[float, float]:
    (found,) = [m for m in model["markers"] if m["kind"] == "phase" and m["name"] == name]
    return found["start"], found["end"]


def _mean_parallelism(model: dict, start: float, end: float) -> float:
    series = model["parallelism"]
    total = 0.0
    for t, value in zip(series["t"], series["values"], strict=False):
        overlap = min(end, t + series["bin_s"]) - max(start, t)
        if overlap > 0:
            total += value * overlap
    return total / (end - start)


def test_gil_cpu_threads_share_one_core(tmp_path: Path) -> None:
    out = tmp_path / "cpu"
    result = tracer("run", "--out", str(out), "gil_cpu", "--", "--threads", "4",
                    "--work", "1500000")
    assert result.returncode == 0, result.stderr
    for name in ("report.html", "trace.json", "model.json", "raw/run.json", "raw/sched.jsonl"):
        assert (out / name).is_file(), name
    model = load_model(out)
    assert model["schema_version"] >= 1
    assert model["target"]["status"] == "ok"
    workers = thread_named(model, "cpu-")
    assert len(workers) == 4
    assert all(w["cpu_s"] > 0 and w["daemon"] is False for w in workers)
    start, end = _phase(model, "threaded")
    # Four CPU-bound threads on any number of cores: the GIL keeps them near one core's worth.
    assert _mean_parallelism(model, start, end) < 1.3
    assert model["metrics"]["cores"] >= 1
    # a bundled scenario keeps VizTracer by default, and the report uses its calls
    assert model["sources"]["viztracer"]["used"] is True
    assert (out / "raw" / "viztracer.json").is_file()
    assert model["metrics"]["viztracer"]["cost"]["calls"] > 0
    assert "parallelism" in result.stderr.lower()
    assert str(out / "report.html") in result.stderr.replace("\n", "")


def test_gil_io_overlaps_sleeps(tmp_path: Path) -> None:
    out = tmp_path / "io"
    result = tracer("run", "--out", str(out), "--no-viztracer", "gil_io", "--",
                    "--threads", "4", "--seconds", "0.5")
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    start, end = _phase(model, "threaded")
    assert end - start < 1.2  # four 0.5 s sleeps: far from the 2 s they would take in a row
    assert _mean_parallelism(model, start, end) < 0.2
    for worker in thread_named(model, "io-"):
        waiting = worker["state_s"].get("off_cpu", 0) + worker["state_s"].get("blocked", 0)
        assert waiting > 0.3
    assert model["sources"]["viztracer"]["used"] is False
    assert model["sources"]["viztracer"]["reason"] == "turned off on the command line"


@pytest.mark.parametrize("how", ["script", "module"])
def test_own_code_runs_without_viztracer_unless_asked(how: str, tmp_path: Path) -> None:
    """VizTracer slows Python code: the user's program is measured without it by default, and
    the report says why it is missing (a choice, not a failure)."""
    out = tmp_path / how
    target = [str(PROGRAMS / "calls_a_lot.py")] if how == "script" else ["-m", "calls_a_lot"]
    result = tracer("run", "--out", str(out), "--no-perf", *target, cwd=PROGRAMS)
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    source = model["sources"]["viztracer"]
    assert source["used"] is False
    assert "off by default" in source["reason"] and "--viztracer" in source["reason"]
    assert not (out / "raw" / "viztracer.json").exists()
    assert not any("viztracer" in warning.lower() for warning in model["warnings"])
    assert model["metrics"]["viztracer"] is None
    events = json.loads((out / "trace.json").read_text())["traceEvents"]
    assert not [e for e in events if e.get("ph") == "X" and "tiny" in str(e.get("name"))]


def test_own_script_with_viztracer_says_what_it_cost(tmp_path: Path) -> None:
    out = tmp_path / "asked"
    result = tracer("run", "--out", str(out), "--no-perf", "--viztracer",
                    str(PROGRAMS / "calls_a_lot.py"))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    assert model["sources"]["viztracer"]["used"] is True
    figures = model["metrics"]["viztracer"]
    cost = figures["cost"]
    # 30,000 calls of tiny() in the program itself, every one recorded (no overflow)
    assert cost["calls"] >= 30_000 and figures["overflow"] is False
    assert cost["call_ns"] > 0 and cost["added_s"] > 0
    assert cost["slowdown_low"] <= cost["slowdown"]
    note = model["sources"]["viztracer"]["notes"][-1]
    assert "calls at about" in note and "measured at start-up" in note
    tiny = [e for e in json.loads((out / "trace.json").read_text())["traceEvents"]
            if e.get("ph") == "X" and str(e.get("name", "")).startswith("tiny")]
    assert len(tiny) == 30_000


def test_report_rebuilds_from_raw(tmp_path: Path) -> None:
    out = tmp_path / "io"
    assert tracer("run", "--out", str(out), "--no-viztracer", "--no-perf", "gil_io", "--",
                  "--threads", "2", "--seconds", "0.1").returncode == 0
    before = load_model(out)
    (out / "report.html").unlink()
    (out / "model.json").unlink()
    result = tracer("report", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").is_file()
    assert load_model(out)["threads"] == before["threads"]


def test_out_folder_is_never_overwritten_silently(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = tracer("run", "--out", str(out), "--no-perf", "gil_io", "--", "--seconds", "0.05")
    assert result.returncode == 2
    assert "--force" in result.stderr and "Traceback" not in result.stderr
    assert (out / "keep.txt").read_text() == "mine"
    forced = tracer("run", "--out", str(out), "--force", "--no-perf", "--no-viztracer",
                    "gil_io", "--", "--seconds", "0.05", "--threads", "1")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists()


def test_list_shows_scenarios() -> None:
    result = tracer("list")
    assert result.returncode == 0
    assert "gil_cpu" in result.stdout and "gil_io" in result.stdout


@pytest.mark.parametrize("name", ["gil_cpx", "missing_script.py"])
def test_unknown_target_is_one_line_error(name: str, tmp_path: Path) -> None:
    result = tracer("run", name, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if name == "gil_cpx":
        assert "gil_cpu" in result.stderr
    assert not (tmp_path / "threadscope_runs").exists()


def test_failing_target_keeps_its_report(tmp_path: Path) -> None:
    out = tmp_path / "fails"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "raises.py"))
    assert result.returncode == 1
    assert "RuntimeError: boom from the target" in result.stderr
    assert "Traceback" in result.stderr
    model = load_model(out)
    assert model["target"]["status"] == "failed"
    assert "boom" in (model["target"]["error"] or "")
    assert (out / "report.html").is_file()
    assert thread_named(model, "helper")


@pytest.mark.parametrize(("program", "code"), [("exits3.py", 3), ("os_exit4.py", 4)])
def test_exit_code_is_preserved(program: str, code: int, tmp_path: Path) -> None:
    out = tmp_path / "exit"
    result = tracer("run", "--out", str(out), "--no-perf", "--viztracer", str(PROGRAMS / program))
    assert result.returncode == code, result.stderr
    model = load_model(out)
    assert model["target"]["exit_code"] == code
    # os._exit skips finally blocks; the bootstrap still saved the function timeline.
    assert model["sources"]["viztracer"]["used"] is True


def test_timeout_stops_a_hung_target_with_a_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "hang"
    result = tracer("run", "--out", str(out), "--no-perf", "--timeout", "1",
                    str(PROGRAMS / "hangs.py"))
    assert result.returncode != 0
    # the stop is ours, not the program's failure: one line where it was, not a traceback
    assert "Traceback" not in result.stderr and "--timeout reached" in result.stderr
    model = load_model(out)
    assert model["target"]["status"] == "timeout"
    assert model["partial"] is True
    (stuck,) = thread_named(model, "stuck-forever")
    assert stuck["end_reason"] == "running_at_stop"
    assert any("stuck" in frame for frame in stuck["last_stack"])
    assert json.loads((out / "trace.json").read_text())["traceEvents"]
