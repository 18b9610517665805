"""The lock recorder's fast path: the C core is built where a compiler exists, it does not make a
tight ``with lock:`` loop contend (the Python twin does: see lock_core.py), and the pure-Python
twin still passes every lock-protocol test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tracer.instrument import lock_core, locks
from tracer.model.locks import load_lock_events
from tracer.model.schema import Source

REPO = Path(__file__).resolve().parents[2]

# Four threads in the tightest loop a lock can be in. Untraced, CPython never switches threads
# while this lock is held (no call or backward jump inside the critical section), so no acquire
# ever finds it taken: contention here can only come from the recorder.
TIGHT_LOOP = textwrap.dedent("""
    import sys, threading
    from tracer.instrument import locks
    locks.install(sys.argv[1])
    lock = threading.Lock()
    rlock = threading.RLock()
    counter = 0
    def work(n):
        global counter
        for _ in range(n):
            with lock:
                counter += 1
            with rlock:
                counter += 1
    threads = [threading.Thread(target=work, args=(20000,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(counter, lock._n + rlock._n, lock._contended + rlock._contended)
    locks.uninstall()
""")


def run_tight_loop(tmp_path: Path, pure: bool) -> tuple[int, int, int]:
    script = tmp_path / "tight.py"
    script.write_text(TIGHT_LOOP)
    env = {**os.environ, "PYTHONPATH": str(REPO), "THREADSCOPE_PURE_LOCKS": "1" if pure else "0"}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "locks.jsonl")], env=env,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    counter, acquisitions, contended = map(int, out.split())
    return counter, acquisitions, contended


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: the C core is not built")
def test_the_c_core_is_built_and_used() -> None:
    assert lock_core.NATIVE
    assert lock_core.LockCore.__module__ == "tracer.instrument._lockcore"
    assert issubclass(locks.TracedLock, lock_core.LockCore)


@pytest.mark.skipif(not lock_core.NATIVE, reason="the C core is not built")
def test_the_c_core_adds_no_contention_to_a_tight_loop(tmp_path: Path) -> None:
    counter, acquisitions, contended = run_tight_loop(tmp_path, pure=False)
    assert counter == acquisitions == 2 * 4 * 20000
    # With the Python twin this is typically hundreds to thousands; the real lock's is zero.
    assert contended <= acquisitions // 1000


@pytest.mark.skipif(not lock_core.NATIVE, reason="the C core is not built")
@pytest.mark.parametrize(("pure", "core"), [(False, "c"), (True, "python")])
def test_the_recording_says_which_core_recorded(tmp_path: Path, pure: bool, core: str) -> None:
    run_tight_loop(tmp_path, pure=pure)
    header = load_lock_events(tmp_path / "locks.jsonl")[0]
    assert header["ev"] == "start"
    assert header["core"] == core


def test_the_python_twin_passes_the_lock_protocol_tests() -> None:
    env = {**os.environ, "THREADSCOPE_PURE_LOCKS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/unit/test_lock_instrument.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:]


def busy_recording(tmp_path: Path, header: dict[str, Any]) -> tuple[dict[str, Source], list[str]]:
    """A lock taken 60,000 times, 500 of them contended, recorded by the core in ``header``."""
    from tracer.model.build import _locks

    t0 = 1_000_000_000
    lines = [
        {"ev": "start", "format": 1, "t": t0, "python": "3.11.7", "long_hold_ns": 10**6, **header},
        {"ev": "lock", "id": 1, "kind": "lock", "site": "app.py:3", "func": "<module>",
         "made_by": None, "name": "lock"},
        {"ev": "stats", "id": 1, "n": 60_000, "contended": 500, "hold_ns": 10**7,
         "hold_max_ns": 10**5, "instances": 1},
    ]
    (tmp_path / "locks.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    sources: dict[str, Source] = {}
    warnings: list[str] = []
    _locks(tmp_path, {"options": {"locks": True}, "mode": "run"}, [], t0, t0 + 10**9,
           sources, warnings)
    return sources, warnings


def test_a_busy_lock_warns_about_the_python_core_only(tmp_path: Path) -> None:
    sources, warnings = busy_recording(tmp_path, {"core": "python", "why_python": "no compiler"})
    assert any("pure-Python fast path (no compiler)" in w for w in warnings)
    assert "no compiler" in " ".join(sources["locks"].notes)

    sources, warnings = busy_recording(tmp_path, {"core": "c", "why_python": ""})
    assert not any("pure-Python" in w for w in warnings)
    assert "fast path in C" in " ".join(sources["locks"].notes)
