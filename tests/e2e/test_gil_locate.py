"""Finding the GIL of a running process from outside, on every CPython 3.10-3.13 here (pyenv)
and Debian's own static, stripped /usr/bin/python3.11.

The target calibrates the in-process probe itself and prints its result before its threads
start (two spinning CPU threads and a sleeper), then keeps running; the layout found from outside
while the threads fight over the GIL must equal it exactly. The target sets a switch interval
that is neither CPython's default nor the probe's, so the search cannot lean on either value.
``tracer attach`` on such a program must then draw GIL figures from the sampler, with every
sampled GIL holder matched to one of the thread states it logged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import PYENV, REPO, load_model, tracer
from tracer.attached_threads import AttachedThreads, python_threads, thread_offsets
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import find_interpreter, locate_gil
from tracer.model.rawfiles import read_jsonl

TARGET = textwrap.dedent(
    r"""
    import json, sys, threading, time
    from tracer.instrument import gil_probe
    sys.setswitchinterval(0.0031)
    print(json.dumps(gil_probe.calibrate()), flush=True)
    states = {}
    stop = threading.Event()
    def note():
        states[threading.get_native_id()] = gil_probe.thread_tstate()
    def cpu():
        note()
        x = 0
        while not stop.is_set():
            x += 1
    def sleeper():
        note()
        while not stop.is_set():
            time.sleep(0.01)
    note()
    workers = [threading.Thread(target=cpu, name="cpu-a"),
               threading.Thread(target=cpu, name="cpu-b"),
               threading.Thread(target=sleeper, name="sleeper")]
    for worker in workers:
        worker.start()
    while len(states) < 4:
        time.sleep(0.001)
    print(json.dumps(states), flush=True)
    late_stop = threading.Event()
    while True:
        command = sys.stdin.read(1)
        if command == "n":  # a thread that starts now: say which
            started = threading.Event()
            def late():
                note()
                started.set()
                late_stop.wait()
            late_thread = threading.Thread(target=late, name="late")
            late_thread.start()
            started.wait()
            print(json.dumps({late_thread.native_id: states[late_thread.native_id]}), flush=True)
        elif command == "e":  # ... and ends now
            late_stop.set()
            late_thread.join()
            print("ended", flush=True)
        else:
            break
    stop.set()
    for worker in workers:
        worker.join()
    """
)


def interpreters() -> list[Any]:
    """pyenv's newest 3.10-3.13 and Debian's /usr/bin/python3.11; a missing one is a skip."""
    params: list[Any] = []
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}")) if PYENV.is_dir() else []
        params.append(pytest.param(str(found[-1]), id=minor) if found else
                      pytest.param("", id=minor, marks=pytest.mark.skip(f"no pyenv {minor}")))
    debian = Path("/usr/bin/python3.11")
    params.append(pytest.param(str(debian), id="debian-3.11") if debian.is_file() else
                  pytest.param("", id="debian-3.11", marks=pytest.mark.skip("no Debian 3.11")))
    return params


@contextmanager
def threaded_target(python: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any],
                                                   dict[int, int]]]:
    """The running target, its own calibrate() result, and its tid -> PyThreadState map."""
    target = subprocess.Popen([python, "-c", TARGET], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert target.stdin is not None and target.stdout is not None
    try:
        layout = json.loads(target.stdout.readline())
        states = {int(tid): tstate for tid, tstate in json.loads(target.stdout.readline()).items()}
        yield target, layout, states
        target.stdin.write("q")
        target.stdin.close()
        assert target.wait(timeout=30) == 0
    finally:
        if target.poll() is None:
            target.kill()
            target.wait(timeout=10)


@pytest.mark.parametrize("python", interpreters())
def test_layout_from_outside_equals_the_probe_inside(python: str) -> None:
    with threaded_target(python) as (target, inside, states):
        assert "error" not in inside, inside
        # Several times while two threads hand the GIL back and forth: torn reads of a GIL
        # changing hands must still be recognised.
        for _ in range(5):
            assert locate_gil(target.pid) == inside
        interpreter = find_interpreter(target.pid)
        assert python_threads(interpreter, thread_offsets(interpreter)) == states


PYTHON_39 = PYENV / "3.9.18" / "bin" / "python3.9"


@pytest.mark.parametrize(("argv", "reason"), [
    (["sleep", "30"], "no _PyRuntime symbol"),
    ([str(PYTHON_39), "-c", "import time; time.sleep(30)"], "known for 3.10-3.13 only"),
], ids=["not-python", "python-3.9"])
def test_refuses_what_it_does_not_know(argv: list[str], reason: str) -> None:
    if shutil.which(argv[0]) is None:
        pytest.skip(f"no {argv[0]}")
    process = subprocess.Popen(argv)
    try:
        time.sleep(0.3)  # let the interpreter map its libraries
        with pytest.raises(RecorderUnavailable, match=reason):
            locate_gil(process.pid)
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("python", interpreters())
def test_attach_draws_gil_figures_from_the_sampler(python: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with threaded_target(python) as (target, _, states):
        result = tracer("attach", str(target.pid), "--duration", "1.5", "--out", str(out),
                        "--no-perf", "--no-pyspy", "--quiet")
        assert result.returncode == 0, result.stderr
    layout = json.loads((out / "raw" / "gil_layout.json").read_text())
    assert "error" not in layout, layout
    model = load_model(out)
    sampler = model["sources"]["gil-sampler"]
    assert sampler["used"], sampler
    assert any("GIL found from outside" in note for note in sampler["notes"])
    assert model["figure_sources"]["gil"] == "sampled"
    logged = {e["tid"]: e["tstate"] for e in read_jsonl(out / "raw" / "threads.jsonl")
              if e.get("ev") in ("main", "existing")}
    assert logged == states
    holders = [s["h"] for s in read_jsonl(out / "raw" / "gil_samples.jsonl")
               if "kind" not in s and s["l"] == 1]
    # Two spinning threads keep the GIL taken, and the holder is a thread state that was logged
    # (all but a torn read or so: one word read while it changes).
    assert len(holders) > 100
    matched = [h for h in holders if h in set(states.values())]
    assert len(matched) >= 0.99 * len(holders)
    assert len(set(matched)) >= 2


@pytest.mark.parametrize("python", interpreters())
def test_threads_that_come_and_go_while_attached(python: str, tmp_path: Path) -> None:
    log = tmp_path / "threads.jsonl"
    with threaded_target(python) as (target, _, states):
        assert target.stdin is not None and target.stdout is not None
        threads = AttachedThreads(find_interpreter(target.pid), str(log))
        threads.REWALK_S = 0  # walk on every poll
        threads.start()
        target.stdin.write("n")
        target.stdin.flush()
        ((late_tid, late_tstate),) = json.loads(target.stdout.readline()).items()
        _poll_until(threads, log, "start")
        target.stdin.write("e")
        target.stdin.flush()
        assert target.stdout.readline().strip() == "ended"
        _poll_until(threads, log, "end")
        threads.close()
    events = list(read_jsonl(log))
    assert {e["tid"]: e["tstate"] for e in events if e["ev"] in ("main", "existing")} == states
    assert [(e["ev"], e["tid"], e.get("tstate")) for e in events
            if e["ev"] in ("start", "end")] == [("start", int(late_tid), late_tstate),
                                                 ("end", int(late_tid), None)]


def _poll_until(threads: AttachedThreads, log: Path, kind: str) -> None:
    deadline = time.monotonic() + 10
    while not any(e["ev"] == kind for e in read_jsonl(log)):
        assert time.monotonic() < deadline, f"no {kind} event within 10 s"
        threads.poll()
        time.sleep(0.02)


def test_attach_says_why_there_is_no_gil(tmp_path: Path) -> None:
    if not PYTHON_39.is_file():
        pytest.skip(f"no {PYTHON_39}")
    process = subprocess.Popen([str(PYTHON_39), "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.3)
        out = tmp_path / "run"
        result = tracer("attach", str(process.pid), "--duration", "0.5", "--out", str(out),
                        "--no-perf", "--no-pyspy", "--quiet")
        assert result.returncode == 0, result.stderr
    finally:
        process.kill()
        process.wait(timeout=10)
    sampler = load_model(out)["sources"]["gil-sampler"]
    assert not sampler["used"]
    assert "GIL not found from outside" in sampler["reason"]
    assert "known for 3.10-3.13 only" in sampler["reason"]
    assert not (out / "raw" / "threads.jsonl").exists()
