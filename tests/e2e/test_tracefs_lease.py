"""The tracefs lease on this machine's real tracefs (root only): unmount it, let threadscope mount
it for a lease and unmount it on release, and clean up after a holder killed with SIGKILL.

The lease state lives in a private directory so that other threadscope runs on the machine (their
leases in /run/threadscope) cannot change the outcome; tracefs is always mounted again at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO
from tracer.tracefs import MOUNT_POINT, TracefsHost, cleanup_stale, ensure_tracefs, tracefs_mounts

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not MOUNT_POINT.is_dir(),
                                reason="needs root and a kernel with tracefs")


def _mounted() -> bool:
    return MOUNT_POINT in tracefs_mounts()


@pytest.fixture
def unmounted() -> Iterator[None]:
    """tracefs unmounted for the test, mounted again afterwards whatever happened."""
    if _mounted():
        result = subprocess.run(["umount", str(MOUNT_POINT)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot unmount tracefs here: {result.stderr.strip()}")
    try:
        yield
    finally:
        if not _mounted():
            subprocess.run(["mount", "-t", "tracefs", "nodev", str(MOUNT_POINT)], check=True)


def test_lease_mounts_and_unmounts_the_real_tracefs(unmounted: None, tmp_path: Path) -> None:
    host = TracefsHost(state_dir=tmp_path / "state")
    assert not _mounted()
    lease = ensure_tracefs(host)
    assert lease.mounted_here is True
    assert lease.path == MOUNT_POINT
    assert _mounted()
    assert (MOUNT_POINT / "events" / "syscalls").is_dir()
    lease.release()
    assert not _mounted()
    assert "unmounted it afterwards" in lease.note


def test_a_holder_killed_with_sigkill_is_cleaned_up(unmounted: None, tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(REPO)!r})
            from pathlib import Path
            from tracer.tracefs import TracefsHost, ensure_tracefs
            lease = ensure_tracefs(TracefsHost(state_dir=Path({str(state)!r})))
            print(lease.mounted_here, flush=True)
            time.sleep(600)
            """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        assert _mounted()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert _mounted()  # nothing ran on the way out: the lease and the mount are left behind
    done = cleanup_stale(TracefsHost(state_dir=state))
    assert f"removed the tracefs lease of threadscope pid {holder.pid}, which is gone" in done
    assert not _mounted()
