"""Recorders that cannot run say why, in words a user can act on; the run goes on without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracer.errors import RecorderUnavailable
from tracer.recorders import pyspy
from tracer.recorders.base import RecordContext
from tracer.recorders.pyspy import PySpyRecorder
from tracer.recorders.sched import SchedSampler


def _ctx(tmp_path: Path) -> RecordContext:
    return RecordContext(raw_dir=tmp_path, python="python3")


def test_missing_pyspy_says_how_to_install_it(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyspy, "find_pyspy", lambda: None)
    with pytest.raises(RecorderUnavailable, match="pip install py-spy"):
        PySpyRecorder().check(_ctx(tmp_path))


def test_restricted_ptrace_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyspy, "find_pyspy", lambda: "/usr/bin/py-spy")
    monkeypatch.setattr(pyspy, "ptrace_scope", lambda: 3)
    monkeypatch.setattr(pyspy.os, "geteuid", lambda: 1000)
    with pytest.raises(RecorderUnavailable, match="ptrace_scope=3"):
        PySpyRecorder().check(_ctx(tmp_path))


def test_os_sampler_needs_linux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracer.recorders.sched.sys.platform", "darwin")
    with pytest.raises(RecorderUnavailable, match="needs Linux"):
        SchedSampler().check(_ctx(tmp_path))


def test_unavailable_recorders_are_reported_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session records without a recorder whose check fails, and says why in run.json."""
    from tracer.runfolder import RunFolder
    from tracer.session import RecordOptions, record
    from tracer.target import resolve

    monkeypatch.setattr(pyspy, "find_pyspy", lambda: None)
    folder = RunFolder.create(tmp_path / "run", "x")
    result = record(resolve("gil_io", ["--threads", "1", "--seconds", "0.05"]), folder,
                    RecordOptions(viztracer=False, perf=False, gil_sampler=False))
    assert result.exit_code == 0
    assert result.sources["py-spy"].used is False
    assert "pip install py-spy" in result.sources["py-spy"].reason
    assert result.sources["sched"].used is True
