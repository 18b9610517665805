"""`tracer doctor` on faked machines: each missing piece is named with the command that fixes it,
and the exit code says whether everything can run."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from tracer import cli
from tracer.commands import doctor
from tracer.readiness import (
    HostFacts,
    InterpreterFacts,
    TracefsFacts,
    Verdict,
    assess,
    probe_interpreter,
)

GOOD_GIL = {"gil_addr": 0x7F0000001000, "mapping": "/usr/lib/libpython3.11.so.1.0"}
GOOD = HostFacts(
    platform="linux", machine="x86_64", is_root=True, perf="/usr/bin/perf", perf_paranoid=2,
    tracefs=TracefsFacts(path=Path("/sys/kernel/tracing"), futex_tracepoint=True),
    ptrace_scope=1, pyspy="/usr/bin/py-spy", schedstat="", process_vm_readv=True,
    interpreter=InterpreterFacts(python="/usr/bin/python3.11", version="3.11.7",
                                 libc="glibc 2.36", gil=GOOD_GIL, viztracer="1.1.1"),
)


def _with(**changes: Any) -> HostFacts:
    return dataclasses.replace(GOOD, **changes)


def _python(**changes: Any) -> InterpreterFacts:
    return dataclasses.replace(GOOD.interpreter, **changes)


def _verdict(facts: HostFacts, name: str) -> Verdict:
    (found,) = [v for v in assess(facts) if v.recorder.startswith(name)]
    return found


def _text(verdict: Verdict) -> str:
    return " | ".join([f"{p.why} -> {p.fix}" for p in verdict.problems] + verdict.notes)


def test_a_good_machine_runs_everything() -> None:
    verdicts = assess(GOOD)
    assert [v.recorder for v in verdicts] == [
        "perf: exact GIL waits", "GIL sampler", "OS sampler", "py-spy",
        "lock recorder: C core", "task recorder: C core", "VizTracer"]
    assert all(v.available for v in verdicts), [_text(v) for v in verdicts]
    assert "C library: glibc 2.36" in _verdict(GOOD, "perf").notes


def test_missing_perf_names_the_package() -> None:
    verdict = _verdict(_with(perf=None), "perf")
    assert not verdict.available
    assert [p.fix for p in verdict.problems] == ["apt install linux-perf"]


def test_not_root_with_paranoid_2_names_the_sysctl() -> None:
    verdict = _verdict(_with(is_root=False, perf_paranoid=2), "perf")
    assert not verdict.available
    (problem,) = verdict.problems
    assert "(it is 2)" in problem.why
    assert problem.fix.startswith("sudo sysctl kernel.perf_event_paranoid=-1")


def test_not_root_with_paranoid_minus_1_is_enough() -> None:
    assert _verdict(_with(is_root=False, perf_paranoid=-1), "perf").available


def test_unmounted_tracefs_as_root_is_mounted_for_each_run() -> None:
    seen = TracefsFacts(path=Path("/sys/kernel/tracing"), mountable=True, futex_tracepoint=True)
    verdict = _verdict(_with(tracefs=seen), "perf")
    assert verdict.available
    assert any("available, mounted automatically for each run" in n for n in verdict.notes)


def test_unmounted_tracefs_without_root_names_the_mount_command() -> None:
    facts = _with(is_root=False, perf_paranoid=-1,
                  tracefs=TracefsFacts(error="not mounted, and only root can mount it"))
    (problem,) = _verdict(facts, "perf").problems
    assert "only root can mount it" in problem.why
    assert problem.fix.startswith("sudo mount -t tracefs nodev /sys/kernel/tracing")


def test_a_kernel_without_the_futex_tracepoint_is_named() -> None:
    facts = _with(tracefs=TracefsFacts(path=Path("/sys/kernel/tracing"), futex_tracepoint=False))
    (problem,) = _verdict(facts, "perf").problems
    assert "syscalls:sys_enter_futex" in problem.why
    assert "CONFIG_FTRACE_SYSCALLS" in problem.fix


def test_a_gil_that_cannot_be_located_shows_the_probe_error() -> None:
    facts = _with(interpreter=_python(gil={"error": "this interpreter exports no _PyRuntime"}))
    for name in ("perf", "GIL sampler"):
        (problem,) = _verdict(facts, name).problems
        assert "exports no _PyRuntime" in problem.why


def test_a_libc_other_than_glibc_stops_perf_only() -> None:
    facts = _with(interpreter=_python(libc=None))
    (problem,) = _verdict(facts, "perf").problems
    assert "not glibc" in problem.why
    assert _verdict(facts, "GIL sampler").available


@pytest.mark.parametrize(("scope", "root", "available"), [
    (None, False, True), (0, False, True), (1, False, True), (2, False, False), (2, True, True),
    (3, True, False),
])
def test_ptrace_scope_decides_pyspy_and_the_gil_sampler(scope: int | None, root: bool,
                                                        available: bool) -> None:
    facts = _with(ptrace_scope=scope, is_root=root, perf_paranoid=-1)
    for name in ("py-spy", "GIL sampler"):
        verdict = _verdict(facts, name)
        assert verdict.available is available, _text(verdict)
    text = _text(_verdict(facts, "py-spy"))
    if scope == 2 and not root:
        assert "sudo sysctl kernel.yama.ptrace_scope=1" in text
    if scope == 3:
        assert "reboot" in text and "not even root" in text
    if scope == 1 and not root:
        assert "`tracer attach` to another program needs root" in text


def test_missing_pyspy_says_how_to_install_it() -> None:
    (problem,) = _verdict(_with(pyspy=None), "py-spy").problems
    assert problem.fix.endswith("-m pip install py-spy")


def test_missing_lock_core_says_how_to_rebuild() -> None:
    facts = _with(interpreter=_python(lock_core="the C core was not built"))
    (problem,) = _verdict(facts, "lock recorder").problems
    assert "pure-Python fallback" in problem.why
    assert "-m pip install -e ." in problem.fix and "C compiler" in problem.fix


def test_missing_task_core_says_how_to_rebuild() -> None:
    facts = _with(interpreter=_python(task_core="turned off by THREADSCOPE_PURE_TASKS=1"))
    (problem,) = _verdict(facts, "task recorder").problems
    assert "THREADSCOPE_PURE_TASKS" in problem.why and "pure-Python fallback" in problem.why
    assert "-m pip install -e ." in problem.fix
    assert not _verdict(facts, "lock recorder").problems


def test_missing_viztracer_names_the_interpreter() -> None:
    facts = _with(interpreter=_python(viztracer=None, viztracer_error="ModuleNotFoundError"))
    (problem,) = _verdict(facts, "VizTracer").problems
    assert problem.fix == "/usr/bin/python3.11 -m pip install viztracer"


def test_not_linux_stops_the_linux_recorders() -> None:
    verdicts = {v.recorder: v for v in assess(_with(platform="darwin"))}
    for name in ("perf: exact GIL waits", "GIL sampler", "OS sampler"):
        assert "needs Linux (this is darwin)" in verdicts[name].problems[0].why


def test_unreadable_schedstat_stops_the_os_sampler() -> None:
    verdict = _verdict(_with(schedstat="cannot read /proc/1/task/*/schedstat"), "OS sampler")
    assert not verdict.available


def test_the_probe_runs_in_the_named_interpreter() -> None:
    facts = probe_interpreter(sys.executable)
    assert facts.error == ""
    assert facts.version == sys.version.split()[0]
    assert "gil_addr" in facts.gil or "error" in facts.gil


def test_an_interpreter_that_cannot_run_the_probe_is_explained(tmp_path: Path) -> None:
    assert "cannot run" in probe_interpreter(str(tmp_path / "missing")).error
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'boom: no such module' >&2\nexit 3\n")
    broken.chmod(0o755)
    assert probe_interpreter(str(broken)).error.endswith("could not run the probe: "
                                                         "boom: no such module")


def _fake_doctor(monkeypatch: pytest.MonkeyPatch, facts: HostFacts) -> None:
    monkeypatch.setattr(doctor, "stop_stray_perf_records", lambda: ["stopped perf record (pid 9)"])
    monkeypatch.setattr(doctor, "cleanup_stale", lambda: [])
    monkeypatch.setattr(doctor, "_look_at_tracefs",
                        lambda: (facts.tracefs, ["threadscope_4_5"]))
    monkeypatch.setattr(doctor, "gather", lambda python, tracefs: facts)


def test_doctor_exits_1_and_prints_the_fix(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _fake_doctor(monkeypatch, _with(perf=None))
    assert cli.main(["doctor"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "apt install linux-perf" in out
    assert "stopped perf record (pid 9)" in out
    assert "deleted uprobe group threadscope_4_5:*" in out
    assert "1 of 7 recorders cannot run here: perf: exact GIL waits." in out


def test_doctor_exits_0_when_everything_runs(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _fake_doctor(monkeypatch, GOOD)
    assert cli.main(["doctor", "--python", "/usr/bin/python3.11"]) == 0
    assert "All 7 recorders can run here." in capsys.readouterr().out
