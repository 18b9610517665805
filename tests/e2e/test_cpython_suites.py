"""CPython's own tests under ``tracer run``: the fast part of benchmarks/cpython_tests.py, for CI.

The whole suites (test_threading, test_thread, test_queue, test_asyncio, test_concurrent_futures)
take about 15 minutes traced and untraced on three versions, so CI runs the tests that once
failed only traced: ``test__all__`` (the traced Lock/RLock must look like they belong to
``threading``/``_thread``) and ``test_disallow_instantiation`` (``type(threading.Lock())()`` must
raise TypeError), plus a thread whose name is a MagicMock (test_asyncio's test_events hung on it:
the thread-start hook raised and the thread never ran its target).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, pyenv_interpreters

ONCE_FAILING = ("test__all__", "test_disallow_instantiation")


def tracer(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m tracer`` from this checkout (an editable install elsewhere would otherwise
    be what runs from ``cwd``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("python", [pytest.param(sys.executable, id="running"),
                                    *pyenv_interpreters()])
def test_the_tests_that_once_failed_pass_traced(tmp_path: Path, python: str) -> None:
    selection = [arg for name in ONCE_FAILING for arg in ("-m", name)]
    result = tracer("run", "--no-viztracer", "--no-pyspy", "--python", python, "--out",
                    str(tmp_path / "run"), "-m", "test", "--", "-v", "test_threading",
                    *selection, cwd=tmp_path, timeout=240)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    ran = [name for name in ONCE_FAILING if f"{name} (" in out]
    # 3.13 dropped test_disallow_instantiation (threading.Lock became an instantiable type)
    assert "test__all__" in ran, out[-3000:]
    for name in ran:
        assert any(line.startswith(f"{name} (") and line.rstrip().endswith("ok")
                   for line in out.splitlines()), out[-3000:]


MOCK_NAMED = """
import threading
from unittest import mock

ran = []
thread = threading.Thread(target=lambda: ran.append(True))
thread._name = mock.MagicMock()
thread.start()
thread.join(10)
print("ran" if ran else "never ran")
"""


def test_a_thread_named_by_a_mock_runs_and_the_record_says_what_was_coerced(
        tmp_path: Path) -> None:
    script = tmp_path / "mock_named.py"
    script.write_text(MOCK_NAMED, encoding="utf-8")
    run_dir = tmp_path / "run"
    result = tracer("run", "--no-viztracer", "--no-pyspy", "--out", str(run_dir), str(script),
                    cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "never ran" not in result.stdout and "ran" in result.stdout
    target = json.loads((run_dir / "raw" / "target.json").read_text())
    assert target["hook_faults"]["thread_name"]["n"] >= 1
