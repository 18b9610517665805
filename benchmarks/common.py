"""Shared by the benchmarks: run a scenario traced or untraced and read back how long the part
it measures took (its phase markers), so every ratio compares like with like."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tracer import raw_files

REPO = Path(__file__).resolve().parents[1]


def phase_seconds(records: list[dict[str, Any]]) -> float:
    """Total duration of the top-level phases a run left."""
    starts: dict[str, int] = {}
    total = 0
    for record in records:
        if record.get("kind") == "phase_start":
            starts[record["name"]] = int(record["t_ns"])
        elif record.get("kind") == "phase_end" and record["name"] in starts:
            total += int(record["t_ns"]) - starts.pop(record["name"])
    return total / 1e9


def read_markers(path: Path) -> list[dict[str, Any]]:
    """The marker records a run left (none if it left no file)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def script_phase_seconds(script: Path, args: list[str], python: str = sys.executable) -> float:
    """A script run plainly; its markers still go to a file (they cost one write)."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = Path(tmp) / raw_files.MARKERS
        env = {**os.environ, "THREADSCOPE_MARKERS": str(sink), "PYTHONPATH": str(REPO)}
        subprocess.run([python, str(script), *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, cwd=REPO)
        return phase_seconds(read_markers(sink))


def run_untraced(scenario: str, args: list[str], python: str = sys.executable) -> float:
    """The scenario as a plain script: its phase time."""
    return script_phase_seconds(REPO / "scenarios" / f"{scenario}.py", args, python)


def run_traced(scenario: str, args: list[str], flags: list[str], keep: Path | None = None,
               python: str = sys.executable, env: dict[str, str] | None = None,
               ) -> tuple[float, dict[str, Any]]:
    """The scenario under ``tracer run FLAGS`` (with extra environment ``env``, which the target
    inherits); returns its phase time and its model."""
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "tracer", "run", "--quiet", "--force", "--out",
                        str(out), "--python", python, *flags, scenario, "--", *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=REPO, env={**os.environ, **(env or {})})
        raw = read_markers(out / "raw" / raw_files.MARKERS)
        model = json.loads((out / "model.json").read_text())
        return phase_seconds(raw), model


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
