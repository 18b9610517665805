"""tracefs on loan: mount it when a run needs it and it is missing, and put the machine back.

A fresh machine may have tracefs unmounted even for root (then ``perf`` sees no tracepoints), so a
run mounts it itself rather than fail, and unmounts it afterwards: the machine is left as found.
Several threadscope processes may run at once and only the last one out may unmount, so each holder
keeps a lease file in :data:`STATE_DIR`, and a marker there says that threadscope made the mount
(only then is it ever unmounted). All of it happens under one ``flock``.

A lease is released by :meth:`TracefsLease.release`, by ``atexit``, or, for a tracer killed with
SIGKILL, by :func:`cleanup_stale` in the next run or in ``tracer doctor``: it drops leases whose
process is gone and unmounts a threadscope mount that nobody holds any more.

The marker names the mount by its mount id (``/proc/self/mountinfo``); a tracefs unmounted by
someone else is noticed and never touched. (A kernel may reuse a mount id, so a tracefs that a user
unmounted *and* mounted again between two threadscope runs could be taken for ours; nothing
better is readable on the kernels we support.)
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracer.errors import RecorderUnavailable
from tracer.procfs import process_alive, read_text

MOUNT_POINT = Path("/sys/kernel/tracing")
MOUNT_POINTS = (MOUNT_POINT, Path("/sys/kernel/debug/tracing"))
STATE_DIR = Path("/run/threadscope")  # a tmpfs: a reboot forgets every lease, as it should
_MARKER = "tracefs-mounted.json"
_LEASE_SUFFIX = ".tracefs-lease"
_COMMAND_TIMEOUT_S = 30.0  # mount/umount are instant; this only bounds a wedged system


def mount_command(point: Path) -> list[str]:
    return ["mount", "-t", "tracefs", "nodev", str(point)]


def umount_command(point: Path) -> list[str]:
    return ["umount", str(point)]


@dataclass(frozen=True)
class TracefsHost:
    """Where tracefs lives on this machine and how to (un)mount it; tests pass their own."""

    mount_points: tuple[Path, ...] = MOUNT_POINTS
    state_dir: Path = STATE_DIR
    mountinfo: Path = Path("/proc/self/mountinfo")
    mount: Callable[[Path], list[str]] = mount_command
    umount: Callable[[Path], list[str]] = umount_command
    is_root: Callable[[], bool] = lambda: os.geteuid() == 0


HOST = TracefsHost()


def tracefs_mounts(host: TracefsHost = HOST) -> dict[Path, str]:
    """Mount point -> mount id of every tracefs mounted at one of ``host.mount_points``."""
    found: dict[Path, str] = {}
    for line in read_text(str(host.mountinfo)).splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) > dash + 1 and len(fields) > 4 and fields[dash + 1] == "tracefs":
            point = Path(fields[4].replace("\\040", " "))
            if point in host.mount_points:
                found[point] = fields[0]
    return found


def find_tracefs(host: TracefsHost = HOST) -> Path | None:
    """The first mounted tracefs (in ``host.mount_points`` order) that has ``events/``."""
    mounts = tracefs_mounts(host)
    return next((p for p in host.mount_points if p in mounts and _has_events(p)), None)


def _has_events(point: Path) -> bool:
    try:
        os.stat(point / "events")
    except PermissionError:
        return True  # mounted, but readable by root only: not ours to judge here
    except OSError:
        return False
    return True


@dataclass
class TracefsLease:
    """One process's claim on a mounted tracefs. ``mounted_here``: this lease mounted it."""

    path: Path
    mounted_here: bool
    host: TracefsHost = field(default=HOST, repr=False)
    lease_file: Path | None = field(default=None, repr=False)
    cleaned: list[str] = field(default_factory=list)  # what cleanup_stale did on the way in
    released: bool = False
    unmounted: bool = False
    kept_for: list[int] = field(default_factory=list)  # other live holders at release
    release_error: str = ""

    @property
    def note(self) -> str:
        """One sentence for the report: who mounted tracefs and what became of it."""
        if not self.mounted_here:
            if self.unmounted:
                return (f"tracefs at {self.path} had been mounted by another threadscope run; "
                        "this run, the last one using it, unmounted it afterwards")
            return f"tracefs was already mounted at {self.path}"
        began = f"tracefs was not mounted; threadscope mounted it at {self.path} for this run"
        if self.unmounted:
            return f"{began} and unmounted it afterwards"
        if self.release_error:
            return f"{began}; unmounting it failed ({self.release_error})"
        if self.kept_for:
            pids = ", ".join(str(p) for p in self.kept_for)
            return f"{began}; it stays mounted while threadscope (pid {pids}) still uses it"
        return f"{began} and unmounts it afterwards"

    def release(self) -> None:
        """Give the lease back; unmount if threadscope mounted it and nobody else holds one.
        Idempotent, never raises (it runs from ``atexit`` and ``finally`` blocks)."""
        if self.released:
            return
        self.released = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.release)
        try:
            with _locked(self.host) as state:
                if self.lease_file is not None:
                    self.lease_file.unlink(missing_ok=True)
                self.kept_for = [pid for pid, _ in _live_leases(state)]
                if not self.kept_for:
                    done, error = _unmount_orphan(self.host, state)
                    self.unmounted = done is not None
                    self.release_error = error
        except _NoStateDir:
            pass  # not root: nothing was leased
        except OSError as exc:
            self.release_error = str(exc)


def ensure_tracefs(host: TracefsHost = HOST) -> TracefsLease:
    """A lease on a mounted tracefs, mounting it first if needed (root only).

    Raises :class:`RecorderUnavailable` with the command that would fix it when tracefs is not
    mounted and cannot be. The lease is released by ``atexit`` if the caller never does it.
    """
    cleaned = cleanup_stale(host)
    try:
        with _locked(host) as state:
            mounted = find_tracefs(host)
            mounted_here = False
            if mounted is None:
                mounted = _mount(host, state)
                mounted_here = True
            lease = TracefsLease(path=mounted, mounted_here=mounted_here, host=host,
                                 lease_file=_write_lease(state), cleaned=cleaned)
    except (_NoStateDir, OSError) as exc:
        # Not root, or no state directory (a read-only /run): never ours to mount or unmount,
        # since no other threadscope process could know; a lease without a file.
        mounted = find_tracefs(host)
        if mounted is None:
            why = ("only root can mount it" if isinstance(exc, _NoStateDir) else
                   f"threadscope cannot keep its lease in {host.state_dir} ({exc})")
            raise _cannot_mount(host, why) from None
        return TracefsLease(path=mounted, mounted_here=False, host=host, cleaned=cleaned)
    atexit.register(lease.release)
    return lease


def cleanup_stale(host: TracefsHost = HOST) -> list[str]:
    """Drop leases of dead processes and unmount a threadscope tracefs nobody holds; returns one
    sentence per thing done (for ``tracer doctor``). Never unmounts a tracefs threadscope did not
    mount."""
    done: list[str] = []
    try:
        with _locked(host) as state:
            for lease in sorted(state.glob(f"*{_LEASE_SUFFIX}")):
                pid = _lease_pid(lease)
                if pid is None or not _same_process(pid, _lease_started(lease)):
                    lease.unlink(missing_ok=True)
                    done.append(f"removed the tracefs lease of threadscope pid {pid}, "
                                "which is gone")
            if not _live_leases(state):
                point, error = _unmount_orphan(host, state)
                if point is not None:
                    done.append(f"unmounted tracefs at {point}, which a threadscope run had "
                                "mounted and left behind")
                elif error:
                    done.append(f"could not unmount tracefs left by threadscope: {error}")
    except _NoStateDir:
        pass
    except OSError as exc:
        done.append(f"could not clean threadscope's tracefs state in {host.state_dir}: {exc}")
    return done


# -- state directory -------------------------------------------------------------------------------


class _NoStateDir(Exception):
    """Not root: there is no state directory we may write, so nothing to lease or clean."""


@contextlib.contextmanager
def _locked(host: TracefsHost) -> Iterator[Path]:
    if not host.is_root():
        raise _NoStateDir
    state = host.state_dir
    state.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield state
    finally:
        os.close(fd)  # closing drops the flock


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (start time in clock ticks): a pid with another start time is
    another process that reused the number."""
    stat = read_text(f"/proc/{pid}/stat")
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _same_process(pid: int, started: str) -> bool:
    return process_alive(pid) and _start_time(pid) == started


def _write_lease(state: Path) -> Path:
    pid = os.getpid()
    serial = 0
    while (path := state / f"{pid}.{serial}{_LEASE_SUFFIX}").exists():
        serial += 1  # one process may hold several (``run all``, nested recordings)
    path.write_text(json.dumps({"pid": pid, "started": _start_time(pid)}))
    return path


def _lease_pid(lease: Path) -> int | None:
    try:
        return int(lease.name.split(".", 1)[0])
    except ValueError:
        return None


def _lease_started(lease: Path) -> str:
    try:
        return str(json.loads(lease.read_text()).get("started", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _live_leases(state: Path) -> list[tuple[int, Path]]:
    live = []
    for lease in sorted(state.glob(f"*{_LEASE_SUFFIX}")):
        pid = _lease_pid(lease)
        if pid is not None and _same_process(pid, _lease_started(lease)):
            live.append((pid, lease))
    return live


# -- mounting --------------------------------------------------------------------------------------


def _run(argv: list[str]) -> str:
    """Run a mount command; "" on success, else its message."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                timeout=_COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode == 0:
        return ""
    lines = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


def _cannot_mount(host: TracefsHost, why: str) -> RecorderUnavailable:
    command = " ".join(host.mount(host.mount_points[0]))
    return RecorderUnavailable(f"tracefs is not mounted and {why}: run `sudo {command}` "
                               "(or run threadscope as root, which mounts it for each run)")


def _mount(host: TracefsHost, state: Path) -> Path:
    point = host.mount_points[0]
    if not point.is_dir():
        raise RecorderUnavailable(
            f"this kernel has no {point} (built without tracefs, CONFIG_TRACING?); perf's "
            "tracepoints need it")
    error = _run(host.mount(point))
    mount_id = tracefs_mounts(host).get(point)
    if error or mount_id is None:
        raise _cannot_mount(host, f"mounting it failed ({error or 'not in mountinfo'})")
    try:
        (state / _MARKER).write_text(json.dumps({"path": str(point), "mount_id": mount_id,
                                                 "pid": os.getpid()}))
    except OSError:
        _run(host.umount(point))  # a mount nobody could later prove ours must not stay
        raise
    if not _has_events(point):
        _unmount_orphan(host, state)
        raise RecorderUnavailable(f"tracefs at {point} has no events/ (a kernel without "
                                  "CONFIG_EVENT_TRACING): no tracepoints to record")
    return point


def _unmount_orphan(host: TracefsHost, state: Path) -> tuple[Path | None, str]:
    """Unmount the tracefs the marker names, if it is still that mount: (point, "") when done,
    (None, why) when it failed, (None, "") when there was nothing of ours to unmount."""
    marker = state / _MARKER
    try:
        record = json.loads(marker.read_text())
        point = Path(record["path"])
        mount_id = str(record["mount_id"])
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError, KeyError, TypeError):
        marker.unlink(missing_ok=True)  # unreadable: we cannot prove the mount is ours
        return None, ""
    if tracefs_mounts(host).get(point) != mount_id:
        marker.unlink(missing_ok=True)  # someone else unmounted it: not ours any more
        return None, ""
    error = _run(host.umount(point))
    if error:
        return None, f"{' '.join(host.umount(point))}: {error}"
    marker.unlink(missing_ok=True)
    return point, ""
