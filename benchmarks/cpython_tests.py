"""CPython's own thread test suites, untraced and under ``tracer run``: the same tests must pass
and fail either way, or our code inside the target changed what the program does.

    python -m benchmarks.cpython_tests                       # every suite, 3.11-3.13 if present
    python -m benchmarks.cpython_tests --suite test_thread --python /path/to/python3.12

Each suite runs as ``python -m test --junit-xml FILE SUITE`` (sequentially, in one process, so
the traced run traces the tests themselves), then as ``python -m tracer run --no-viztracer
--python PYTHON -m test ...``; the two JUnit files are compared test by test. ``test_asyncio``
(2,368 tests on 3.11) takes about 70 s untraced here, all suites on three versions about 15 min:
too long for CI, which runs the fast check in tests/e2e/test_cpython_suites.py instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYENV = Path.home() / ".pyenv" / "versions"
VERSIONS = ("3.11.7", "3.12.1", "3.13.0")
SUITES = ("test_threading", "test_thread", "test_queue", "test_asyncio")
# test_concurrent_futures is a package of its own from 3.13 (about 90 s here); pyenv's 3.11 and
# 3.12 builds here do not ship it. It and test_asyncio are where the task recorder's hooks run
# (every work item, event-loop callback and task), and the traced runs have them on.
SUITES_FROM_313 = ("test_concurrent_futures",)
SUITE_TIMEOUT_S = 600  # the slowest pair here (test_asyncio traced) takes under 2 min
HEADER = ["python", "suite", "tests", "untraced pass/fail/skip", "traced pass/fail/skip",
          "differ", "untraced s", "traced s"]


@dataclass
class SuiteRun:
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> pass, fail, skip
    seconds: float = 0.0
    returncode: int = 0
    error: str = ""

    def counts(self) -> str:
        values = list(self.outcomes.values())
        if not values:
            return f"- ({self.error or f'exit {self.returncode}'})"
        return "/".join(str(values.count(kind)) for kind in ("pass", "fail", "skip"))


@dataclass
class SuiteResult:
    python: str
    suite: str
    untraced: SuiteRun
    traced: SuiteRun

    def differing(self) -> list[str]:
        """Tests whose outcome differs, and tests that ran only one way."""
        names = set(self.untraced.outcomes) | set(self.traced.outcomes)
        return sorted(name for name in names
                      if self.untraced.outcomes.get(name) != self.traced.outcomes.get(name))

    def row(self) -> list[str]:
        differ = self.differing()
        shown = ", ".join(f"{name.rsplit('.', 1)[-1]} ({self.untraced.outcomes.get(name, '-')}"
                          f" -> {self.traced.outcomes.get(name, '-')})" for name in differ[:3])
        if len(differ) > 3:
            shown += f", {len(differ) - 3} more"
        return [self.python, self.suite, f"{len(self.untraced.outcomes):,}",
                self.untraced.counts(), self.traced.counts(), shown or "none",
                f"{self.untraced.seconds:.0f}", f"{self.traced.seconds:.0f}"]


def pythons() -> list[tuple[str, Path]]:
    found = []
    for version in VERSIONS:
        python = PYENV / version / "bin" / "python"
        if python.exists():
            found.append((version, python))
    return found or [(".".join(map(str, sys.version_info[:3])), Path(sys.executable))]


def suites_for(version: str) -> tuple[str, ...]:
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    return SUITES + (SUITES_FROM_313 if major_minor >= (3, 13) else ())


def read_junit(path: Path) -> dict[str, str]:
    """Test id -> pass, fail (a failure or an error) or skip, from regrtest's JUnit XML."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "fail"
        elif case.find("skipped") is not None or case.get("status") == "skipped":
            outcomes[name] = "skip"
        else:
            outcomes[name] = "pass"
    return outcomes


def _default_sigint() -> None:
    """A benchmark started in the background inherits SIGINT ignored, and test_threading's
    test_interrupt_main_* then fail untraced only: both runs get the default handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """A hung suite gets Ctrl-C, as a user would give it: the tracer then stops its recorders
    and the target (SIGKILL, which subprocess.run's timeout sends, left py-spy and the hung
    target running for an hour); SIGKILL only if that takes more than a minute."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run_suite(python: Path, suite: str, traced: bool, work: Path) -> SuiteRun:
    junit = work / f"{suite}-{'traced' if traced else 'untraced'}.xml"
    test_args = ["--junit-xml", str(junit), suite]
    if traced:  # "--": the rest is the program's, not the tracer's options
        command = [sys.executable, "-m", "tracer", "run", "--no-viztracer", "--python",
                   str(python), "--out", str(work / f"run-{suite}"), "--force", "-m", "test",
                   "--", *test_args]
    else:
        command = [str(python), "-m", "test", *test_args]
    # This checkout's tracer, not whichever one is installed (an editable install elsewhere
    # would otherwise be what runs from the temporary folder).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)} if traced else None
    began = time.monotonic()
    proc = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=_default_sigint)
    try:
        _, stderr = proc.communicate(timeout=SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _interrupt(proc)
        return SuiteRun(seconds=time.monotonic() - began, returncode=-1,
                        error=f"hung: no result after {SUITE_TIMEOUT_S} s")
    run = SuiteRun(seconds=time.monotonic() - began, returncode=proc.returncode)
    if junit.exists():
        try:
            run.outcomes = read_junit(junit)
        except ET.ParseError as exc:
            run.error = f"unreadable JUnit file: {exc}"
    else:
        run.error = f"no JUnit file (exit {proc.returncode}): {stderr.strip()[-200:]}"
    return run


def measure(chosen: list[tuple[str, Path]] | None = None,
            only: tuple[str, ...] = ()) -> list[SuiteResult]:
    results = []
    for version, python in chosen or pythons():
        for suite in only or suites_for(version):
            with tempfile.TemporaryDirectory(prefix=f"cpython-{suite}-") as tmp:
                work = Path(tmp)
                untraced = run_suite(python, suite, False, work)
                traced = run_suite(python, suite, True, work)
            results.append(SuiteResult(version, suite, untraced, traced))
            print(" | ".join(results[-1].row()), file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpython_tests")
    parser.add_argument("--python", type=Path, action="append",
                        help="interpreter to test (default: pyenv's 3.11, 3.12 and 3.13)")
    parser.add_argument("--suite", action="append", help="one of the suites (default: all)")
    args = parser.parse_args(argv)
    chosen = None
    if args.python:
        chosen = [(subprocess.run([str(p), "-c", "import platform; print(platform."
                                   "python_version())"], capture_output=True, text=True,
                                  check=True).stdout.strip(), p) for p in args.python]
    results = measure(chosen, tuple(args.suite or ()))
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for result in results:
        print("| " + " | ".join(result.row()) + " |")
        for name in result.differing():
            print(f"  {name}: {result.untraced.outcomes.get(name, '-')} untraced, "
                  f"{result.traced.outcomes.get(name, '-')} traced")
    return 0 if all(not result.differing() for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
