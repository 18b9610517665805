"""A free-threaded build (Py_GIL_DISABLED) has no GIL: the GIL recorders are unavailable at check
time with the reason, and doctor says so. No such interpreter is installable here, so the probe's
answer is stubbed; the real probe is run on this (GIL) interpreter."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracer import gil_locate
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import FREE_THREADED, check_has_gil, free_threaded_reason, probe_gil_build
from tracer.readiness import HostFacts, InterpreterFacts, TracefsFacts, assess
from tracer.recorders.base import RecordContext
from tracer.recorders.gil_sampler import GilSampler
from tracer.recorders.perf_gil import PerfGilRecorder

NO_GIL = {"gil_disabled_build": True, "gil_enabled": False}
GIL_BACK_ON = {"gil_disabled_build": True, "gil_enabled": True}
WITH_GIL = {"gil_disabled_build": False, "gil_enabled": True}


@pytest.mark.parametrize(("build", "reason"), [
    (WITH_GIL, ""),
    ({}, ""),  # the probe did not answer: the recorders' own checks decide
    (NO_GIL, FREE_THREADED),
])
def test_the_reason_follows_the_build(build: dict[str, Any], reason: str) -> None:
    assert free_threaded_reason(build) == reason


def test_a_free_threaded_build_with_the_gil_turned_back_on_is_still_unmeasured() -> None:
    reason = free_threaded_reason(GIL_BACK_ON)
    assert reason.startswith(FREE_THREADED) and "PYTHON_GIL=1" in reason


def test_this_interpreter_has_a_gil() -> None:
    assert probe_gil_build(sys.executable) == WITH_GIL
    check_has_gil(sys.executable)  # does not raise


def test_an_interpreter_that_does_not_answer_is_not_called_free_threaded(tmp_path: Path) -> None:
    assert probe_gil_build(str(tmp_path / "no-python")) == {}


def test_check_raises_with_the_reason_from_a_stubbed_probe() -> None:
    with pytest.raises(RecorderUnavailable, match=f"^{FREE_THREADED}$"):
        check_has_gil("/opt/python3.13t", probe=lambda python: NO_GIL)


@pytest.fixture
def free_threaded_target(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    python = "/opt/python3.13t/bin/python3.13t"
    monkeypatch.setitem(gil_locate._build_answers, python, NO_GIL)
    yield python


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the checks start with Linux")
@pytest.mark.parametrize("recorder", [GilSampler, PerfGilRecorder], ids=["gil_sampler", "perf"])
def test_the_gil_recorders_are_unavailable_at_check_time(free_threaded_target: str,
                                                         tmp_path: Path, recorder: Any) -> None:
    ctx = RecordContext(raw_dir=tmp_path, python=free_threaded_target)
    with pytest.raises(RecorderUnavailable, match=FREE_THREADED):
        recorder().check(ctx)


def test_doctor_says_gil_figures_do_not_apply() -> None:
    facts = HostFacts(
        platform="linux", machine="x86_64", is_root=True, perf="/usr/bin/perf", perf_paranoid=2,
        tracefs=TracefsFacts(path=Path("/sys/kernel/tracing"), futex_tracepoint=True),
        ptrace_scope=1, pyspy="/usr/bin/py-spy", schedstat="", process_vm_readv=True,
        interpreter=InterpreterFacts(python="/opt/python3.13t", version="3.13.0",
                                     libc="glibc 2.36", viztracer="1.1.1",
                                     gil={"error": "free-threaded build: there is no GIL to "
                                                   "measure"}, gil_build=NO_GIL))
    verdicts = {v.recorder: v for v in assess(facts)}
    for name in ("perf: exact GIL waits", "GIL sampler"):
        (problem,) = verdicts[name].problems
        assert FREE_THREADED in problem.why and "do not apply" in problem.fix
    assert verdicts["OS sampler"].available and verdicts["py-spy"].available
    with_gil = dataclasses.replace(facts, interpreter=dataclasses.replace(
        facts.interpreter, gil={"gil_addr": 0x7F0000001000}, gil_build=WITH_GIL))
    assert all(v.available for v in assess(with_gil))
