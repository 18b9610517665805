"""A real scenario run: trace.json starts at the user's code (no bootstrap, runpy or exec frames
above it), and its stacks export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.perfetto import function_tid
from tests.e2e.helpers import tracer

WRAPPERS = ("tracer/bootstrap.py", "tracer/inprocess.py", "runpy")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "gil_cpu"
    result = tracer("run", "--out", str(out), "--quiet", "gil_cpu")
    assert result.returncode == 0, result.stderr
    return out


def test_trace_json_names_no_bootstrap_or_runpy_frame(run_dir: Path) -> None:
    events = json.loads((run_dir / "trace.json").read_text())["traceEvents"]
    named = [e["name"] for e in events if isinstance(e.get("name"), str)]
    assert not [name for name in named if any(w in name for w in WRAPPERS)]
    model = json.loads((run_dir / "model.json").read_text())
    main = next(t for t in model["threads"] if t["is_main"])
    slices = [e for e in events if e.get("ph") == "X" and e.get("tid") == function_tid(main["tid"])
              and e.get("pid") == main["pid"]]
    outermost = max(slices, key=lambda e: e["dur"])
    assert outermost["name"].startswith("<module> (")  # the user's module, not exec
    assert not any(e["name"] == "builtins.exec" and e["dur"] >= outermost["dur"] for e in slices)


def test_a_scenario_run_exports(run_dir: Path) -> None:
    model = json.loads((run_dir / "model.json").read_text())
    assert model["where"]["source"] == "viztracer" and model["where"]["rows"]
    result = subprocess.run([sys.executable, "-m", "tracer", "export", str(run_dir), "--format",
                             "collapsed"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert not [line for line in lines if any(w in line for w in WRAPPERS)]
