"""What a tracer that dies can leave on the machine, and how it avoids leaving it.

A recording changes system-wide state: ``perf record`` children, uprobes in tracefs (earlier
versions), a tracefs mount (:mod:`tracer.tracefs`). The normal paths (stop, ``finally``, ``atexit``,
SIGTERM turned into KeyboardInterrupt) undo it all; SIGKILL runs none of them. So children are
started to stop by themselves when the tracer dies, and what still survives is found by its
threadscope name or path and removed by the next run or by ``tracer doctor``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tracer import raw_files
from tracer.procfs import process_alive, read_text

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
UPROBE_GROUP_PREFIX = "threadscope_"  # groups were named threadscope_<tracer pid>_<target pid>
_PERF_PROBE_TIMEOUT_S = 30.0  # perf probe -d reads nothing big; this bounds a wedged perf
# A stray perf record gets what the tracer would have given it: SIGINT (flush and finish, up to
# 15 s for a big buffer on a slow disk), then SIGTERM, then SIGKILL.
_STRAY_STOP = ((signal.SIGINT, 15.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))


def die_with_parent(sig: int = signal.SIGINT) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when its parent
    dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``; Linux only, a no-op elsewhere). SIGINT
    suits ``perf record``: it flushes its buffers and exits.

    The kernel sends the signal when the *thread* that started the child exits, not the process:
    callers must start the child from a thread that outlives it (the main thread, or a thread
    that waits for the child), never from a short-lived helper thread. The setting survives
    ``exec`` (except into a set-user-id program) but not ``fork``: grandchildren are not covered.
    The parent may die before the child sets it; the child then signals itself.

    libc is loaded here, in the parent: a forked child of a threaded program must not ``dlopen``.
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong)
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), sig)

    return in_child


# -- uprobe groups of earlier versions -------------------------------------------------------------


def _perf_probe_delete(group: str) -> bool:
    try:
        result = subprocess.run(["perf", "probe", "-q", "-d", f"{group}:*"], capture_output=True,
                                timeout=_PERF_PROBE_TIMEOUT_S, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def stale_uprobe_groups(uprobe_events: str) -> list[str]:
    """threadscope groups in ``uprobe_events`` text whose tracer process no longer exists."""
    groups = set(re.findall(rf"^[pr]:({UPROBE_GROUP_PREFIX}(\d+)_\d+)/", uprobe_events,
                            flags=re.MULTILINE))
    return sorted(group for group, owner in groups if not process_alive(int(owner)))


def delete_stale_uprobe_groups(
    tracefs: Path | None = None, delete: Callable[[str], bool] = _perf_probe_delete,
) -> list[str]:
    """Delete the uprobe groups ``threadscope_<tracer pid>_<target pid>`` of tracers that are gone
    (killed outright; versions before the futex recorder installed them) and return their names.

    Uprobes stay in the kernel while tracefs is unmounted, but they can be seen only through it:
    ``tracefs`` defaults to the mounted one; hold a :func:`tracer.tracefs.ensure_tracefs` lease
    to see them on a machine where it may be unmounted. Returns [] when none can be seen.
    """
    if tracefs is None:
        from tracer.tracefs import find_tracefs

        tracefs = find_tracefs()
    if tracefs is None:
        return []
    text = read_text(str(tracefs / "uprobe_events"))
    return [group for group in stale_uprobe_groups(text) if delete(group)]


# -- perf record children of dead tracers ----------------------------------------------------------


@dataclass(frozen=True)
class StrayPerf:
    """A ``perf record`` writing into a threadscope run folder whose tracer is gone."""

    pid: int
    output: Path  # .../raw/perf.data

    def describe(self) -> str:
        return f"perf record (pid {self.pid}) still writing {self.output}"


def _perf_output(argv: list[str], cwd: Path) -> Path | None:
    """The ``-o``/``--output`` file of a ``perf record`` command line, else None."""
    if len(argv) < 2 or Path(argv[0]).name != "perf" or argv[1] != "record":
        return None
    for index, arg in enumerate(argv[2:], 2):
        if arg == "--":
            break
        value = None
        if arg in ("-o", "--output") and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--output="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2:
            value = arg[2:]
        if value is not None:
            path = Path(value)
            return path if path.is_absolute() else cwd / path
    return None


def _controller_of(raw: Path) -> int | None:
    """The tracer pid that ``tracer run`` wrote into the run's bootstrap.json, if any."""
    try:
        return int(json.loads((raw / raw_files.BOOTSTRAP).read_text())["controller_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class _Stat:
    state: str
    ppid: int
    started: int  # clock ticks after boot


def _stat(proc: Path, pid: int) -> _Stat | None:
    """State, parent and start time from ``PROC/PID/stat``; None if there is no such process.
    The command name may hold spaces and parentheses, so fields count from the last ``)``."""
    text = read_text(str(proc / str(pid) / "stat"))
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return _Stat(state=fields[0], ppid=int(fields[1]), started=int(fields[19]))
    except (IndexError, ValueError):
        return None


def find_stray_perf_records(proc: Path = Path("/proc")) -> list[StrayPerf]:
    """``perf record`` processes writing ``<run folder>/raw/perf.data`` whose tracer is dead.

    ``tracer run`` names its pid in the run's ``raw/bootstrap.json``: the tracer is dead when that
    pid is gone, a zombie, or a newer process (started after perf: the pid was reused). Runs that
    name no tracer (``attach``) count as dead only once perf was handed to init (pid 1). A perf
    record of anyone else's, or of a live tracer, is never touched.
    """
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        argv = read_text(str(entry / "cmdline")).split("\0")[:-1]
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            cwd = Path("/")
        output = _perf_output(argv, cwd)
        perf = _stat(proc, int(entry.name))
        if (output is None or output.name != raw_files.PERF_DATA or output.parent.name != "raw"
                or perf is None):
            continue
        controller = _controller_of(output.parent)
        if controller is not None:
            tracer = _stat(proc, controller)
            dead = tracer is None or tracer.state == "Z" or tracer.started > perf.started
        else:
            dead = perf.ppid == 1
        if dead:
            found.append(StrayPerf(pid=int(entry.name), output=output))
    return sorted(found, key=lambda stray: stray.pid)


def stop_stray_perf_records(proc: Path = Path("/proc")) -> list[str]:
    """Stop every :func:`find_stray_perf_records` process as the tracer would have (SIGINT: perf
    finishes its file); one sentence per process for ``tracer doctor``."""
    done = []
    for stray in find_stray_perf_records(proc):
        for sig, wait_s in _STRAY_STOP:
            try:
                os.kill(stray.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                done.append(f"cannot stop {stray.describe()}: it is not ours (run "
                            "`sudo python -m tracer doctor`)")
                break
            deadline = time.monotonic() + wait_s
            while process_alive(stray.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not process_alive(stray.pid):
                done.append(f"stopped {stray.describe()} for a tracer that is gone "
                            f"({signal.Signals(sig).name})")
                break
        else:
            done.append(f"could not stop {stray.describe()}: kill -9 {stray.pid}")
    return done
