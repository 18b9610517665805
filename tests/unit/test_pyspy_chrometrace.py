"""py-spy record's chrometrace turned into the stack records the model reads, and its clock
placed on CLOCK_MONOTONIC (tracer.recorders.chrometrace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracer.recorders.chrometrace import (
    Labeller,
    ShortNames,
    StackChange,
    align,
    stack_changes,
    to_records,
)

OWN = "/opt/ts/tracer/"
LIB = "/usr/lib/python3.11/"
PID, MAIN_PTHREAD, WORKER_PTHREAD = 100, 0x7F00, 0x7F01


def _frame(ph: str, ts: int, tid: int, name: str, filename: str = "", line: int = 0) -> dict[
        str, Any]:
    return {"ph": ph, "ts": ts, "pid": PID, "tid": tid, "name": name, "cat": "py-spy",
            "args": {"filename": filename, "line": line}}


def _b(ts: int, tid: int, name: str, filename: str = "", line: int = 0) -> dict[str, Any]:
    return _frame("B", ts, tid, name, filename, line)


def _e(ts: int, tid: int, name: str, filename: str = "", line: int = 0) -> dict[str, Any]:
    return _frame("E", ts, tid, name, filename, line)


PROCESS = f'process {PID}:"python -m tracer.bootstrap cfg.json"'
# The main thread waits for the go signal in the bootstrap (under runpy), then runs the user's
# script (through runpy again), which starts a worker; the worker ends, then the main thread's
# Python frames end too; py-spy closes what is still open when it writes the file.
EVENTS = [
    _b(1000, MAIN_PTHREAD, PROCESS), _b(1000, MAIN_PTHREAD, "thread (100): MainThread"),
    _b(1000, MAIN_PTHREAD, "_run_module_as_main", "<frozen runpy>", 198),
    _b(1000, MAIN_PTHREAD, "_run_code", "<frozen runpy>", 88),
    _b(1000, MAIN_PTHREAD, "<module>", OWN + "bootstrap.py", 150),
    _b(1000, MAIN_PTHREAD, "main", OWN + "bootstrap.py", 137),
    _b(1000, MAIN_PTHREAD, "_await_go", OWN + "bootstrap.py", 126),
    # go: the bootstrap runs the script
    _e(5000, MAIN_PTHREAD, "_await_go", OWN + "bootstrap.py", 126),
    _e(5000, MAIN_PTHREAD, "main", OWN + "bootstrap.py", 137),
    _b(5000, MAIN_PTHREAD, "main", OWN + "bootstrap.py", 138),
    _b(5000, MAIN_PTHREAD, "run", OWN + "bootstrap.py", 60),
    _b(5000, MAIN_PTHREAD, "run_path", "<frozen runpy>", 291),
    _b(5000, MAIN_PTHREAD, "_run_code", "<frozen runpy>", 88),
    _b(5000, MAIN_PTHREAD, "<module>", "/home/me/app.py", 10),
    # the worker appears; its thread frame carries the native tid
    _b(6000, WORKER_PTHREAD, PROCESS), _b(6000, WORKER_PTHREAD, "thread (101): worker"),
    _b(6000, WORKER_PTHREAD, "Thread._bootstrap", LIB + "threading.py", 1002),
    _b(6000, WORKER_PTHREAD, "hook_threads.<locals>._bootstrap_inner", OWN + "inprocess.py", 85),
    _b(6000, WORKER_PTHREAD, "Thread._bootstrap_inner", LIB + "threading.py", 1045),
    _b(6000, WORKER_PTHREAD, "Thread.run", LIB + "threading.py", 982),
    _b(6000, WORKER_PTHREAD, "work", "/home/me/app.py", 4),
    # a lock wrapper of threadscope's between two frames of the user's: left out
    _b(6000, WORKER_PTHREAD, "acquire", OWN + "instrument/locks.py", 40),
    _b(6000, WORKER_PTHREAD, "helper", "/home/me/app.py", 2),
    _b(6010, MAIN_PTHREAD, "Thread.join", LIB + "threading.py", 1119),
    # the worker goes one frame up, then only threadscope's frames are left
    _e(8000, WORKER_PTHREAD, "helper", "/home/me/app.py", 2),
    _e(8000, WORKER_PTHREAD, "acquire", OWN + "instrument/locks.py", 40),
    _e(9000, WORKER_PTHREAD, "work", "/home/me/app.py", 4),
    _e(9000, WORKER_PTHREAD, "Thread.run", LIB + "threading.py", 982),
    _e(9000, WORKER_PTHREAD, "Thread._bootstrap_inner", LIB + "threading.py", 1045),
    # the main thread's stack empties (its thread frame stays open: the thread is still there)
    *[_e(9500, MAIN_PTHREAD, name, f, line) for name, f, line in [
        ("Thread.join", LIB + "threading.py", 1119), ("<module>", "/home/me/app.py", 10),
        ("_run_code", "<frozen runpy>", 88), ("run_path", "<frozen runpy>", 291),
        ("run", OWN + "bootstrap.py", 60), ("main", OWN + "bootstrap.py", 138),
        ("<module>", OWN + "bootstrap.py", 150), ("_run_code", "<frozen runpy>", 88),
        ("_run_module_as_main", "<frozen runpy>", 198)]],
    # py-spy writing its file: every open slice closed at one moment
    _e(20000, WORKER_PTHREAD, "hook_threads.<locals>._bootstrap_inner", OWN + "inprocess.py", 85),
    _e(20000, WORKER_PTHREAD, "Thread._bootstrap", LIB + "threading.py", 1002),
    _e(20000, WORKER_PTHREAD, "thread (101): worker"), _e(20000, WORKER_PTHREAD, PROCESS),
    _e(20000, MAIN_PTHREAD, "thread (100): MainThread"), _e(20000, MAIN_PTHREAD, PROCESS),
]
OFFSET = 1_000_000_000


def _records() -> list[dict[str, Any]]:
    return list(to_records(stack_changes(EVENTS), OFFSET, Labeller(OWN)))


def _stacks(tid: int) -> list[tuple[int, list[str]]]:
    return [(r["t0"], t["frames"]) for r in _records() for t in r["threads"] if t["tid"] == tid]


def test_threads_are_keyed_by_native_tid_and_named_by_py_spy() -> None:
    threads = {(t["pid"], t["tid"]): t["name"] for r in _records() for t in r["threads"]}
    assert threads == {(PID, 100): "MainThread", (PID, 101): "worker"}
    record = _records()[0]
    assert set(record) == {"t0", "t1", "threads"}
    assert record["threads"][0]["owns_gil"] is None and record["threads"][0]["active"] is None


def test_the_main_thread_starts_at_the_users_code_without_bootstrap_or_runpy() -> None:
    assert _stacks(100) == [
        (OFFSET + 1_000_000, []),  # waiting for go: only threadscope's and runpy's frames
        (OFFSET + 5_000_000, ["<module> (app.py:10)"]),
        (OFFSET + 6_010_000, ["Thread.join (threading.py:1119)", "<module> (app.py:10)"]),
        (OFFSET + 9_500_000, []),  # its stack ended; the thread is still there
    ]


def test_nested_frames_innermost_first_without_threadscopes_own() -> None:
    worker = _stacks(101)
    assert worker[0] == (OFFSET + 6_000_000, [
        "helper (app.py:2)", "work (app.py:4)", "Thread.run (threading.py:982)",
        "Thread._bootstrap_inner (threading.py:1045)", "Thread._bootstrap (threading.py:1002)"])
    assert worker[1] == (OFFSET + 8_000_000, [
        "work (app.py:4)", "Thread.run (threading.py:982)",
        "Thread._bootstrap_inner (threading.py:1045)", "Thread._bootstrap (threading.py:1002)"])
    # left with threadscope's hook under threading's _bootstrap: shown as that one frame
    assert worker[2] == (OFFSET + 9_000_000, ["Thread._bootstrap (threading.py:1002)"])


def test_py_spys_closing_of_open_slices_is_not_a_change() -> None:
    assert max(r["t0"] for r in _records()) == OFFSET + 9_500_000
    assert len(_stacks(101)) == 3


def test_a_change_only_in_threadscopes_frames_is_not_a_new_record() -> None:
    # The bootstrap's line changed at 5000 along with the user's frame appearing; a change of
    # bootstrap lines alone (here: none after) would repeat the same visible stack.
    events = [*EVENTS[:7], _e(2000, MAIN_PTHREAD, "_await_go", OWN + "bootstrap.py", 126),
              _b(2000, MAIN_PTHREAD, "_await_go", OWN + "bootstrap.py", 127)]
    records = list(to_records(stack_changes(events), 0, Labeller(OWN)))
    assert len(records) == 1


def test_threads_changing_at_one_moment_share_a_record() -> None:
    events = [_b(7, MAIN_PTHREAD, "thread (100): MainThread"), _b(7, MAIN_PTHREAD, "f", "/a.py", 1),
              _b(7, WORKER_PTHREAD, "thread (101): w"), _b(7, WORKER_PTHREAD, "g", "/a.py", 2)]
    (record,) = to_records(stack_changes(events), 0, Labeller(OWN))
    assert record["t0"] == record["t1"] == 7000
    assert [t["tid"] for t in record["threads"]] == [100, 101]


def test_file_names_are_shortened_like_py_spy_dump(tmp_path: Path) -> None:
    package = tmp_path / "site" / "pkg" / "sub"
    package.mkdir(parents=True)
    for folder in (package, package.parent):
        (folder / "__init__.py").write_text("")
    short = ShortNames()
    assert short(str(package / "mod.py")) == "pkg/sub/mod.py"
    assert short(str(tmp_path / "site" / "script.py")) == "script.py"
    assert short("<frozen runpy>") == "<frozen runpy>"


def _changes() -> list[StackChange]:
    return list(stack_changes(EVENTS))


def test_the_clock_offset_comes_from_the_target_moments_both_clocks_saw() -> None:
    true_offset = 50_000_000
    # What the target logged on CLOCK_MONOTONIC: the main thread left the wait 0.4 ms before
    # py-spy saw it (at ts 5000 us), the worker logged its start 0.2 ms before py-spy first saw
    # it in run (6000 us) and its end 2 ms after py-spy last saw it there (8000 us).
    events = [{"ev": "main", "t_ns": true_offset + 4_600_000, "tid": 100},
              {"ev": "start", "t_ns": true_offset + 5_800_000, "tid": 101},
              {"ev": "end", "t_ns": true_offset + 10_000_000, "tid": 101}]
    alignment = align(_changes(), events, PID, spawn_ns=10_000_000, ready_ns=true_offset + 900_000,
                      startup_ns=2_000_000, own_code=OWN)
    assert alignment.anchors == 3
    assert alignment.low_ns == true_offset - 200_000  # the worker's start: the closest below
    assert alignment.high_ns == true_offset + 900_000  # py-spy said it sampled: the end is looser
    assert alignment.low_ns <= alignment.offset_ns <= alignment.high_ns
    assert alignment.uncertainty_ns <= 1_100_000
    records = list(to_records(_changes(), alignment.offset_ns, Labeller(OWN)))
    assert abs(records[1]["t0"] - (true_offset + 5_000_000)) <= alignment.uncertainty_ns


def test_without_target_anchors_the_offset_is_spawn_plus_start_up() -> None:
    alignment = align(_changes(), [], PID, spawn_ns=1_000_000_000, ready_ns=1_030_000_000,
                      startup_ns=2_000_000, own_code=OWN)
    assert alignment.anchors == 0
    assert alignment.offset_ns == 1_002_000_000
    assert (alignment.low_ns, alignment.high_ns) == (1_000_000_000, 1_030_000_000)
    assert alignment.uncertainty_ns == 28_000_000


def test_a_stack_begun_again_under_a_second_header_keeps_only_the_innermost_one() -> None:
    # Seen with --subprocesses on a forked child: the first frames were never closed and the
    # stack began again under another process/thread header.
    child = 300
    header = f'process {child}:"python -m tracer.bootstrap cfg.json"'
    events = [
        {**_b(1000, MAIN_PTHREAD, header), "pid": child},
        {**_b(1000, MAIN_PTHREAD, "thread (100): MainThread"), "pid": child},
        {**_b(1000, MAIN_PTHREAD, "_run_module_as_main", "<frozen runpy>", 198), "pid": child},
        {**_b(2000, MAIN_PTHREAD, header), "pid": child},
        {**_b(2000, MAIN_PTHREAD, "thread (300): MainThread"), "pid": child},
        {**_b(2000, MAIN_PTHREAD, "burn", "/home/me/app.py", 19), "pid": child},
    ]
    last = list(stack_changes(events))[-1]
    assert (last.pid, last.tid) == (child, 300)
    assert [f.name for f in last.frames] == ["burn"]
