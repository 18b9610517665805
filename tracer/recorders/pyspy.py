"""py-spy, out of process: the Python stack of every thread (idle ones too), continuously.

One ``py-spy record --format chrometrace`` runs for the whole recording, sampling at
:data:`DEFAULT_RATE_HZ`. (Until 2026-12 this was a loop of ``py-spy dump --json`` calls: each a new
process costing 30-60 ms of CPU, so it managed 2-5 stacks a second on 2 cores, too few to say
where in the code a thread spends its time.) chrometrace keeps a thread's stack only when it
changes, with ``ts`` on py-spy's own clock and no GIL flag; when py-spy stops (SIGINT, or the
target exits) it writes the file, which :mod:`tracer.recorders.chrometrace` turns into the records
the model reads (``raw/pyspy.jsonl``), aligned to CLOCK_MONOTONIC. Sampling is ``--nonblocking``:
pausing the target for each sample showed up as gaps in its timeline and cost it CPU time; the
price is a rare torn stack. ``--gil`` is not used: it would keep only the GIL holder's stack.

The stacks at the moment a run is stopped (a timeout, the end of an attach) still come from one
``py-spy dump --json`` (:meth:`PySpyRecorder.final_dump`), which also says who held the GIL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tracer import raw_files
from tracer.errors import RecorderUnavailable, ThreadscopeError
from tracer.model.rawfiles import read_jsonl
from tracer.model.schema import Method, Source
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext, Recorder
from tracer.recorders.chrometrace import Alignment, Labeller, align, stack_changes, to_records

# Frames of threadscope itself (the bootstrap, the lock wrappers) are left out of the stacks:
# they are the same in every program and hide the user's own line.
_OWN_CODE = str(Path(__file__).resolve().parents[1]) + os.sep
# 100 Hz: a stack every 10 ms, enough to place a thread's time in its functions over a run of
# seconds; py-spy then used ~8% of one core here (its own CPU time, in the source notes) and
# cost a GIL-bound target ~1.00x (benchmarks/pyspy_cost.py). Also py-spy's own default.
DEFAULT_RATE_HZ = 100.0
READY_TIMEOUT_S = 10.0  # py-spy attaching to the target (reads its memory maps and symbols)
STOP_TIMEOUT_S = 15.0  # py-spy writing its file after SIGINT (a long run's trace is large)
DUMP_TIMEOUT_S = 5.0
_READY_LINE = b"Sampling process"
_COUNTS = re.compile(rb"Samples: (\d+) Errors: (\d+)")
_BEHIND = re.compile(rb"behind in sampling")


def find_pyspy() -> str | None:
    """py-spy next to the running interpreter (pip installs it there), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def frame_label(frame: dict[str, Any]) -> str:
    name = frame.get("name") or "?"
    filename = frame.get("short_filename") or frame.get("filename") or "?"
    return f"{name} ({filename}:{frame.get('line', '?')})"


class PySpyRecorder(Recorder):
    name = SourceName.PYSPY

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ) -> None:
        self._exe: str | None = None
        self._rate_hz = rate_hz
        self._pid = 0
        self._raw_dir = Path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._startup_ns = 0  # py-spy's own start-up, timed on `py-spy --version`
        self._spawn_ns = 0
        self._ready_ns = 0
        self._stopped_ns = 0
        self._final: list[dict[str, Any]] = []
        self._samples: int | None = None  # py-spy's own count (one per thread per sample)
        self._errors = 0
        self._behind = 0
        self._cpu_s: float | None = None
        self._records = 0
        self._alignment: Alignment | None = None
        self._problems: list[str] = []
        self._stopped = False

    def check(self, ctx: RecordContext) -> None:
        if sys.platform == "win32":
            raise RecorderUnavailable("py-spy sampling is not wired up on Windows yet")
        self._exe = find_pyspy()
        if self._exe is None:
            raise RecorderUnavailable("py-spy is not installed (pip install py-spy)")
        scope = ptrace_scope()
        if scope is not None and scope >= 2 and os.geteuid() != 0:
            raise RecorderUnavailable(
                f"ptrace is restricted (kernel.yama.ptrace_scope={scope}); run as root or "
                "set it to 1"
            )
        began = time.monotonic_ns()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([self._exe, "--version"], capture_output=True, timeout=5, check=False)
        self._startup_ns = time.monotonic_ns() - began

    def start(self, ctx: RecordContext) -> None:
        assert self._exe is not None
        self._pid, self._raw_dir = ctx.pid, ctx.raw_dir
        log_path = ctx.raw_dir / raw_files.PYSPY_LOG
        with open(log_path, "wb") as log:
            self._spawn_ns = time.monotonic_ns()
            try:
                self._proc = subprocess.Popen(
                    [self._exe, "record", "--format", "chrometrace", "--idle", "--nonblocking",
                     "--threads", "--subprocesses", "--rate", f"{self._rate_hz:g}",
                     "--pid", str(ctx.pid), "--output", str(ctx.raw_dir / raw_files.PYSPY_TRACE)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C at the terminal is ours to pass on
                )
            except OSError as exc:
                raise RecorderUnavailable(f"cannot start py-spy: {exc}") from exc
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _READY_LINE not in _read(log_path):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                reason = _last_line(_read(log_path)) or "py-spy did not start sampling"
                self._kill()
                raise RecorderUnavailable(f"py-spy could not read the target: {reason}")
            time.sleep(0.002)
        self._ready_ns = time.monotonic_ns()
        # Let its first samples land before the go signal: the main thread's wait for it is the
        # first clock anchor (tracer.recorders.chrometrace.align).
        time.sleep(3.0 / self._rate_hz)

    def final_dump(self) -> None:
        """One ``py-spy dump`` now, marked final: the stacks at the moment the run was stopped."""
        if self._exe is None or self._proc is None or self._stopped:
            return
        before = time.monotonic_ns()
        try:
            proc = subprocess.run(
                [self._exe, "dump", "--json", "--nonblocking", "--subprocesses", "--pid",
                 str(self._pid)], capture_output=True, timeout=DUMP_TIMEOUT_S, check=False)
            threads = orjson.loads(proc.stdout) if proc.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, orjson.JSONDecodeError) as exc:
            self._problems.append(f"the final dump failed: {exc}")
            return
        if not isinstance(threads, list):
            reason = _last_line(proc.stderr) or "py-spy printed no stacks"
            self._problems.append(f"the final dump failed: {reason}")
            return
        self._final.append({
            "t0": before, "t1": time.monotonic_ns(), "final": True,
            "threads": [
                {"pid": t.get("pid"), "tid": t.get("os_thread_id"), "name": t.get("thread_name"),
                 "owns_gil": t.get("owns_gil"), "active": t.get("active"),
                 "frames": [frame_label(f) for f in t.get("frames", [])
                            if not str(f.get("filename", "")).startswith(_OWN_CODE)]}
                for t in threads
            ],
        })

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._proc is not None:
            self._end_pyspy()
        self._stopped_ns = time.monotonic_ns()
        try:
            self._convert()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self._problems.append(f"could not read py-spy's trace: {type(exc).__name__}: {exc}")

    def describe(self) -> Source:
        seconds = max((self._stopped_ns - self._ready_ns) / 1e9, 1e-9)
        if self._records == 0 and not self._final:
            return Source(used=False, reason="; ".join(self._problems) or "py-spy recorded nothing")
        notes = [f"py-spy record at {self._rate_hz:g} Hz (nonblocking, idle threads too): "
                 f"{self._samples if self._samples is not None else 'an unknown number of'} "
                 f"thread stacks read in {seconds:.1f} s; {self._records:,} moments a stack "
                 "changed"]
        if self._cpu_s is not None:
            notes.append(f"py-spy's own CPU time: {self._cpu_s:.2f} s "
                         f"({self._cpu_s / seconds:.1%} of one core)")
        if self._errors:
            notes.append(f"py-spy failed to read the stacks {self._errors} times")
        if self._behind:
            notes.append(f"py-spy fell behind its rate {self._behind} times (said each second "
                         "it was late by more than 1 s)")
        if self._alignment is not None:
            a = self._alignment
            notes.append(f"clock: py-spy's time 0 placed at {a.offset_ns} ns monotonic, within "
                         f"{a.uncertainty_ns / 1e6:.2f} ms ({a.anchors} anchors in the target)")
        notes.extend(self._problems)
        return Source(used=True, method=Method.SAMPLED, rate_hz=self._rate_hz,
                      samples=self._samples, notes=notes)

    def progress(self) -> str:
        return f"py-spy at {self._rate_hz:g} Hz" if self._proc is not None else ""

    def _end_pyspy(self) -> None:
        """SIGINT, so that py-spy writes its file (it exits by itself if the target has ended);
        SIGKILL if it takes too long. Its CPU time comes from the kernel as it is reaped."""
        assert self._proc is not None
        deadline = time.monotonic() + STOP_TIMEOUT_S
        signalled = False
        while True:
            try:
                pid, status, usage = os.wait4(self._proc.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: no CPU figure
                break
            if pid:
                self._proc.returncode = os.waitstatus_to_exitcode(status)
                self._cpu_s = usage.ru_utime + usage.ru_stime
                break
            if not signalled:  # not reaped yet, so the pid is still py-spy's
                os.kill(self._proc.pid, signal.SIGINT)
                signalled = True
            if time.monotonic() > deadline:
                self._problems.append(f"py-spy did not write its trace within {STOP_TIMEOUT_S:g} "
                                      "s of SIGINT and was killed")
                self._kill()
                break
            time.sleep(0.01)
        log = _read(self._raw_dir / raw_files.PYSPY_LOG)
        counts = _COUNTS.search(log)
        if counts:
            self._samples, self._errors = int(counts.group(1)), int(counts.group(2))
        self._behind = len(_BEHIND.findall(log))
        self._proc = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _convert(self) -> None:
        """py-spy's trace -> ``pyspy.jsonl``: a header with the clock alignment, the records,
        and the final dump."""
        trace = self._raw_dir / raw_files.PYSPY_TRACE
        events = orjson.loads(trace.read_bytes()) if trace.exists() else []
        changes = list(stack_changes(events))
        self._alignment = align(
            changes, _thread_events(self._raw_dir), self._pid,
            spawn_ns=self._spawn_ns, ready_ns=self._ready_ns, startup_ns=self._startup_ns,
            own_code=_OWN_CODE)
        if not trace.exists():
            self._problems.append("py-spy wrote no trace")
        # The header reads as a record without threads, so that any reader of records skips it.
        header = {"t0": self._alignment.offset_ns, "t1": self._alignment.offset_ns,
                  "threads": [], "header": {"source": "py-spy record --format chrometrace",
                                            "rate_hz": self._rate_hz,
                                            "clock": self._alignment.to_dict()}}
        with open(self._raw_dir / raw_files.PYSPY, "wb") as out:
            out.write(orjson.dumps(header) + b"\n")
            for record in to_records(changes, self._alignment.offset_ns, Labeller(_OWN_CODE)):
                out.write(orjson.dumps(record) + b"\n")
                self._records += 1
            for record in self._final:
                out.write(orjson.dumps(record) + b"\n")


def _thread_events(raw_dir: Path) -> list[dict[str, Any]]:
    """The target's thread log, the clock anchors (none when attaching)."""
    try:
        return list(read_jsonl(raw_dir / raw_files.THREADS))
    except ThreadscopeError:
        return []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _last_line(text: bytes) -> str:
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
