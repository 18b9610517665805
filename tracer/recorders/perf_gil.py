"""The exact GIL recorder: the kernel's futex tracepoint on the GIL's own words, plus context
switches, recorded by ``perf record``; :mod:`tracer.model.gil_exact` reads what it wrote.

A thread calls ``futex`` on the GIL only when it must sleep for it (the GIL was held) or wake a
thread that sleeps for it, so recording exactly those calls costs in proportion to real
contention. ``syscalls:sys_enter_futex`` is filtered in the kernel on the addresses of the GIL's
futex words (from ``raw/gil_layout.json``, which the bootstrap writes inside the target;
:class:`tracer.instrument.gil_probe.FutexWords`), ``syscalls:sys_exit_futex`` on the ``EAGAIN``
return (a wait that did not sleep), and ``--switch-events`` gives every context switch of the
target's threads with the "preempted" flag. No probe is installed: nothing outlives perf, and no
libpython symbols are needed (Debian's stripped python works too).

Checked on this machine (Debian 12, kernel 6.18, perf 6.1, pyenv CPython 3.11.7 / 3.12.1 / 3.13.0):

- Cost: three sqlite writers that release the GIL ~300,000 times a second ran 0.87x their
  untraced time recorded to the end (``--no-perf-budget``; noise on 2 cores is +-20%) where
  take_gil/drop_gil uprobes made them 14x slower; ``benchmarks/gil_cost.py`` measures six
  programs (RESULTS.md).
- Counts: on one execution recorded together with take_gil uprobes, the waits found here and the
  take_gil calls that took > 20 us agree within 0-6% on sqlite writers, CPU threads, an echo
  convoy and a lock-contended cache (``gil_cost.same_run``); fewer on a socket ping-pong, whose
  slow take_gil calls are mostly preemptions and probe cost rather than a held GIL.
- ``perf record -p PID`` follows threads created after it attached; ``-k mono`` puts perf on the
  target's CLOCK_MONOTONIC (``tests/e2e/test_perf_gil_recorder.py`` measures the alignment).
- ``perf record`` starts with events disabled (``-D -1``) and a control fifo; :meth:`start` returns
  once perf acknowledges ``enable``, so it is recording for sure, without a fixed sleep.
- perf gets SIGINT if the tracer dies, even by SIGKILL (``PR_SET_PDEATHSIG``): it flushes and
  exits instead of recording an orphaned program.
- A program that switches threads or contends for the GIL so often that recording every event
  would slow it by more than ~10% gets exact recording only until that is clear (a fraction of a
  second), then the sampler alone (:mod:`tracer.recorders.perf_budget`); the report says so.
"""

from __future__ import annotations

import atexit
import contextlib
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

from tracer import raw_files
from tracer.errors import RecorderUnavailable
from tracer.gil_locate import check_has_gil
from tracer.instrument.gil_probe import FutexWords
from tracer.leftovers import delete_stale_uprobe_groups, die_with_parent
from tracer.model.schema import Method, Source
from tracer.raw_files import SourceName
from tracer.recorders.base import RecordContext, Recorder
from tracer.recorders.gil_sampler import read_layout
from tracer.recorders.perf_budget import BudgetCut, BudgetGuard
from tracer.tracefs import TracefsLease, ensure_tracefs

TRACEPOINTS = ("syscalls/sys_enter_futex", "syscalls/sys_exit_futex")

# Bounds on every subprocess, so nothing here can hang a run. perf record's start-up took
# 0.2-1 s here; 20 s leaves room for a loaded box.
_QUICK_TIMEOUT_S = 5.0
_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 15.0
_SCRIPT_TIMEOUT_S = 300.0

# perf's ring buffer, in 4 KiB pages per CPU (2 MiB). Within the budget a target makes at most a
# few MB of events a second; perf drains the buffer when it is half full, so the budget guard sees
# the data rate within a fraction of a second. The default 512 KiB could drop events on a slow box.
_MMAP_PAGES = 512

# futex(2) ops that wait (FUTEX_WAIT, FUTEX_WAIT_BITSET) with and without FUTEX_PRIVATE_FLAG:
# the filter keeps waits on the GIL's mutex, and every op on its condition variables' words.
_WAIT_OPS = (0, 9, 128, 137)
_EAGAIN = -11

# ``perf script`` fields: the parser needs pid/tid, the ns timestamp, the event name and, for the
# futex tracepoints, their payload (uaddr and op, or the return value).
_SCRIPT_ARGS = (
    "-F",
    "tid,pid,time,event,trace",
    "--ns",
    "--show-switch-events",
    "--show-task-events",
)


def futex_filter(words: FutexWords) -> str:
    """The in-kernel filter for ``sys_enter_futex``: only calls on the GIL's futex words."""
    signals = " || ".join(f"uaddr == {address:#x}" for address in (*words.cond, *words.switch))
    waits = " || ".join(f"op == {op}" for op in _WAIT_OPS)
    return f"{signals} || (uaddr == {words.mutex:#x} && ({waits}))"


class PerfGilRecorder(Recorder):
    """Exact GIL waits and hand-offs of one target process."""

    name = SourceName.PERF

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lease: TracefsLease | None = None
        self._fifo_dir: Path | None = None
        self._raw_dir: Path | None = None
        self._stopped = False
        self._notes: list[str] = []
        self._counts: Counter[str] = Counter()
        self._error: str | None = None
        self._atexit_registered = False
        self._seconds = 0.0
        self._guard: BudgetGuard | None = None
        self._started_s = 0.0

    # -- check ------------------------------------------------------------------------------------

    def check(self, ctx: RecordContext) -> None:
        if not sys.platform.startswith("linux"):
            raise RecorderUnavailable(f"perf tracepoints need Linux (this is {sys.platform})")
        check_has_gil(ctx.python)  # a free-threaded build: no GIL, so no GIL figures
        if shutil.which("perf") is None:
            raise RecorderUnavailable(
                "`perf` is not on PATH; install it (Debian/Ubuntu: apt install linux-perf)"
            )
        _check_permissions()
        lease = ensure_tracefs()
        missing = [tp for tp in TRACEPOINTS if not (lease.path / "events" / tp).is_dir()]
        if missing:
            lease.release()
            raise RecorderUnavailable(
                f"the kernel has no {' or '.join(missing)} tracepoint (it needs "
                "CONFIG_FTRACE_SYSCALLS)")
        self._lease = lease

    # -- start ------------------------------------------------------------------------------------

    def start(self, ctx: RecordContext) -> None:
        if ctx.pid <= 0:
            raise ValueError("PerfGilRecorder.start needs ctx.pid of the running target")
        self._raw_dir = ctx.raw_dir
        ctx.raw_dir.mkdir(parents=True, exist_ok=True)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            if self._lease is None:
                self.check(ctx)
            words = _futex_words(ctx)
            removed = delete_stale_uprobe_groups(self._lease.path if self._lease else None)
            if removed:
                self._notes.append("removed uprobes a killed older threadscope left installed: "
                                   + ", ".join(removed))
            self._start_perf_record(ctx, words)
            if ctx.options.get("perf_budget", True):
                self._guard = BudgetGuard(ctx.pid, ctx.raw_dir / raw_files.PERF_DATA,
                                          self._over_budget)
                self._guard.start()
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

    def _start_perf_record(self, ctx: RecordContext, words: FutexWords) -> None:
        self._fifo_dir = Path(tempfile.mkdtemp(prefix="threadscope-perf-"))
        ctl, ack = self._fifo_dir / "ctl", self._fifo_dir / "ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        # O_RDWR never blocks on a fifo (Linux), whether or not perf has opened its end yet.
        ctl_fd = os.open(ctl, os.O_RDWR)
        ack_fd = os.open(ack, os.O_RDWR | os.O_NONBLOCK)
        log = (ctx.raw_dir / raw_files.PERF_LOG).open("wb")
        try:
            self._proc = subprocess.Popen(
                [
                    "perf", "record", "-k", "mono", "--switch-events",
                    "-D", "-1", "--control", f"fifo:{ctl},{ack}",
                    "-m", str(_MMAP_PAGES),
                    "-e", "syscalls:sys_enter_futex", "--filter", futex_filter(words),
                    "-e", "syscalls:sys_exit_futex", "--filter", f"ret == {_EAGAIN}",
                    "-p", str(ctx.pid), "-o", str(ctx.raw_dir / raw_files.PERF_DATA),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: the user's Ctrl-C reaches the session, which stops perf in
                # order (flush, then convert), instead of killing perf mid-write. And if the
                # tracer dies, perf stops itself rather than record an orphan.
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT),
            )  # fmt: skip
            os.write(ctl_fd, b"enable\n")
            self._wait_for_ack(ack_fd)
            self._seconds = time.monotonic()
            self._started_s = time.monotonic_ns() / 1e9
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
                log = (self._raw_dir / raw_files.PERF_LOG).read_text(errors="replace")
                raise RecorderUnavailable(
                    f"perf record exited ({self._proc.returncode}) before recording: "
                    f"{_last_line(log)}"
                )
        raise RecorderUnavailable(f"perf record did not start within {_READY_TIMEOUT_S:.0f} s")

    def _over_budget(self, cut: BudgetCut) -> None:
        """Called by the guard's thread: stop recording now; :meth:`stop` converts what there is."""
        assert self._raw_dir is not None
        cut.save(self._raw_dir)
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGINT)

    # -- stop -------------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._guard is not None:
            self._guard.close()
        try:
            self._stop_perf_record()
        except Exception as exc:
            self._error = f"stopping perf record failed: {exc}"
        finally:
            if self._seconds:
                self._seconds = time.monotonic() - self._seconds
            if self._fifo_dir is not None:
                shutil.rmtree(self._fifo_dir, ignore_errors=True)
            if self._atexit_registered:
                atexit.unregister(self.stop)
                self._atexit_registered = False
        try:
            if self._proc is not None and self._error is None:
                self._convert()
        except Exception as exc:
            self._error = f"perf script failed: {exc}"
        finally:
            if self._lease is not None:  # after perf script: it reads tracefs for event formats
                self._lease.release()

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

    def _convert(self) -> None:
        assert self._raw_dir is not None
        data = self._raw_dir / raw_files.PERF_DATA
        out = self._raw_dir / raw_files.PERF_TEXT
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
        self._counts = _count_kinds(out)
        log = (self._raw_dir / raw_files.PERF_LOG).read_text(errors="replace")
        lost = re.search(r"(?i)lost (\d+) chunks|(\d+) lost", log)
        if lost:
            self._notes.append(f"perf lost events: {lost.group(0)}")

    # -- describe ---------------------------------------------------------------------------------

    def describe(self) -> Source:
        if self._proc is None:
            return Source(used=False, reason=self._error or "perf record was not started")
        counts = self._counts
        rate = (f" ({counts['futex'] / self._seconds:,.0f}/s)" if self._seconds > 0 else "")
        notes = [
            "futex calls on the GIL's own words (filtered in the kernel) and context switches; "
            "no probes installed",
            f"events: GIL futex calls {counts['futex']:,}{rate}, futex waits that did not "
            f"sleep {counts['no_sleep']:,}, context switches {counts['switch']:,}, "
            f"threads started {counts['fork']:,}",
            "clock: CLOCK_MONOTONIC (perf record -k mono)",
            *self._notes,
        ]
        if self._lease is not None and self._lease.mounted_here:
            notes.append(self._lease.note)
        cut = self._guard.cut if self._guard is not None else None
        if cut is not None:
            notes.append(f"exact recording stopped {cut.t_ns / 1e9 - self._started_s:.2f} s after "
                         f"it began, to keep within its cost budget: {cut.reason}")
        if self._error:
            notes.append(self._error)
        return Source(
            used=self._error is None,
            reason=self._error or "",
            method=Method.EXACT,
            samples=sum(counts.values()),
            notes=notes,
        )


# -- helpers ---------------------------------------------------------------------------------------


def _futex_words(ctx: RecordContext) -> FutexWords:
    """The GIL's futex words, from the layout the bootstrap found inside the target."""
    layout = read_layout(ctx.raw_dir)
    libc = str(layout.get("libc", ""))
    if not libc.startswith("glibc"):
        raise RecorderUnavailable(
            f"the target's C library is {libc or 'not glibc'}: exact GIL waits need glibc's "
            "condition variables (the GIL sampler still runs)")
    return FutexWords(int(layout["gil_addr"]), int(layout.get("head_size", 32)))


def _count_kinds(path: Path) -> Counter[str]:
    """How many of each event the recording holds, for the source notes (a cheap text scan)."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if "sys_enter_futex" in line:
                counts["futex"] += 1
            elif "sys_exit_futex" in line:
                counts["no_sleep"] += 1
            elif "PERF_RECORD_SWITCH OUT" in line:
                counts["switch"] += 1
            elif "PERF_RECORD_FORK" in line:
                counts["fork"] += 1
    return counts


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _check_permissions() -> None:
    """Per-thread tracepoint samples of another process need root (or a delegated tracefs and
    ``kernel.perf_event_paranoid <= -1``)."""
    if os.geteuid() == 0:
        return
    try:
        paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        paranoid = 2
    if paranoid > -1:
        raise RecorderUnavailable(
            "perf tracepoints of another process need root or kernel.perf_event_paranoid <= -1 "
            f"(it is {paranoid}): run threadscope with sudo, or "
            "sudo sysctl kernel.perf_event_paranoid=-1"
        )
