"""The lock recorder's fast path: the C core is built where a compiler exists, it does not make a
tight ``with lock:`` loop contend (the Python twin does: see lock_core.py), and the pure-Python
twin still passes every lock-protocol test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracer.instrument import lock_core, locks
from tracer.model.locks import load_lock_events

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
