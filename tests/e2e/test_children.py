"""Child processes, checked against what each child measured of itself: CPU per process that
adds up to the kernel's own count, each thread once and under its own process, no thread of ours
in a child, GIL figures only for the children a GIL recorder really followed, and a thread phase
and a process phase measured side by side."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import PROGRAMS, load_model, tracer

PROGRAM = PROGRAMS / "children_phases.py"
ON_CPU_STATES = ("running", "native", "on_cpu")
# /proc counts CPU in clock ticks (10 ms) and a child runs a little past its own reading
# (q.put, exit): a child's figure must be within this of what it measured of itself.
CPU_TOLERANCE_S = 0.04


def _record(tmp_path: Path, *args: str, flags: tuple[str, ...] = ()) -> tuple[dict[str, Any],
                                                                             dict[str, float]]:
    out, truth = tmp_path / "run", tmp_path / "truth.json"
    result = tracer("run", "--quiet", *flags, "--out", str(out), str(PROGRAM), str(truth), *args)
    assert result.returncode == 0, result.stderr
    return load_model(out), json.loads(truth.read_text())


def _children(model: dict[str, Any], truth: dict[str, float]) -> dict[int, dict[str, Any]]:
    by_pid = {p["pid"]: p for p in model["processes"]}
    missing = [pid for pid in truth if int(pid) not in by_pid]
    assert not missing, f"children the OS sampler did not list: {missing}"
    return {int(pid): by_pid[int(pid)] for pid in truth}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_each_child_uses_the_cpu_it_measured_of_itself(method: str, tmp_path: Path) -> None:
    model, truth = _record(tmp_path, method, "4", "2000000")
    children = _children(model, truth)
    for pid, process in children.items():
        assert process["cpu_s"] == pytest.approx(truth[str(pid)], abs=CPU_TOLERANCE_S), pid
    assert model["processes"][0]["pid"] not in children  # the target comes first
    keys = [(t["pid"], t["tid"]) for t in model["threads"]]
    assert len(keys) == len(set(keys)), "a thread appears twice"
    for thread in model["threads"]:
        assert not thread["name"].startswith("threadscope"), thread["name"]
    feeders = [t for t in model["threads"] if t["name"].startswith("QueueFeederThread")]
    assert feeders and all(t["pid"] in children for t in feeders if "[pid" in t["name"])
    perf = model["sources"].get("perf", {})
    exact = perf.get("used") and not any("stopped" in w for w in model["warnings"])
    for process in children.values():
        if method == "fork" and exact:
            assert process["gil"] is not None and process["gil"]["method"] == "exact"
        if method == "spawn":  # its GIL is at another address: nothing recorded it
            assert process["gil"] is None


def test_ten_children_on_few_cores_are_drawn_running_as_long_as_they_ran(
        tmp_path: Path) -> None:
    # Ten processes on two cores get about a fifth of a core each: they must not be drawn as
    # never running (a "half the sampling period" rule did that).
    model, truth = _record(tmp_path, "fork", "10", "1000000")
    children = _children(model, truth)
    for pid in children:
        threads = [t for t in model["threads"] if t["pid"] == pid]
        drawn = sum(t["state_s"].get(s, 0.0) for t in threads for s in ON_CPU_STATES)
        cpu = sum(t["cpu_s"] for t in threads)
        assert drawn == pytest.approx(cpu, abs=0.03 + 0.15 * cpu), pid


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a process phase needs two cores to differ")
def test_the_process_phase_is_measured_beside_the_thread_phase(tmp_path: Path) -> None:
    model, _ = _record(tmp_path, "fork", "4", "4000000")
    phases = {p["kind"]: p for p in model["phases"]}
    assert set(phases) == {"threads", "processes"}, model["phases"]
    threads, procs = phases["threads"], phases["processes"]
    assert threads["end_s"] <= procs["start_s"]
    assert threads["workers"] == 4 and procs["workers"] == 4
    # Four GIL-bound threads share one core's worth; four processes spread over the cores.
    assert threads["parallelism"] < 1.3
    assert procs["parallelism"] > threads["parallelism"] + 0.3
    html = (tmp_path / "run" / "report.html").read_text()
    assert "a thread phase and a process phase" in html
    assert 'id="process-table"' in html
