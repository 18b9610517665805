"""The exact GIL recorder: perf uprobes on ``take_gil``/``drop_gil``, plus context switches.

Every GIL request (``take_gil`` entry), grant (its return) and release (``drop_gil``) of the
target's threads is recorded with its thread id, on CLOCK_MONOTONIC (``perf record -k mono``),
together with ``sched:sched_switch`` (off CPU, with the kernel's ``prev_state``) and perf's own
switch records (``--switch-events``, on CPU again). :mod:`tracer.model.gil_exact` reads the text.

Checked on this machine (Debian 12, perf 6.1, pyenv CPython 3.11.7 / 3.12.1 / 3.13.0):

- ``perf record -p PID`` follows threads and child processes created after it attached (its
  per-thread events are opened with ``inherit``): threads, ``fork`` children and ``spawn``
  children that exec the same libpython all showed up with their own GIL events.
- Clock: a probe event and ``time.monotonic_ns()`` read by the target around ``time.sleep``
  are in causal order (t1 <= drop_gil <= take_gil return <= t2), with drop - t1 = 1.7-10 us and
  t2 - return = 1-6.3 us on 3.11/3.12/3.13: perf ``-k mono`` is the target's CLOCK_MONOTONIC to
  within ~10 us, a bound set by the interpreter's path to the probe, not by a clock offset
  (``tests/e2e/test_perf_gil_recorder.py`` re-measures it).
- Cost: three CPU-bound threads (0.35-0.6 s) ran 0.98-1.05x their untraced time (median of 7
  alternating pairs per version; the uprobes fire ~5 times per 5 ms GIL hand-off).
- ``perf record`` is started with events disabled (``-D -1``) and a control fifo; :meth:`start`
  returns once perf acknowledges ``enable``, so it is recording for sure, without a fixed sleep
  (0.2-1 s here).

Probes are system-wide kernel state, so they are deleted in :meth:`stop` whatever happened, from an
``atexit`` hook if the session dies before it calls :meth:`stop`, and groups left by a previous
session that was killed outright are deleted when the next one starts.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tracer.errors import CorruptRecording, RecorderUnavailable
from tracer.model.gil_exact import parse_perf_script
from tracer.model.schema import Source
from tracer.recorders.base import RecordContext, Recorder

_PROBE_ATTEMPTS = 3
_GROUP_PREFIX = "threadscope_"
_TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))

# Bounds on every subprocess, so nothing here can hang a run. ``perf probe`` reads DWARF of a 20 MB
# libpython in ~0.1 s here; perf record's start-up took 0.2-1 s; 20 s leaves room for a loaded box.
_QUICK_TIMEOUT_S = 5.0
_PROBE_TIMEOUT_S = 30.0
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 15.0
_SCRIPT_TIMEOUT_S = 120.0

# perf's ring buffer, in 4 KiB pages per CPU (16 MiB). GIL hand-offs plus context switches of a busy
# target reach ~10^4-10^5 events/s at ~40 bytes each; the default 512 KiB could drop some on a slow
# box while perf writes to disk.
_MMAP_PAGES = 4096

_LIB_QUERY = (
    "import json, sys, sysconfig as s; print(json.dumps({'executable': sys.executable, "
    "'shared': s.get_config_var('Py_ENABLE_SHARED'), 'libdir': s.get_config_var('LIBDIR'), "
    "'ldlibrary': s.get_config_var('LDLIBRARY'), 'soname': s.get_config_var('INSTSONAME'), "
    "'version': '%d.%d' % sys.version_info[:2]}))"
)

# ``perf script`` fields: the parser needs pid/tid, the ns timestamp, the event name and, for
# sched_switch, its payload (prev_pid, prev_state, next_pid).
_SCRIPT_ARGS = (
    "-F",
    "tid,pid,time,event,trace",
    "--ns",
    "--show-switch-events",
    "--show-task-events",
)


class PerfGilRecorder(Recorder):
    """Exact GIL hand-offs of one target process (and its children sharing its libpython)."""

    name = "perf"

    def __init__(self) -> None:
        self._suffix = ""
        self._binary: Path | None = None  # libpython (or a static python) holding take_gil
        self._group: str | None = None
        self._probes_installed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._fifo_dir: Path | None = None
        self._raw_dir: Path | None = None
        self._stopped = False
        self._notes: list[str] = []
        self._counts: Counter[str] = Counter()
        self._error: str | None = None
        self._atexit_registered = False

    # -- check ------------------------------------------------------------------------------------

    def check(self, ctx: RecordContext) -> None:
        if not sys.platform.startswith("linux"):
            raise RecorderUnavailable(f"perf uprobes need Linux (this is {sys.platform})")
        if shutil.which("perf") is None:
            raise RecorderUnavailable(
                "`perf` is not on PATH; install it (Debian/Ubuntu: apt install linux-perf)"
            )
        _check_permissions()
        self._binary = locate_gil_binary(ctx.python)

    # -- start ------------------------------------------------------------------------------------

    def start(self, ctx: RecordContext) -> None:
        if ctx.pid <= 0:
            raise ValueError("PerfGilRecorder.start needs ctx.pid of the running target")
        self._raw_dir = ctx.raw_dir
        ctx.raw_dir.mkdir(parents=True, exist_ok=True)
        binary = self._binary or locate_gil_binary(ctx.python)
        loaded = _loaded_gil_binary(ctx.pid)
        if loaded is not None and loaded.resolve() != binary:
            _require_gil_symbols(loaded, ctx.python)
            binary = loaded.resolve()
        self._binary = binary
        _delete_stale_groups()
        self._group = f"{_GROUP_PREFIX}{os.getpid()}_{ctx.pid}"
        # perf wants event names unique across groups: the same suffix makes them so
        self._suffix = f"_{os.getpid()}_{ctx.pid}"
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            self._add_probes(binary)
            self._start_perf_record(ctx)
        except RecorderUnavailable as exc:
            self._error = str(exc)
            self.stop()
            raise
        except Exception as exc:  # a reason for the run to go on without perf, not a crash
            self._error = f"perf recorder failed to start: {exc}"
            self.stop()
            raise RecorderUnavailable(self._error) from exc
        except BaseException:  # Ctrl-C while starting: clean up, then let it through
            self.stop()
            raise

    def _add_probes(self, binary: Path) -> None:
        assert self._group is not None
        group = self._group
        _run(["perf", "probe", "-q", "-d", f"{group}:*"], _QUICK_TIMEOUT_S)  # a pid reused
        self._probes_installed = True  # from here on, stop() deletes whatever got added
        sfx = self._suffix
        # Adding uprobes while another session adds or deletes its own fails now and then
        # (tracefs is shared by the whole system): try again a couple of times first.
        for attempt in range(_PROBE_ATTEMPTS):
            result = _run(
                [
                    "perf", "probe", "-q", "-x", str(binary),
                    "-a", f"{group}:take_gil{sfx}=take_gil",
                    "-a", f"{group}:take_gil_ret{sfx}=take_gil%return",  # perf adds __return
                    "-a", f"{group}:drop_gil{sfx}=drop_gil",
                ],
                _PROBE_TIMEOUT_S,
            )  # fmt: skip
            if result.returncode == 0:
                break
            _run(["perf", "probe", "-q", "-d", f"{group}:*"], _QUICK_TIMEOUT_S)
            time.sleep(0.2 * (attempt + 1))
        if result.returncode != 0:
            raise RecorderUnavailable(
                f"perf probe could not add take_gil/drop_gil uprobes in {binary}: "
                f"{_last_line(result.stderr)}"
            )

    def _start_perf_record(self, ctx: RecordContext) -> None:
        assert self._group is not None
        group = self._group
        self._fifo_dir = Path(tempfile.mkdtemp(prefix="threadscope-perf-"))
        ctl, ack = self._fifo_dir / "ctl", self._fifo_dir / "ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        # O_RDWR never blocks on a fifo (Linux), whether or not perf has opened its end yet.
        ctl_fd = os.open(ctl, os.O_RDWR)
        ack_fd = os.open(ack, os.O_RDWR | os.O_NONBLOCK)
        log = (ctx.raw_dir / "perf_record.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                [
                    "perf", "record", "-k", "mono", "--switch-events",
                    "-D", "-1", "--control", f"fifo:{ctl},{ack}",
                    "-m", str(_MMAP_PAGES),
                    "-e", f"{group}:take_gil{self._suffix}",
                    "-e", f"{group}:take_gil_ret{self._suffix}__return",
                    "-e", f"{group}:drop_gil{self._suffix}", "-e", "sched:sched_switch",
                    "-p", str(ctx.pid), "-o", str(ctx.raw_dir / "perf.data"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: the user's Ctrl-C reaches the session, which stops perf in
                # order (flush, then delete probes), instead of killing perf mid-write.
                start_new_session=True,
            )  # fmt: skip
            os.write(ctl_fd, b"enable\n")
            self._wait_for_ack(ack_fd)
        finally:
            log.close()
            os.close(ctl_fd)
            os.close(ack_fd)

    def _wait_for_ack(self, ack_fd: int) -> None:
        """Return once perf has enabled its events; raise if it died or never answered."""
        assert self._proc is not None and self._raw_dir is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([ack_fd], [], [], 0.05)
            if readable and b"ack" in os.read(ack_fd, 64):
                return
            if self._proc.poll() is not None:
                log = (self._raw_dir / "perf_record.log").read_text(errors="replace")
                raise RecorderUnavailable(
                    f"perf record exited ({self._proc.returncode}) before recording: "
                    f"{_last_line(log)}"
                )
        raise RecorderUnavailable(f"perf record did not start within {_READY_TIMEOUT_S:.0f} s")

    # -- stop -------------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._stop_perf_record()
        except Exception as exc:
            self._error = f"stopping perf record failed: {exc}"
        finally:
            self._delete_probes()
            if self._fifo_dir is not None:
                shutil.rmtree(self._fifo_dir, ignore_errors=True)
            if self._atexit_registered:
                atexit.unregister(self.stop)
                self._atexit_registered = False
        if self._proc is not None and self._error is None:
            try:
                self._convert()
            except Exception as exc:
                self._error = f"perf script failed: {exc}"

    def _stop_perf_record(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return  # with -p, perf also ends by itself once the target has exited
        # SIGINT is perf's "finish": it flushes its buffers and writes the header. Escalate only if
        # it does not finish in time (a huge buffer on a slow disk).
        for sig, wait_s in ((signal.SIGINT, _STOP_TIMEOUT_S), (signal.SIGTERM, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue
        proc.kill()
        proc.wait(timeout=5.0)
        self._error = "perf record did not stop on SIGINT/SIGTERM and was killed"

    def _delete_probes(self) -> None:
        if not self._probes_installed or self._group is None:
            return
        try:
            _run(["perf", "probe", "-q", "-d", f"{self._group}:*"], _PROBE_TIMEOUT_S)
            self._probes_installed = False
        except Exception as exc:  # never raise from cleanup; say it instead
            self._error = f"could not delete probes {self._group}:* ({exc}); run perf probe -d"

    def _convert(self) -> None:
        assert self._raw_dir is not None
        data = self._raw_dir / "perf.data"
        out = self._raw_dir / "perf_gil.txt"
        with out.open("wb") as sink:
            result = subprocess.run(
                ["perf", "script", "-i", str(data), *_SCRIPT_ARGS],
                stdout=sink,
                stderr=subprocess.PIPE,
                timeout=_SCRIPT_TIMEOUT_S,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(_last_line(result.stderr))
        try:
            self._counts = Counter(e.kind for e in parse_perf_script(out.read_text()))
        except CorruptRecording as exc:
            self._error = str(exc)
        log = (self._raw_dir / "perf_record.log").read_text(errors="replace")
        lost = re.search(r"(?i)lost (\d+) chunks|(\d+) lost", log)
        if lost:
            self._notes.append(f"perf lost events: {lost.group(0)}")

    # -- describe ---------------------------------------------------------------------------------

    def describe(self) -> Source:
        if self._proc is None:
            return Source(used=False, reason=self._error or "perf record was not started")
        counts = self._counts
        notes = [
            f"uprobes on take_gil/drop_gil in {self._binary}",
            f"events: take_gil {counts['take']}, take_gil return {counts['taken']}, "
            f"drop_gil {counts['drop']}, switch-out {counts['switch_out']}, "
            f"switch-in {counts['switch_in']}",
            "clock: CLOCK_MONOTONIC (perf record -k mono)",
            *self._notes,
        ]
        if self._error:
            notes.append(self._error)
        return Source(
            used=self._error is None,
            reason=self._error or "",
            method="exact",
            samples=sum(counts.values()),
            notes=notes,
        )


# -- helpers ---------------------------------------------------------------------------------------


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _uprobe_events() -> Path | None:
    return next((p for d in _TRACEFS_DIRS if (p := d / "uprobe_events").exists()), None)


def _check_permissions() -> None:
    """Adding a uprobe writes tracefs' ``uprobe_events``; that is root's, unless delegated."""
    events = _uprobe_events()
    if os.geteuid() == 0:
        if events is None:
            raise RecorderUnavailable(
                "no uprobe_events in tracefs: mount it (mount -t tracefs nodev /sys/kernel/tracing)"
                " or use a kernel built with CONFIG_UPROBE_EVENTS"
            )
        return
    try:
        paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        paranoid = 2
    if events is None or not os.access(events, os.W_OK) or paranoid > -1:
        raise RecorderUnavailable(
            "perf uprobes need root: adding a probe writes tracefs uprobe_events and per-thread "
            f"tracepoint samples need kernel.perf_event_paranoid <= -1 (it is {paranoid}); "
            "run threadscope with sudo"
        )


def locate_gil_binary(python: str) -> Path:
    """The file that holds ``take_gil``/``drop_gil`` for ``python``: its libpython, or itself.

    Asks the interpreter for its real executable (venvs and pyenv shims resolve to the build),
    then ``ldd`` for the libpython it links. The executable's links decide, not sysconfig: Debian's
    ``/usr/bin/python3.11`` reports ``Py_ENABLE_SHARED`` yet runs a statically linked interpreter.
    sysconfig's ``LIBDIR``/``INSTSONAME`` is the fallback when ``ldd`` cannot answer.
    """
    try:
        result = _run([python, "-c", _LIB_QUERY], _QUICK_TIMEOUT_S)
        info = json.loads(result.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise RecorderUnavailable(f"cannot ask {python} where its libpython is: {exc}") from exc
    executable = Path(os.path.realpath(info["executable"]))
    linked = _ldd_libpython(executable)
    if linked is None:  # no ldd: trust sysconfig
        linked = []
        if info.get("shared") and info.get("libdir"):
            names = (info.get("soname"), info.get("ldlibrary"))
            linked = [Path(info["libdir"]) / name for name in names if name]
    binary = next((c.resolve() for c in linked if c.is_file()), executable)
    _require_gil_symbols(binary, python)
    return binary


def _ldd_libpython(executable: Path) -> list[Path] | None:
    """The libpython files ``executable`` links; [] if none (static); None if ldd cannot tell."""
    try:
        result = _run(["ldd", str(executable)], _QUICK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return [Path(m) for m in re.findall(r"=>\s*(\S*libpython[^\s]*)", result.stdout)]


def _require_gil_symbols(binary: Path, python: str) -> None:
    """take_gil/drop_gil are static functions: only the full symbol table (not dynsym) has them."""
    tool = shutil.which("nm")
    if tool is None:
        raise RecorderUnavailable("`nm` is not on PATH; install binutils to find take_gil")
    try:
        result = _run([tool, str(binary)], _QUICK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RecorderUnavailable(f"nm {binary} took too long") from exc
    where = str(binary) if binary == Path(python) else f"{binary} (used by {python})"
    if "no symbols" in result.stderr:
        raise RecorderUnavailable(
            f"{where} is stripped, no take_gil symbol; run the target with a python that keeps "
            "its symbol table (e.g. a pyenv or python.org build)"
        )
    found = {line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines()}
    missing = sorted({"take_gil", "drop_gil"} - found)
    if missing:
        raise RecorderUnavailable(
            f"{where} has no {' or '.join(missing)} symbol "
            "(a build without the GIL, or a CPython this recorder does not know)"
        )


def _loaded_gil_binary(pid: int) -> Path | None:
    """The libpython the target really mapped (LD_LIBRARY_PATH can differ from sysconfig)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if "/libpython" in path and Path(path).is_file():
            return Path(path)
    return None


def _delete_stale_groups() -> None:
    """Delete probe groups of threadscope sessions that no longer exist (killed with SIGKILL)."""
    events = _uprobe_events()
    try:
        text = events.read_text() if events is not None else ""
    except OSError:
        return
    groups = set(re.findall(rf"^[pr]:({_GROUP_PREFIX}(\d+)_\d+)/", text, flags=re.MULTILINE))
    for group, owner in groups:
        if not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                _run(["perf", "probe", "-q", "-d", f"{group}:*"], _PROBE_TIMEOUT_S)
