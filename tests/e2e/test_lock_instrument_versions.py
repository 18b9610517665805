"""The in-target lock instrumentation on every interpreter we support: a small program that uses
the stdlib's synchronisation the ordinary way runs unchanged under 3.10, 3.12 and 3.13 (the
pyenv builds on this machine; missing ones are skipped), and its known waits are recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracer.model.locks import build_lock_model, load_lock_events
from tracer.model.schema import WaitDetail

REPO = Path(__file__).resolve().parents[2]
PYENV = Path("/root/.pyenv/versions")
VERSIONS = ["3.10.13", "3.12.1", "3.13.0"]
HOLD_S = 0.2  # the known-by-construction wait; 10% of it (20 ms) is four GIL switch intervals

TARGET = """
import json, os, queue, sys, threading, time, warnings
from concurrent.futures import ThreadPoolExecutor
from tracer.instrument import locks

locks.install(sys.argv[1])
HOLD_S = float(sys.argv[2])
lock = threading.Lock()


class Account:
    def __init__(self):
        self._lock = threading.RLock()
        self.balance = 0


account = Account()
out = {"main_tid": threading.get_native_id()}


def worker():
    out["worker_tid"] = threading.get_native_id()
    with lock:
        pass


lock.acquire()
thread = threading.Thread(target=worker)
thread.start()
while not locks.snapshot_state()["waiting"]:
    time.sleep(0.002)
time.sleep(HOLD_S)
lock.release()
thread.join()

cond = threading.Condition(account._lock)
def deposit():
    with cond, account._lock:
        account.balance += 1
        cond.notify_all()
with cond:
    threading.Thread(target=deposit).start()
    out["cond"] = cond.wait_for(lambda: account.balance == 1, timeout=5)

jobs = queue.Queue(maxsize=1)
def produce():
    for i in range(10):
        jobs.put(i)
threading.Thread(target=produce).start()
out["queue"] = [jobs.get(timeout=5) for _ in range(10)]

with ThreadPoolExecutor(max_workers=2) as pool:
    out["pool"] = sum(pool.map(lambda x: x * x, range(100)))

barrier = threading.Barrier(2)
event = threading.Event()
def meet():
    barrier.wait(5)
    event.set()
threading.Thread(target=meet).start()
out["barrier"] = barrier.wait(5) in (0, 1)
out["event"] = event.wait(5)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    pid = os.fork()
if pid == 0:
    with lock, account._lock, account._lock:
        pass
    os._exit(0)
out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
out["is_traced"] = type(lock).__name__ if isinstance(lock, locks.TracedLock) else "untraced"
print(json.dumps(out))
"""


def interpreters() -> list[Any]:
    params = [pytest.param(Path(sys.executable), id="running")]
    for version in VERSIONS:
        python = PYENV / version / "bin" / "python"
        mark = pytest.mark.skipif(not python.exists(), reason=f"no Python {version} here")
        params.append(pytest.param(python, id=version, marks=mark))
    return params


@pytest.mark.parametrize("python", interpreters())
def test_program_unchanged_and_waits_recorded(tmp_path: Path, python: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(TARGET, encoding="utf-8")
    sink = tmp_path / "locks.jsonl"
    result = subprocess.run(
        [str(python), str(script), str(sink), str(HOLD_S)],
        capture_output=True,
        text=True,
        timeout=20,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["cond"] is True and out["queue"] == list(range(10))
    assert out["pool"] == sum(x * x for x in range(100))
    assert out["barrier"] and out["event"] and out["fork"] == 0
    # traced, and named as the real _thread.lock (3.13+: as threading.Lock, which it then is)
    assert out["is_traced"] in ("lock", "Lock")

    events = load_lock_events(sink)
    start = next(e for e in events if e["ev"] == "start")
    model = build_lock_model(events, t0_ns=start["t"], end_ns=events[-1]["t"])
    first = model.waits[out["worker_tid"]][0]
    assert isinstance(first.detail, WaitDetail)
    assert (first.detail.name, first.detail.holder) == ("lock", out["main_tid"])
    assert HOLD_S <= first.duration <= HOLD_S * 1.1
    names = {row.name for row in model.locks}
    assert "Account._lock" in names
    assert "queue.Queue.mutex of jobs" in names or any(
        row.kind in ("queue_get", "queue_put") and row.name == "jobs" for row in model.locks
    )
    assert any(e["ev"] == "state" for e in events)  # the snapshot written at exit
    assert model.held_at_exit == []
