"""Clock map, raw-file reading, run folders, target resolution, markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracer.clock import LinearClockMap
from tracer.errors import CorruptRecording, RunFolderExists, TargetNotFound
from tracer.model.rawfiles import read_json, read_jsonl
from tracer.runfolder import RunFolder, atomic_write_text
from tracer.target import resolve


def test_clock_map_offset_and_drift() -> None:
    clock = LinearClockMap.from_pairs([(1000.0, 5_000_000), (2000.0, 6_000_000)], unit_ns=1000)
    assert clock.to_ns(1500.0) == 5_500_000
    skewed = LinearClockMap.from_pairs([(0.0, 0), (1000.0, 1_000_500)], unit_ns=1000)
    assert skewed.to_ns(1000.0) == 1_000_500  # 0.05% drift is corrected
    wild = LinearClockMap.from_pairs([(0.0, 0), (1000.0, 2_000_000)], unit_ns=1000)
    assert wild.scale == 1000  # an implausible rate is ignored, the nominal one kept


def test_jsonl_tolerates_only_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert [r["a"] for r in read_jsonl(path)] == [1, 2]
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(CorruptRecording, match=r"x\.jsonl: line 2"):
        list(read_jsonl(path))
    assert list(read_jsonl(tmp_path / "missing.jsonl")) == []


def test_json_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "target.json"
    path.write_text("{truncated")
    with pytest.raises(CorruptRecording, match=r"target\.json"):
        read_json(path)
    assert read_json(tmp_path / "nope.json") is None


def test_run_folder_refuses_non_empty_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "run"
    folder = RunFolder.create(out, "x")
    assert folder.raw.is_dir()
    atomic_write_text(folder.raw / "run.json", "{}")
    with pytest.raises(RunFolderExists):
        RunFolder.create(out, "x")
    again = RunFolder.create(out, "x", force=True)
    assert not (again.raw / "run.json").exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "report.html"
    atomic_write_text(target, "<html></html>")
    assert target.read_text() == "<html></html>"
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)


def test_resolve_scenario_script_and_errors(tmp_path: Path) -> None:
    spec = resolve("gil_cpu", ["--threads", "2"])
    assert spec.kind == "scenario" and spec.run == "scenarios.gil_cpu"
    assert spec.argv[1:] == ["--threads", "2"]
    script = tmp_path / "mine.py"
    script.write_text("print(1)\n")
    spec = resolve(str(script), ["a"])
    assert spec.kind == "script" and spec.argv == [str(script), "a"]
    with pytest.raises(TargetNotFound, match="gil_cpu"):
        resolve("gil_cpx", [])
    with pytest.raises(TargetNotFound, match="no such script"):
        resolve(str(tmp_path / "absent.py"), [])
    with pytest.raises(TargetNotFound, match="no module"):
        resolve("surely_not_a_module_xyz", [], as_module=True)


def test_markers_are_silent_without_the_tracer_and_recorded_with_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import tracer\nwith tracer.phase('p', n=1):\n    tracer.mark('m', obj=object())\n"
            "print('ok')\n")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert plain.stdout.strip() == "ok"
    sink = tmp_path / "markers.jsonl"
    env = {**__import__("os").environ, "THREADSCOPE_MARKERS": str(sink)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    records = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["phase_start", "mark", "phase_end"]
    assert records[0]["fields"] == {"n": 1}
    assert records[1]["fields"]["obj"].startswith("<object")
