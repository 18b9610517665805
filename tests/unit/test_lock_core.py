"""The lock recorder's fast path: the C core is built where a compiler exists, it does not make a
tight ``with lock:`` loop contend (the Python twin does: see lock_core.py), and the pure-Python
twin still passes every lock-protocol test."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tracer.instrument import lock_core, locks
from tracer.model.locks import build_lock_model, load_lock_events
from tracer.model.schema import Source, WaitDetail
from tracer.raw_files import RunStatus, SourceName

if TYPE_CHECKING:
    from tracer.model.build import _RunInput

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


def lock_run_input(t0: int) -> _RunInput:
    """What the build reads from run.json for a run with the lock recorder on (no thread events)."""
    from tracer.model.build import _RunInput

    return _RunInput(run={"options": {"locks": True}, "mode": "run"}, target_raw={}, events=[],
                     t0_ns=t0, end_ns=t0 + 10**9, pid=7, mode="run", status=RunStatus.OK)


def busy_recording(tmp_path: Path,
                   header: dict[str, Any]) -> tuple[dict[SourceName, Source], list[str]]:
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
    sources: dict[SourceName, Source] = {}
    warnings: list[str] = []
    _locks(tmp_path, lock_run_input(t0), sources, warnings)
    return sources, warnings


def test_a_busy_lock_warns_about_the_python_core_only(tmp_path: Path) -> None:
    sources, warnings = busy_recording(tmp_path, {"core": "python", "why_python": "no compiler"})
    assert any("pure-Python fast path (no compiler)" in w for w in warnings)
    assert "no compiler" in " ".join(sources["locks"].notes)

    sources, warnings = busy_recording(tmp_path, {"core": "c", "why_python": ""})
    assert not any("pure-Python" in w for w in warnings)
    assert "fast path in C" in " ".join(sources["locks"].notes)


# ------------------------------------------------------------------------------------------------
# The C core records contended waits and holds itself (no Python on that path)


def _hold_while_waited(lock: Any, hold_s: float) -> tuple[int, int]:
    """Main holds ``lock`` for ``hold_s`` while a worker blocks on it; (main tid, worker tid)."""
    worker_tid: list[int] = []

    def worker() -> None:
        worker_tid.append(threading.get_native_id())
        with lock:
            pass

    with lock:
        thread = threading.Thread(target=worker)
        thread.start()
        deadline = time.monotonic() + 2
        while not locks.snapshot_state()["waiting"] and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(hold_s)
    thread.join(2)
    return threading.get_native_id(), worker_tid[0]


@pytest.mark.skipif(not lock_core.NATIVE, reason="the C core is not built")
@pytest.mark.parametrize("factory", ["Lock", "RLock"])
def test_the_c_core_records_a_contended_wait_without_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: str
) -> None:
    def no_python_slow_path(self: Any, timeout: float) -> bool:
        raise AssertionError("the Python wait path ran")

    monkeypatch.setattr(locks._Traced, "_wait", no_python_slow_path)
    sink = tmp_path / "locks.jsonl"
    locks.install(str(sink))
    try:
        lock = getattr(threading, factory)()
        main_tid, worker_tid = _hold_while_waited(lock, 0.1)
        locks.flush()
    finally:
        locks.uninstall()
    binary = tmp_path / "locks.bin"
    # the wait, its end, the hold it waited out and the hold that followed it
    assert binary.stat().st_size == 4 * struct.calcsize(lock_core.RECORD_FORMAT)
    events = load_lock_events(sink)
    model = build_lock_model(events, t0_ns=0, end_ns=time.monotonic_ns())
    [wait] = model.waits[worker_tid]
    assert isinstance(wait.detail, WaitDetail)
    assert wait.detail.holder == main_tid and wait.detail.kind == factory.lower()
    assert wait.detail.name == "lock"
    assert 0.1 <= wait.duration <= 0.5
    [row] = [r for r in model.locks if r.id == lock._id]
    assert row.contended == 1 and row.acquisitions == 2
    assert [(h.from_tid, h.to_tid) for h in row.handoffs] == [(main_tid, worker_tid)]


@pytest.mark.skipif(not lock_core.NATIVE, reason="the C core is not built")
def test_a_wait_that_never_ends_is_on_file(tmp_path: Path) -> None:
    """A deadlocked or killed target: the wait's start was written before it blocked."""
    sink = tmp_path / "locks.jsonl"
    locks.install(str(sink))
    lock = threading.Lock()
    released = threading.Event()
    lock.acquire()
    thread = threading.Thread(target=lambda: (lock.acquire(), lock.release(), released.set()))
    try:
        thread.start()
        deadline = time.monotonic() + 2
        while not locks.snapshot_state()["waiting"] and time.monotonic() < deadline:
            time.sleep(0.002)
        locks.flush()
        events = load_lock_events(sink)  # read while the worker still waits
    finally:
        lock.release()
        thread.join(2)
        locks.uninstall()
    end_ns = time.monotonic_ns()
    model = build_lock_model(events, t0_ns=0, end_ns=end_ns)
    [wait] = model.waits[thread.native_id]
    assert isinstance(wait.detail, WaitDetail) and wait.detail.unfinished is True
    assert wait.end == pytest.approx(end_ns / 1e9)


@pytest.mark.skipif(not lock_core.NATIVE, reason="the C core is not built")
def test_the_record_codes_agree_with_the_model() -> None:
    from tracer.model import locks as lock_model

    recorder = lock_core.RECORDER
    assert (recorder.REC_WAIT, recorder.REC_WAIT_END, recorder.REC_HOLD) == (
        lock_model._WAIT, lock_model._WAIT_END, lock_model._HOLD)
    assert struct.calcsize(lock_core.RECORD_FORMAT) == recorder.RECORD_SIZE


def test_a_cut_off_record_is_dropped_and_a_full_buffer_is_said(tmp_path: Path) -> None:
    """A target that died mid-write leaves part of a record: the whole ones still count."""
    fmt = lock_core.RECORD_FORMAT
    t0 = 1_000_000_000
    records = [(1, 7, 1, 11, t0, 0, 0, 12), (3, 7, 1, 11, t0, t0 + 10**8, 1, -1),
               (2, 7, 1, 12, t0 - 10**7, t0 + 10**8, 1, -1)]
    (tmp_path / "locks.bin").write_bytes(b"".join(struct.pack(fmt, *r) for r in records)
                                         + struct.pack(fmt, 1, 7, 1, 13, t0, 0, 0, -1)[:20])
    lines = [{"ev": "start", "format": 1, "t": t0, "core": "c", "records": "locks.bin",
              "record_format": fmt, "pid": 7},
             {"ev": "lock", "id": 1, "kind": "rlock", "name": "cache", "pid": 7},
             {"ev": "dropped", "n": 5, "t": t0, "pid": 7}]
    (tmp_path / "locks.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    events = load_lock_events(tmp_path / "locks.jsonl")
    model = build_lock_model(events, t0_ns=t0, end_ns=t0 + 10**9)
    [wait] = model.waits[11]
    assert wait.duration == pytest.approx(0.1)
    assert isinstance(wait.detail, WaitDetail) and wait.detail.holder == 12
    assert wait.detail.kind == "rlock"
    assert 13 not in model.waits

    from tracer.model.build import _locks
    warnings: list[str] = []
    _locks(tmp_path, lock_run_input(t0), {}, warnings)
    assert any("buffer was full 5 times" in w for w in warnings)


def test_a_runs_lock_records_have_the_contract_name(tmp_path: Path) -> None:
    from tracer import raw_files

    path = locks.core_records_path(str(tmp_path / raw_files.LOCKS))
    assert Path(path) == tmp_path / raw_files.LOCK_RECORDS
