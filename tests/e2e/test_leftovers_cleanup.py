"""What a tracer killed with SIGKILL leaves on this machine, made for real and cleaned up: a uprobe
group of a dead tracer pid, and a ``perf record`` still writing into a run folder (root, perf)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tracer.leftovers import (
    delete_stale_uprobe_groups,
    find_stray_perf_records,
    stop_stray_perf_records,
)
from tracer.procfs import process_alive
from tracer.tracefs import find_tracefs

pytestmark = [
    pytest.mark.perf,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("perf") is None,
                       reason="needs root and perf"),
]
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(not LIBC.is_file(), reason="no x86_64 glibc to put a probe in")
def test_a_stale_uprobe_group_is_deleted_and_a_live_one_kept() -> None:
    tracefs = find_tracefs()
    if tracefs is None:
        pytest.skip("tracefs is not mounted")
    dead = _dead_pid()
    stale, live = f"threadscope_{dead}_1", f"threadscope_{os.getpid()}_1"
    try:
        for group in (stale, live):
            subprocess.run(["perf", "probe", "-q", "-x", str(LIBC), "-a",
                            f"{group}:leftover_{group.split('_', 1)[1]}=getpid"],
                           check=True, timeout=60)
        removed = delete_stale_uprobe_groups()
        assert stale in removed
        assert live not in removed
        events = (tracefs / "uprobe_events").read_text()
        assert f"{stale}/" not in events
        assert f"{live}/" in events
    finally:
        for group in (stale, live):
            subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], check=False, timeout=60)


def test_a_perf_record_of_a_killed_tracer_is_stopped_and_its_file_finished(
        tmp_path: Path) -> None:
    raw = tmp_path / "run" / "raw"
    raw.mkdir(parents=True)
    # The "tracer": writes bootstrap.json naming itself, starts perf record as a child (without
    # die_with_parent, as earlier versions did), then is killed with SIGKILL.
    tracer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            f"""
            import json, os, subprocess, time
            raw = {str(raw)!r}
            with open(os.path.join(raw, "bootstrap.json"), "w") as handle:
                json.dump({{"controller_pid": os.getpid()}}, handle)
            perf = subprocess.Popen(["perf", "record", "-e", "task-clock", "-o",
                                     os.path.join(raw, "perf.data"), "--", "sleep", "600"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            print(perf.pid, flush=True)
            time.sleep(600)
            """)],
        stdout=subprocess.PIPE, text=True,
    )
    perf_pid = 0
    try:
        assert tracer.stdout is not None
        perf_pid = int(tracer.stdout.readline())
        # (other strays on the machine, of other people's killed runs, are left out of the checks)
        assert perf_pid not in [s.pid for s in find_stray_perf_records()]  # tracer alive
        tracer.send_signal(signal.SIGKILL)
        tracer.wait(timeout=60)
        assert perf_pid in [s.pid for s in find_stray_perf_records()]
        done = stop_stray_perf_records()
        assert done.count(f"stopped perf record (pid {perf_pid}) still writing {raw / 'perf.data'} "
                          "for a tracer that is gone (SIGINT)") == 1
        assert not process_alive(perf_pid)
        deadline = time.monotonic() + 60
        while (raw / "perf.data").stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        header = subprocess.run(["perf", "report", "-i", str(raw / "perf.data"), "--header-only"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert header.returncode == 0, header.stderr  # perf finished its file on SIGINT
    finally:
        tracer.kill()
        tracer.wait()
        if perf_pid and process_alive(perf_pid):
            os.kill(perf_pid, signal.SIGKILL)
    assert json.loads((raw / "bootstrap.json").read_text())["controller_pid"] == tracer.pid
