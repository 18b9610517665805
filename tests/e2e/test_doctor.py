"""`python -m tracer doctor` on this machine, as a user runs it: an exit code that matches what it
printed, no traceback, and the clean-up of what a killed run of an earlier version left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import pyenv_interpreters, tracer

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("python", [sys.executable, *pyenv_interpreters()])
def test_doctor_exit_code_matches_what_it_printed(python: str) -> None:
    result = tracer("doctor", "--python", python)
    out = _flat(result.stdout)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert ("All 7 recorders can run here." in out) is (result.returncode == 0)
    assert ("recorders cannot run here" in out) is (result.returncode == 1)
    for recorder in ("perf: exact GIL waits", "GIL sampler", "OS sampler", "py-spy",
                     "lock recorder: C core", "task recorder: C core", "VizTracer"):
        assert recorder in out
    assert f"python {python}" in out


@pytest.mark.perf
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("perf") is None or not LIBC.is_file(),
                    reason="needs root, perf and x86_64 glibc")
def test_doctor_deletes_the_uprobe_group_of_a_killed_tracer() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    group = f"threadscope_{gone.pid}_1"
    subprocess.run(["perf", "probe", "-q", "-x", str(LIBC), "-a",
                    f"{group}:doctor_{gone.pid}=getpid"], check=True, timeout=60)
    try:
        result = tracer("doctor")
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], check=False, timeout=60)
    assert f"deleted uprobe group {group}:* of a threadscope run that is gone" in _flat(
        result.stdout), result.stdout
