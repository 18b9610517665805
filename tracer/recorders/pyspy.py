"""py-spy, out of process: the Python stack of every thread (idle ones too) and who owns the GIL.

We call ``py-spy dump --json`` in a loop rather than ``py-spy record``: only ``dump`` reports the
per-thread ``owns_gil`` and ``active`` flags, and ``record``'s time-stamped format (chrometrace)
merges consecutive samples and drops the flags. Each dump is a new py-spy process costing 30-60 ms
of CPU, so the rate is set by a CPU budget (:data:`CPU_SHARE`), not a fixed Hz: at 15-20 dumps a
second py-spy took most of a core, and on a 2-core machine that slowed a GIL-bound target by
~10% (benchmarks). Each sample is stamped with the monotonic time before and after the call.
Dumps are ``--nonblocking``: pausing the target for each one showed up as gaps in its timeline
(and cost it CPU time); the price is a rare torn stack. The last dump, taken when a run is
stopped, is also what a timed-out report shows as "the stacks at the moment it was stopped".
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

from tracer import raw_files
from tracer.errors import RecorderUnavailable
from tracer.model.schema import Method, Source
from tracer.procfs import process_alive
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext, Recorder

# Frames of threadscope itself (the bootstrap, the lock wrappers) are left out of the stacks:
# they are the same in every program and hide the user's own line.
_OWN_CODE = str(Path(__file__).resolve().parents[1]) + os.sep
DEFAULT_MAX_HZ = 20.0
# py-spy may use this share of the machine's CPU (all cores together): 10% of one core on 2 cores,
# i.e. about 2-3 dumps a second there, more on bigger machines, never above DEFAULT_MAX_HZ.
CPU_SHARE = 0.05
DUMP_TIMEOUT_S = 5.0


def find_pyspy() -> str | None:
    """py-spy next to the running interpreter (pip installs it there), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def children_cpu_s() -> float:
    """CPU time of this process's finished children. The dump loop's py-spy processes are the
    only children that finish while recording, so the change across one dump is its cost."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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

    def __init__(self, max_hz: float = DEFAULT_MAX_HZ) -> None:
        self._exe: str | None = None
        self._max_hz = max_hz
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._out: IO[bytes] | None = None
        self._out_lock = threading.Lock()
        self._samples = 0
        self._failures = 0
        self._last_error = ""
        self._started_ns = 0
        self._stopped_ns = 0
        self._cpu_s = 0.0  # CPU spent by py-spy processes, measured per dump
        self._cpu_cost = 0.0  # smoothed CPU seconds per dump: sets the pace

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

    def start(self, ctx: RecordContext) -> None:
        self._pid = ctx.pid
        self._out = open(ctx.raw_dir / raw_files.PYSPY, "wb")  # noqa: SIM115
        self._started_ns = time.monotonic_ns()
        first = self._dump()
        if first is None:
            reason = self._last_error or "py-spy could not read the target"
            self._close()
            raise RecorderUnavailable(reason)
        self._thread = threading.Thread(target=self._loop, name="threadscope-pyspy", daemon=True)
        self._thread.start()

    def final_dump(self) -> None:
        """One more dump now, marked final: the stacks at the moment the run was stopped."""
        if self._out is not None:
            self._dump(final=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DUMP_TIMEOUT_S + 1)
            self._thread = None
        self._stopped_ns = time.monotonic_ns()
        self._close()

    def describe(self) -> Source:
        seconds = max((self._stopped_ns - self._started_ns) / 1e9, 1e-9)
        notes = [f"py-spy dump loop paced to {CPU_SHARE:.0%} of the machine's CPU "
                 f"({self._cpu_s / seconds / (os.cpu_count() or 1):.1%} used), at most "
                 f"{self._max_hz:g} Hz"]
        if self._failures:
            notes.append(f"{self._failures} dumps failed (last: {self._last_error})")
        return Source(used=True, method=Method.SAMPLED, rate_hz=round(self._samples / seconds, 1),
                      samples=self._samples, notes=notes)

    def progress(self) -> str:
        return f"{self._samples:,} stack dumps"

    def _close(self) -> None:
        with self._out_lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            if self._dump() is None and not process_alive(self._pid):
                self._failures -= 1  # the target ended during the dump: not py-spy's fault
                return
            self._stop.wait(max(0.0, self._period() - (time.monotonic() - began)))

    def _period(self) -> float:
        """Seconds from one dump's start to the next: the CPU budget, or the rate cap."""
        budget = CPU_SHARE * (os.cpu_count() or 1)
        return max(1.0 / self._max_hz, self._cpu_cost / budget)

    def _account(self, cpu_s: float) -> None:
        self._cpu_s += cpu_s
        self._cpu_cost = cpu_s if self._cpu_cost == 0.0 else 0.7 * self._cpu_cost + 0.3 * cpu_s

    def _dump(self, final: bool = False) -> list[dict[str, Any]] | None:
        assert self._exe is not None
        before = time.monotonic_ns()
        cpu_before = children_cpu_s()
        try:
            proc = subprocess.run(
                [self._exe, "dump", "--json", "--nonblocking", "--subprocesses", "--pid",
                 str(self._pid)],
                capture_output=True, timeout=DUMP_TIMEOUT_S, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._fail(str(exc))
            return None
        after = time.monotonic_ns()
        self._account(max(0.0, children_cpu_s() - cpu_before))
        if proc.returncode != 0:
            self._fail(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or "")
            return None
        try:
            threads = orjson.loads(proc.stdout)
        except orjson.JSONDecodeError:
            self._fail("py-spy printed something that is not JSON")
            return None
        record = {
            "t0": before,
            "t1": after,
            "final": final,
            "threads": [
                {
                    "pid": t.get("pid"),
                    "tid": t.get("os_thread_id"),
                    "name": t.get("thread_name"),
                    "owns_gil": t.get("owns_gil"),
                    "active": t.get("active"),
                    "frames": [frame_label(f) for f in t.get("frames", [])
                               if not str(f.get("filename", "")).startswith(_OWN_CODE)],
                }
                for t in threads
            ],
        }
        with self._out_lock:
            if self._out is None:
                return None
            self._out.write(orjson.dumps(record) + b"\n")
            self._out.flush()
        self._samples += 1
        return list(threads)

    def _fail(self, message: object) -> None:
        self._failures += 1
        if isinstance(message, list):
            message = message[0] if message else "py-spy failed"
        self._last_error = str(message) or "py-spy failed"

