"""`python -m tracer export` as a user runs it: output on stdout or to a file, and one clear line
with a non-zero exit for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_export import build_where_model
from tracer.runfolder import RunFolder


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", "export", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def run_folder(tmp_path: Path, rows: bool = True) -> Path:
    folder = RunFolder.create(tmp_path / "run", "export")
    folder.raw_file("run.json").write_text("{}")  # RunFolder.existing wants the run record
    build_where_model(None if rows else []).save(folder.model_json)
    return folder.root


def test_collapsed_goes_to_stdout(tmp_path: Path) -> None:
    result = export(str(run_folder(tmp_path)), "--format", "collapsed", "--thread", "worker")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "worker (tid 101);Worker.crunch (app.py:7) 1125000" in lines
    assert all(line.startswith("worker (tid") for line in lines)


def test_speedscope_goes_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "profile.speedscope.json"
    result = export(str(run_folder(tmp_path)), "--format", "speedscope", "--state", "gil_wait",
                    "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    document = json.loads(out.read_text())
    assert len(document["profiles"]) == 3
    assert not list(tmp_path.glob(".profile*"))  # no temporary file left behind


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--state", "sleeping"], 2, "unknown state 'sleeping'"),
    (["--thread", "nobody"], 2, "threads: MainThread, worker"),
    (["--state", "lock_wait"], 1, "no stacks recorded in state 'lock_wait'"),
])
def test_bad_choices_get_one_line(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    result = export(str(run_folder(tmp_path)), "--format", "collapsed", *args)
    assert result.returncode == code
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_run_without_stacks_says_so(tmp_path: Path) -> None:
    result = export(str(run_folder(tmp_path, rows=False)), "--format", "speedscope")
    assert result.returncode == 1
    assert "recorded no stacks" in result.stderr and "Traceback" not in result.stderr


def test_not_a_run_folder_and_missing_or_old_model(tmp_path: Path) -> None:
    result = export(str(tmp_path), "--format", "collapsed")
    assert result.returncode == 2 and "is not a run folder" in result.stderr
    root = run_folder(tmp_path)
    model = root / "model.json"
    old = json.loads(model.read_text())
    old["schema_version"] = 3
    model.write_text(json.dumps(old))
    result = export(str(root), "--format", "collapsed")
    assert result.returncode == 2 and "python -m tracer report RUN_DIR" in result.stderr
    model.unlink()
    result = export(str(root), "--format", "collapsed")
    assert result.returncode == 2 and "model.json is missing" in result.stderr
    assert "python -m tracer report" in result.stderr
    for stderr in (result.stderr,):
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
