"""What the lock instrumentation costs: nanoseconds per uncontended acquire/release pair against
a plain Lock, measured in fresh interpreters, and its share of the `lock` scenario's time."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import REPO

_TIMEIT = """
import sys, tempfile, threading, timeit
if sys.argv[1] == "traced":
    from tracer.instrument import locks
    locks.install(tempfile.mktemp(suffix=".jsonl"))
lock = threading.Lock()
rlock = threading.RLock()
def with_lock():
    with lock:
        pass
def acquire_release():
    lock.acquire(); lock.release()
def with_rlock():
    with rlock:
        pass
n = 200_000
for name, fn in (("with Lock", with_lock), ("acquire/release", acquire_release),
                 ("with RLock", with_rlock)):
    best = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e9
    print(f"{name}\\t{best:.1f}")
"""


def _per_pair(mode: str, python: str) -> dict[str, float]:
    out = subprocess.run([python, "-c", _TIMEIT, mode], capture_output=True, text=True,
                         check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)}).stdout
    return {name: float(ns) for name, ns in (line.split("\t") for line in out.splitlines())}


def measure(pythons: list[str] | None = None) -> list[tuple[str, str, float, float]]:
    """Rows of (python, form, plain ns, traced ns)."""
    rows = []
    for python in pythons or [sys.executable]:
        plain, traced = _per_pair("plain", python), _per_pair("traced", python)
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        for form in plain:
            rows.append((version, form, plain[form], traced[form]))
    return rows
