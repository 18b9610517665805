"""What a killed tracer leaves behind: children that stop by themselves (for real, with SIGKILL),
stale uprobe groups and stray perf records found on fake tracefs and /proc trees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tracer.leftovers import (
    _perf_output,
    delete_stale_uprobe_groups,
    find_stray_perf_records,
    stale_uprobe_groups,
)
from tracer.procfs import process_alive

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0  # generous: a loaded 2-core box may take a while to deliver and reap

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return False


# The middle process starts a long sleeper with die_with_parent (from the main thread, or from a
# short-lived thread), prints its pid, and sleeps.
MIDDLE = textwrap.dedent(
    """
    import signal, subprocess, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from tracer.leftovers import die_with_parent
    def start():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 preexec_fn=die_with_parent(signal.SIGTERM))
        print(child.pid, flush=True)
    if sys.argv[2] == "thread":
        helper = threading.Thread(target=start)
        helper.start()
        helper.join()
    else:
        start()
    time.sleep(600)
    """
)


def _start_middle(how: str) -> tuple[subprocess.Popen[str], int]:
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, str(REPO), how],
                              stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    return middle, int(middle.stdout.readline())


@linux_only
def test_a_child_stops_when_its_parent_is_killed_with_sigkill() -> None:
    middle, grandchild = _start_middle("main")
    try:
        assert process_alive(grandchild)
        middle.send_signal(signal.SIGKILL)
        middle.wait(timeout=DEADLINE_S)
        assert _gone_within(grandchild, DEADLINE_S)
    finally:
        middle.kill()
        middle.wait()
        if process_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


@linux_only
def test_the_signal_follows_the_thread_that_started_the_child() -> None:
    """The documented caveat: the starting thread's exit is enough, the process lives on."""
    middle, grandchild = _start_middle("thread")
    try:
        assert _gone_within(grandchild, DEADLINE_S)
        assert middle.poll() is None
    finally:
        middle.kill()
        middle.wait()
        if process_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_stale_groups_are_those_of_dead_tracers() -> None:
    dead, live = _dead_pid(), os.getpid()
    events = (
        f"p:threadscope_{dead}_123/take_gil_{dead}_123 /usr/lib/libpython3.11.so:0x1234\n"
        f"r:threadscope_{dead}_123/take_gil_ret_{dead}_123 /usr/lib/libpython3.11.so:0x1234\n"
        f"p:threadscope_{live}_77/drop_gil_{live}_77 /usr/lib/libpython3.11.so:0x99\n"
        f"p:probe_libc/getpid /usr/lib/libc.so.6:0x55\n"
    )
    assert stale_uprobe_groups(events) == [f"threadscope_{dead}_123"]


def test_delete_stale_uprobe_groups_returns_what_it_removed(tmp_path: Path) -> None:
    dead_a, dead_b = _dead_pid(), _dead_pid()
    (tmp_path / "uprobe_events").write_text(
        f"p:threadscope_{dead_a}_1/take_gil /x:0x1\n"
        f"p:threadscope_{dead_b}_2/take_gil /x:0x1\n"
        f"p:threadscope_{os.getpid()}_3/take_gil /x:0x1\n"
    )
    asked: list[str] = []

    def delete(group: str) -> bool:
        asked.append(group)
        return group != f"threadscope_{dead_b}_2"  # this one is busy: perf probe fails

    assert delete_stale_uprobe_groups(tmp_path, delete) == [f"threadscope_{dead_a}_1"]
    assert sorted(asked) == sorted([f"threadscope_{dead_a}_1", f"threadscope_{dead_b}_2"])
    assert delete_stale_uprobe_groups(tmp_path / "nowhere", delete) == []


@pytest.mark.parametrize(("argv", "expected"), [
    (["perf", "record", "-k", "mono", "-o", "run/raw/perf.data", "-p", "1"],
     "/cwd/run/raw/perf.data"),
    (["/usr/bin/perf", "record", "--output=/abs/raw/perf.data"], "/abs/raw/perf.data"),
    (["perf", "record", "-o/abs/raw/perf.data"], "/abs/raw/perf.data"),
    (["perf", "record", "--", "prog", "-o", "x"], None),
    (["perf", "script", "-o", "x"], None),
    (["python", "record", "-o", "x"], None),
])
def test_perf_output_is_read_from_the_command_line(argv: list[str], expected: str | None) -> None:
    found = _perf_output(argv, Path("/cwd"))
    assert (str(found) if found else None) == expected


def _fake_process(proc: Path, pid: int, argv: list[str], ppid: int, started: int,
                  state: str = "S") -> None:
    entry = proc / str(pid)
    entry.mkdir(parents=True)
    (entry / "cmdline").write_text("\0".join(argv) + "\0")
    # the command name holds a space and a parenthesis: fields count from the last ")"
    fields = [state, str(ppid)] + ["0"] * 17 + [str(started)] + ["0"] * 10
    (entry / "stat").write_text(f"{pid} (a b) c) " + " ".join(fields) + "\n")
    os.symlink("/", entry / "cwd")


def _run_folder(root: Path, name: str, controller: int | None) -> Path:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    config = {"raw_dir": str(raw)} | ({} if controller is None else {"controller_pid": controller})
    (raw / "bootstrap.json").write_text(json.dumps(config))
    return raw / "perf.data"


def test_only_perf_records_of_dead_tracers_are_strays(tmp_path: Path) -> None:
    proc, runs = tmp_path / "proc", tmp_path / "runs"
    _fake_process(proc, 100, ["python", "-m", "tracer", "run", "x"], ppid=1, started=500)
    _fake_process(proc, 300, ["python", "-m", "tracer", "run", "y"], ppid=1, started=900)
    record = ["perf", "record", "-k", "mono", "-p", "7", "-o"]
    # 201: its tracer 100 is alive and older than perf: not a stray
    _fake_process(proc, 201, [*record, str(_run_folder(runs, "live", 100))], 100, 600)
    # 202: its tracer 150 is gone
    _fake_process(proc, 202, [*record, str(_run_folder(runs, "dead", 150))], 1, 600)
    # 203: pid 300 is alive but started after perf: a reused pid, the tracer is gone
    _fake_process(proc, 203, [*record, str(_run_folder(runs, "reused", 300))], 1, 800)
    # 204: its tracer 160 is a zombie
    _fake_process(proc, 160, ["python"], ppid=1, started=100, state="Z")
    _fake_process(proc, 204, [*record, str(_run_folder(runs, "zombie", 160))], 160, 600)
    # 205: an attach run (no tracer named) handed to init; 206: one still with its parent
    _fake_process(proc, 205, [*record, str(_run_folder(runs, "attach_dead", None))], 1, 600)
    _fake_process(proc, 206, [*record, str(_run_folder(runs, "attach_live", None))], 100, 600)
    # 207: somebody else's perf record, orphaned, not writing into a run folder
    _fake_process(proc, 207, ["perf", "record", "-o", str(tmp_path / "mine.data")], 1, 600)
    strays = find_stray_perf_records(proc)
    assert [s.pid for s in strays] == [202, 203, 204, 205]
    assert strays[0].output == runs / "dead" / "raw" / "perf.data"
    assert "perf record (pid 202) still writing" in strays[0].describe()
