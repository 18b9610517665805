"""The tracefs lease on a fake machine: mountinfo is a file and mount/umount are small scripts that
edit it, so every rule (mount only when missing, unmount only our own mount, last holder out,
leases of dead processes) is checked without touching the real tracefs."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracer.errors import RecorderUnavailable
from tracer.tracefs import (
    TracefsHost,
    cleanup_stale,
    ensure_tracefs,
    find_tracefs,
    mount_command,
    tracefs_mounts,
    umount_command,
)

REPO = Path(__file__).resolve().parents[2]

# argv: mount|umount MOUNTINFO POINT. Mounting appends a tracefs line with a fresh mount id and
# gives the point an events/ folder, as a real tracefs has; unmounting undoes both.
FAKE_MOUNT = textwrap.dedent(
    """
    import os, sys
    verb, mountinfo, point = sys.argv[1:]
    lines = open(mountinfo).read().splitlines() if os.path.exists(mountinfo) else []
    if verb == "mount":
        serial = mountinfo + ".next"  # a new id per mount (a real kernel may reuse one)
        mount_id = int(open(serial).read()) if os.path.exists(serial) else 40
        open(serial, "w").write(str(mount_id + 1))
        lines.append(f"{mount_id} 23 0:13 / {point} rw,relatime - tracefs nodev rw")
        os.makedirs(os.path.join(point, "events"), exist_ok=True)
    else:
        kept = [line for line in lines if line.split()[4] != point]
        if kept == lines:
            sys.exit("umount: not mounted")
        lines = kept
        os.rmdir(os.path.join(point, "events"))
    open(mountinfo, "w").write("".join(line + chr(10) for line in lines))
    """
)


class FakeMachine:
    def __init__(self, root: Path, is_root: bool = True) -> None:
        self.mountinfo = root / "mountinfo"
        self.mountinfo.write_text("22 1 0:21 / /sys rw - sysfs sysfs rw\n")
        self.points = (root / "tracing", root / "debug_tracing")
        for point in self.points:
            point.mkdir()
        self.state = root / "state"
        self.commands: list[list[str]] = []
        self.root_user = is_root
        self.host = TracefsHost(
            mount_points=self.points, state_dir=self.state, mountinfo=self.mountinfo,
            mount=lambda p: self._command("mount", p), umount=lambda p: self._command("umount", p),
            is_root=lambda: self.root_user,
        )

    def _command(self, verb: str, point: Path) -> list[str]:
        argv = [sys.executable, "-c", FAKE_MOUNT, verb, str(self.mountinfo), str(point)]
        self.commands.append([verb, str(point)])
        return argv

    def mount_by_someone_else(self, point: Path) -> None:
        subprocess.run(self._command("mount", point), check=True)
        self.commands.clear()

    def mounted(self) -> set[Path]:
        return set(tracefs_mounts(self.host))


@pytest.fixture
def machine(tmp_path: Path) -> FakeMachine:
    return FakeMachine(tmp_path)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_real_commands() -> None:
    point = Path("/sys/kernel/tracing")
    assert mount_command(point) == ["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"]
    assert umount_command(point) == ["umount", "/sys/kernel/tracing"]


def test_unmounted_tracefs_is_mounted_for_the_run_and_unmounted_after(
        machine: FakeMachine) -> None:
    assert find_tracefs(machine.host) is None
    lease = ensure_tracefs(machine.host)
    assert lease.path == machine.points[0]
    assert lease.mounted_here is True
    assert machine.mounted() == {machine.points[0]}
    assert "not mounted; threadscope mounted it at" in lease.note
    assert "unmounts it afterwards" in lease.note
    lease.release()
    assert machine.mounted() == set()
    assert lease.note.endswith("for this run and unmounted it afterwards")
    assert list(machine.state.glob("*.tracefs-lease")) == []
    lease.release()  # idempotent: no second umount
    assert [verb for verb, _ in machine.commands] == ["mount", "umount"]


def test_a_tracefs_mounted_by_someone_else_is_never_unmounted(machine: FakeMachine) -> None:
    machine.mount_by_someone_else(machine.points[0])
    lease = ensure_tracefs(machine.host)
    assert lease.mounted_here is False
    assert lease.note == f"tracefs was already mounted at {machine.points[0]}"
    lease.release()
    assert cleanup_stale(machine.host) == []
    assert machine.mounted() == {machine.points[0]}
    assert machine.commands == []


def test_the_debugfs_location_counts_as_mounted(machine: FakeMachine) -> None:
    machine.mount_by_someone_else(machine.points[1])
    lease = ensure_tracefs(machine.host)
    assert (lease.path, lease.mounted_here) == (machine.points[1], False)
    lease.release()
    assert machine.mounted() == {machine.points[1]}


def test_the_last_holder_unmounts(machine: FakeMachine) -> None:
    first = ensure_tracefs(machine.host)
    second = ensure_tracefs(machine.host)  # another recording in the same process
    assert (first.mounted_here, second.mounted_here) == (True, False)
    first.release()
    assert machine.mounted() == {machine.points[0]}
    assert first.kept_for == [os.getpid()]
    assert "stays mounted while threadscope" in first.note
    second.release()
    assert machine.mounted() == set()
    assert "the last one using it, unmounted it" in second.note


def test_a_killed_holder_leaves_a_lease_that_cleanup_removes(machine: FakeMachine) -> None:
    lease = ensure_tracefs(machine.host)
    # What a tracer killed with SIGKILL leaves: its lease file and our mount.
    dead = _dead_pid()
    assert lease.lease_file is not None
    lease.lease_file.rename(machine.state / f"{dead}.0.tracefs-lease")
    lease.released = True  # this process is now "the dead one": forget its lease
    done = cleanup_stale(machine.host)
    assert done == [
        f"removed the tracefs lease of threadscope pid {dead}, which is gone",
        f"unmounted tracefs at {machine.points[0]}, which a threadscope run had mounted and "
        "left behind",
    ]
    assert machine.mounted() == set()
    assert cleanup_stale(machine.host) == []


def test_a_reused_pid_does_not_keep_a_lease_alive(machine: FakeMachine) -> None:
    lease = ensure_tracefs(machine.host)
    assert lease.lease_file is not None
    lease.lease_file.write_text(json.dumps({"pid": os.getpid(), "started": "0"}))
    lease.released = True
    assert len(cleanup_stale(machine.host)) == 2
    assert machine.mounted() == set()


def test_the_next_run_cleans_up_before_taking_its_lease(machine: FakeMachine) -> None:
    dead = _dead_pid()
    old = ensure_tracefs(machine.host)
    assert old.lease_file is not None
    old.lease_file.rename(machine.state / f"{dead}.0.tracefs-lease")
    old.released = True
    lease = ensure_tracefs(machine.host)
    assert lease.cleaned[0].startswith(f"removed the tracefs lease of threadscope pid {dead}")
    assert lease.mounted_here is True
    lease.release()
    assert machine.mounted() == set()


def test_a_mount_replaced_by_someone_else_is_not_ours_any_more(machine: FakeMachine) -> None:
    lease = ensure_tracefs(machine.host)
    assert lease.lease_file is not None
    lease.lease_file.rename(machine.state / f"{_dead_pid()}.0.tracefs-lease")
    lease.released = True
    # The user unmounts our tracefs and mounts their own: it gets a new mount id.
    subprocess.run(machine.host.umount(machine.points[0]), check=True)
    machine.mount_by_someone_else(machine.points[0])
    cleanup_stale(machine.host)
    assert machine.mounted() == {machine.points[0]}
    assert not (machine.state / "tracefs-mounted.json").exists()


def test_not_root_and_unmounted_names_the_command(machine: FakeMachine) -> None:
    host = TracefsHost(mount_points=machine.points, state_dir=machine.state,
                       mountinfo=machine.mountinfo, is_root=lambda: False)  # real commands
    with pytest.raises(RecorderUnavailable) as caught:
        ensure_tracefs(host)
    assert "only root can mount it" in str(caught.value)
    assert f"sudo mount -t tracefs nodev {machine.points[0]}" in str(caught.value)
    assert not machine.state.exists()


def test_not_root_uses_a_mounted_tracefs_without_a_lease_file(machine: FakeMachine) -> None:
    machine.mount_by_someone_else(machine.points[0])
    machine.root_user = False
    lease = ensure_tracefs(machine.host)
    assert (lease.path, lease.mounted_here, lease.lease_file) == (machine.points[0], False, None)
    lease.release()
    assert machine.mounted() == {machine.points[0]}


def test_a_failing_mount_says_what_failed(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    host = TracefsHost(mount_points=machine.points, state_dir=machine.state,
                       mountinfo=machine.mountinfo,
                       mount=lambda p: [sys.executable, "-c", "import sys; sys.exit('no way')"],
                       is_root=lambda: True)
    with pytest.raises(RecorderUnavailable, match=r"mounting it failed \(no way\)"):
        ensure_tracefs(host)
    assert not (machine.state / "tracefs-mounted.json").exists()


def test_an_exiting_holder_releases_through_atexit(machine: FakeMachine) -> None:
    """A process that never calls release() (an exception, sys.exit) still unmounts."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tracer.tracefs import TracefsHost, ensure_tracefs
        fake = {FAKE_MOUNT!r}
        info, state = Path({str(machine.mountinfo)!r}), Path({str(machine.state)!r})
        points = (Path({str(machine.points[0])!r}), Path({str(machine.points[1])!r}))
        host = TracefsHost(points, state, info,
                           mount=lambda p: [sys.executable, "-c", fake, "mount", str(info), str(p)],
                           umount=lambda p: [sys.executable, "-c", fake, "umount", str(info),
                                             str(p)],
                           is_root=lambda: True)
        lease = ensure_tracefs(host)
        print(lease.mounted_here, flush=True)
        raise SystemExit(3)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)
    assert (result.returncode, result.stdout.strip()) == (3, "True"), result.stderr
    assert machine.mounted() == set()
    assert list(machine.state.glob("*.tracefs-lease")) == []


def test_without_a_state_directory_nothing_is_mounted_or_unmounted(machine: FakeMachine) -> None:
    blocker = machine.state.parent / "a_file"
    blocker.write_text("")
    host = dataclasses.replace(machine.host, state_dir=blocker / "state")  # mkdir fails
    with pytest.raises(RecorderUnavailable, match="cannot keep its lease in"):
        ensure_tracefs(host)
    assert machine.mounted() == set()
    machine.mount_by_someone_else(machine.points[0])
    lease = ensure_tracefs(host)
    assert (lease.mounted_here, lease.lease_file) == (False, None)
    lease.release()
    assert machine.mounted() == {machine.points[0]}
