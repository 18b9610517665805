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


# CPython's tests of what the task recorder hooks: the thread pool's and asyncio's tasks. The
# whole suites take minutes (benchmarks/cpython_tests.py runs them on every version); these
# parts take a few seconds each way and go through every hook (submit, work items, shutdown with
# cancel_futures, Task steps, eager tasks on 3.12+, to_thread).
TASK_SUITES = ("test_asyncio.test_tasks", "test_asyncio.test_threads")
TASK_MATCH = ("*ThreadPool*", "*CTask_CFuture*", "*test_threads*",  # C tasks: the default
              "*test_process_pool.ProcessPoolFork*",  # items timed in forked workers
              "*test_eager_task_factory*")


def _task_suites(python: str) -> tuple[str, ...]:
    """pyenv's 3.11 and 3.12 here ship no test_concurrent_futures (3.13's is a package);
    eager tasks (whose get_coro() once crashed 3.12.1 traced) are 3.12+."""
    def has(module: str) -> bool:
        return subprocess.run([python, "-c", f"import test.{module}"], capture_output=True,
                              check=False).returncode == 0

    return TASK_SUITES + tuple(module for module in (
        "test_asyncio.test_eager_task_factory", "test_concurrent_futures") if has(module))


def _outcomes(junit: Path) -> dict[str, str]:
    from benchmarks.cpython_tests import read_junit

    return read_junit(junit)


@pytest.mark.parametrize("python", [pytest.param(sys.executable, id="running"),
                                    *pyenv_interpreters()])
def test_pool_and_asyncio_tests_give_the_same_results_traced(tmp_path: Path,
                                                             python: str) -> None:
    selection = [arg for pattern in TASK_MATCH for arg in ("-m", pattern)]
    suites = _task_suites(python)
    plain_xml, traced_xml = tmp_path / "untraced.xml", tmp_path / "traced.xml"
    plain = subprocess.run([python, "-m", "test", "--junit-xml", str(plain_xml), *suites,
                            *selection], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, check=False)
    traced = tracer("run", "--no-viztracer", "--no-pyspy", "--no-perf", "--python", python,
                    "--out", str(tmp_path / "run"), "-m", "test", "--", "--junit-xml",
                    str(traced_xml), *suites, *selection, cwd=tmp_path, timeout=300)
    assert plain_xml.exists(), plain.stdout[-2000:]
    assert traced_xml.exists(), (traced.stdout + traced.stderr)[-3000:]
    untraced_outcomes, traced_outcomes = _outcomes(plain_xml), _outcomes(traced_xml)
    assert len(untraced_outcomes) > 150
    differ = {name: (untraced_outcomes.get(name), traced_outcomes.get(name))
              for name in set(untraced_outcomes) | set(traced_outcomes)
              if untraced_outcomes.get(name) != traced_outcomes.get(name)}
    assert differ == {}
    model = json.loads((tmp_path / "run" / "model.json").read_text())
    assert len(model["tasks"]) > 100  # the hooks did run: the suites' own tasks are recorded
