"""Our code inside the target never raises into the program nor changes what it does: thread
hooks, lock wrappers, markers, fork and atexit handlers record what they can and count the rest
(``tracer.instrument.faults``, written to ``raw/target.json`` as ``hook_faults``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tracer import markers, raw_files
from tracer.bootstrap import _wait_for_non_daemon_threads
from tracer.inprocess import EventLog, InProcessRecording, hook_threads, is_internal, unhook_threads
from tracer.instrument import faults, locks

REPO = Path(__file__).resolve().parents[2]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


class NameRaises(threading.Thread):
    @property  # type: ignore[override]
    def name(self) -> str:
        raise RuntimeError("no name")


@pytest.fixture(autouse=True)
def fresh_faults() -> Iterator[None]:
    faults.reset()
    yield
    faults.reset()


@pytest.fixture
def thread_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / raw_files.THREADS
    log = EventLog(str(path))
    original = hook_threads(log)
    try:
        yield path
    finally:
        unhook_threads(original)
        log.close()


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_named(name: Any, cls: type[threading.Thread] = threading.Thread) -> list[int]:
    ran: list[int] = []
    thread = cls(target=lambda: ran.append(threading.get_native_id()))
    if name is not None:
        thread._name = name  # type: ignore[attr-defined]  # what a mock-heavy test ends up with
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    return ran


@pytest.mark.parametrize("name", [mock.MagicMock(), Unprintable()], ids=["magicmock", "str-raises"])
def test_a_thread_with_an_unserialisable_name_runs_and_is_recorded(thread_log: Path,
                                                                   name: Any) -> None:
    ran = run_named(name)
    assert len(ran) == 1, "the thread died before its target ran"
    starts = [e for e in events(thread_log) if e["ev"] == "start" and e["tid"] == ran[0]]
    ends = [e for e in events(thread_log) if e["ev"] == "end" and e["tid"] == ran[0]]
    assert len(starts) == 1 and len(ends) == 1
    assert isinstance(starts[0]["name"], str)
    if isinstance(name, Unprintable):
        assert starts[0]["name"] == faults.PLACEHOLDER
    else:
        assert "MagicMock" in starts[0]["name"]
    assert faults.snapshot()["thread_name"]["n"] >= 2  # start and end: both said


def test_a_thread_whose_name_property_raises_runs_and_is_recorded(thread_log: Path) -> None:
    ran = run_named(None, NameRaises)
    assert len(ran) == 1
    start = next(e for e in events(thread_log) if e["ev"] == "start" and e["tid"] == ran[0])
    assert start["name"] == faults.PLACEHOLDER
    assert "RuntimeError: no name" in faults.snapshot()["thread_name"]["example"]


def test_a_log_line_that_cannot_be_encoded_is_counted_not_raised(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path / "t.jsonl"))
    loop: dict[str, Any] = {}
    loop["self"] = loop
    log.write({"ev": "start", "odd": loop})  # circular: ValueError inside json
    log.write({"ev": "ok", "odd": mock.MagicMock()})  # encoded as its text
    log.close()
    log.write({"ev": "after close"})  # interpreter shutdown: a daemon thread ending late
    assert [e["ev"] for e in events(tmp_path / "t.jsonl")] == ["ok"]
    assert faults.snapshot()["thread_event_lost"]["n"] == 1


def test_an_odd_name_is_the_programs_thread_not_ours() -> None:
    thread = threading.Thread(target=lambda: None)
    thread._name = mock.MagicMock()  # type: ignore[attr-defined]  # .startswith() is truthy
    assert not is_internal(thread)
    assert not is_internal(NameRaises())
    assert is_internal(threading.Thread(name="threadscope-writer"))


def test_the_bootstrap_waits_for_a_thread_with_an_odd_name() -> None:
    release = threading.Event()
    done: list[bool] = []

    def work() -> None:
        release.wait(5)
        done.append(True)

    thread = threading.Thread(target=work)
    thread._name = mock.MagicMock()  # type: ignore[attr-defined]
    thread.start()
    threading.Timer(0.1, release.set).start()
    _wait_for_non_daemon_threads()
    assert done == [True]


def test_markers_with_unserialisable_fields_do_not_raise(tmp_path: Path) -> None:
    sink = tmp_path / raw_files.MARKERS
    previous = markers.set_sink(str(sink))
    try:
        markers.mark("odd", mock_field=mock.MagicMock(), bad=Unprintable(), n=3, big=10**30)
        markers.mark(Unprintable())  # type: ignore[arg-type]
        with markers.phase("phase", bad=Unprintable()):
            pass
    finally:
        markers.set_sink(previous)
    lines = events(sink)
    assert [line["kind"] for line in lines] == ["mark", "mark", "phase_start", "phase_end"]
    assert lines[0]["fields"]["bad"] == faults.PLACEHOLDER and lines[0]["fields"]["n"] == 3
    assert "MagicMock" in lines[0]["fields"]["mock_field"]
    assert lines[1]["name"] == faults.PLACEHOLDER
    assert set(faults.snapshot()) >= {"marker_field", "marker_name"}


def test_a_marker_that_cannot_be_written_is_counted(tmp_path: Path) -> None:
    previous = markers.set_sink(str(tmp_path / "missing-dir" / "m.jsonl"))
    try:
        markers.mark("lost")  # the folder is gone: OSError inside, nothing outside
    finally:
        markers.set_sink(previous)
    assert faults.snapshot()["marker_lost"]["n"] == 1


def test_lock_snapshots_and_flushes_survive_odd_thread_names(tmp_path: Path) -> None:
    sink = tmp_path / "locks.jsonl"
    locks.install(str(sink))
    try:
        release = threading.Event()
        thread = threading.Thread(target=lambda: release.wait(5))
        thread._name = mock.MagicMock()  # type: ignore[attr-defined]
        thread.start()
        try:
            locks.write_state()
            locks._at_exit()  # atexit: flush and a snapshot, never an exception
        finally:
            release.set()
            thread.join()
    finally:
        locks.uninstall()
    states = [json.loads(line) for line in sink.read_text().splitlines()
              if json.loads(line)["ev"] == "state"]
    assert states and all(isinstance(n, str) for s in states for n in s["threads"].values())


def test_a_lock_made_on_a_deep_stack_still_works() -> None:
    """When recording a new lock fails (here: RecursionError in our frame walk), the program
    gets a working real lock."""
    with mock.patch.object(locks, "_creation_origin", side_effect=RecursionError("deep")):
        lock = locks.TracedLock._make((), {})
    assert type(lock) is type(locks._orig_lock())
    with lock:
        pass
    assert faults.snapshot()["lock_untraced"]["n"] == 1


def test_the_fork_handlers_never_raise() -> None:
    with mock.patch.object(locks, "_start_afresh", side_effect=OSError("no")):
        locks._after_fork_in_child()
    assert faults.snapshot()["fork_handler"]["n"] == 1


def test_the_target_record_carries_the_fault_counts(tmp_path: Path) -> None:
    recording = InProcessRecording(str(tmp_path), viztracer=False, locks=False,
                                   tracer_entries=1000)
    recording.prepare()
    try:
        recording.begin()
        run_named(mock.MagicMock())
    finally:
        recording.finish()
        recording.undo()
    target = json.loads((tmp_path / raw_files.TARGET).read_text())
    assert target["hook_faults"]["thread_name"]["n"] >= 1
    assert "MagicMock" in target["hook_faults"]["thread_name"]["example"]


# -- the traced Lock and RLock look like the real ones where CPython's tests look ---------------

IDENTITY = """
import json, sys, threading, _thread
real = {"Lock": threading.Lock, "RLock": threading.RLock}
real_types = {"Lock": type(threading.Lock()), "RLock": type(threading.RLock())}

def names(obj):
    return [getattr(obj, a, None) for a in ("__module__", "__name__", "__qualname__")]

def refused(action):
    try:
        action()
    except TypeError as exc:
        return str(exc)
    return None

def probe(types):
    out = {}
    for key in ("Lock", "RLock"):
        tp = types[key]
        out[key] = {"factory": names(getattr(threading, key)), "type": names(tp),
                    "direct": refused(tp), "subclass": refused(lambda: type("S", (tp,), {})),
                    "made": type(getattr(threading, key)()).__name__}
    return out

before = probe(real_types)
from tracer.instrument import locks
locks.install(sys.argv[1])
after = probe({"Lock": type(threading.Lock()), "RLock": type(threading.RLock())})
import pickle
pickled = [pickle.loads(pickle.dumps(getattr(threading, key))) is getattr(threading, key)
           for key in ("Lock", "RLock")]
print(json.dumps({"before": before, "after": after, "traced": locks.NATIVE,
                  "lock_is_traced": isinstance(threading.Lock(), locks.TracedLock),
                  "pickled": pickled}))
"""


@pytest.mark.parametrize("pure", ["0", "1"], ids=["c-core", "python-core"])
def test_traced_locks_carry_the_real_names_and_refusals(tmp_path: Path, pure: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "THREADSCOPE_PURE_LOCKS": pure}
    result = subprocess.run([sys.executable, "-c", IDENTITY, str(tmp_path / "l.jsonl")],
                            capture_output=True, text=True, timeout=30, env=env, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["lock_is_traced"]
    # Pickled by reference as threading.Lock/RLock (a spawned manager unpickles the real ones):
    # test__all__ asks only that the module be threading or _thread.
    assert out["pickled"] == [True, True]
    for key in ("Lock", "RLock"):
        after, before = out["after"][key], out["before"][key]
        assert after["factory"] == ["threading", key, key]
        assert before["factory"][0] in ("threading", "_thread")
        if before["factory"] != before["type"]:  # threading.Lock is not the type before 3.13
            assert after["type"] == before["type"]  # _thread.lock, _thread.RLock
        # what type(lock)() and subclassing do, and what a lock's type is called
        assert {k: v for k, v in after.items() if k not in ("factory", "type", "made")} == {
            k: v for k, v in before.items() if k not in ("factory", "type", "made")}


def test_a_forked_child_is_alone_until_it_has_lock_events_to_write(tmp_path: Path) -> None:
    """CPython's test_clear_threads_states_after_fork: ``sys._current_frames()`` in the child
    holds the forking thread only; our writer thread starts there when it first has events."""
    sink = tmp_path / "locks.jsonl"
    locks.install(str(sink))
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 2
            try:
                import time

                time.sleep(0.3)  # a writer started by the fork handler would be running now
                code = 0 if len(sys._current_frames()) == 1 else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        locks.uninstall()
    assert os.waitstatus_to_exitcode(status) == 0


SIGTERM_AT_FORK = """
import os, signal, sys, time
from tracer import bootstrap

signal.signal(signal.SIGTERM, bootstrap._raise_interrupt)  # what the bootstrap sets up
# A SIGTERM that reaches the child before the bootstrap's handler has reset it (a pool
# terminating a worker it has just forked): registered first, so it runs first in the child.
os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
os.register_at_fork(before=bootstrap._block_sigterm, after_in_parent=bootstrap._unblock_sigterm,
                    after_in_child=bootstrap._forget_in_child)
pid = os.fork()
if pid == 0:
    time.sleep(2)
    os._exit(0)  # the SIGTERM was swallowed
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(signal.getsignal(signal.SIGTERM) is bootstrap._raise_interrupt)
"""


def test_a_sigterm_sent_to_a_just_forked_child_kills_it_as_untraced() -> None:
    result = subprocess.run([sys.executable, "-c", SIGTERM_AT_FORK], capture_output=True,
                            text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)},
                            check=False)
    assert result.returncode == 0, result.stderr
    code, parent_handler_kept = result.stdout.split()
    assert int(code) == -15, "the child outlived its SIGTERM"
    assert parent_handler_kept == "True"
