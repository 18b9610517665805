"""One recording: start the target at a starting line, attach the recorders, let it run, stop
everything however the target ends (exit, crash, timeout, Ctrl-C, SIGTERM), and write
``raw/run.json``.

The target waits for a go signal after its interpreter has started, so that the recorders' own
start-up (perf takes about a second) is neither lost from the record nor counted in the target's
time.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from rich.console import Console

import tracer
from tracer import interrupts, raw_files
from tracer.errors import ThreadscopeError
from tracer.interrupts import StopRequests
from tracer.model.schema import Source
from tracer.options import RecordOptions
from tracer.raw_files import RunRecord, SourceName
from tracer.recorders.lifecycle import RecorderSet, build_recorders, recorder_context
from tracer.runfolder import RunFolder, atomic_write_bytes
from tracer.target import TargetSpec

READY_TIMEOUT_S = 60.0  # interpreter start plus imports of VizTracer on a slow, loaded machine
INTERRUPT_GRACE_S = 5.0  # time the target gets to save its trace after SIGINT before SIGTERM
TERM_GRACE_S = 3.0


@dataclass
class RecordResult:
    exit_code: int
    status: str  # ok | failed | timeout | interrupted | killed | error
    sources: dict[SourceName, Source] = field(default_factory=dict)
    stop_signal: int | None = None  # the Ctrl-C (SIGINT) or SIGTERM that stopped the run


def record(spec: TargetSpec, folder: RunFolder, options: RecordOptions) -> RecordResult:
    """Record ``spec`` into ``folder``. Ctrl-C and SIGTERM stop the target (see :func:`_wait`);
    from the first line to ``run.json`` they are only counted, so the recorders always stop and
    ``run.json`` is always written, whatever signal comes when."""
    stops = StopRequests()
    with stops.deferred():
        return _record(spec, folder, options, stops)


def _record(spec: TargetSpec, folder: RunFolder, options: RecordOptions,
            stops: StopRequests) -> RecordResult:
    ctx = recorder_context(options, folder.raw, options.python)
    recorders = RecorderSet(build_recorders(options))
    recorders.check(ctx)  # before the target starts: a missing tool costs it no waiting
    recorders.note_turned_off(options.turned_off())

    started_ns = time.monotonic_ns()
    with _target_process(spec, folder, options) as (proc, go_fd):
        ctx.pid = proc.pid
        with recorders.started(ctx):
            go_ns = time.monotonic_ns()
            os.write(go_fd, b"G")
            os.close(go_fd)
            with _progress_line(options, recorders) as tick:
                status, exit_code = _wait(proc, options, recorders, tick, stops, folder.raw)
            exit_ns = time.monotonic_ns()

    sources = recorders.sources
    run = RunRecord(
        threadscope_version=tracer.__version__, target=spec.to_dict(), python=options.python,
        options=asdict(options), started_ns=started_ns, go_ns=go_ns, exit_ns=exit_ns,
        exit_code=exit_code, status=status, pid=ctx.pid, cores=os.cpu_count() or 1,
        sources={name: asdict(source) for name, source in sources.items()})
    atomic_write_bytes(folder.raw_file(raw_files.RUN), run.to_json_bytes())
    return RecordResult(exit_code=exit_code, status=status, sources=sources,
                        stop_signal=stops.first if status == "interrupted" else None)


@contextlib.contextmanager
def _target_process(
    spec: TargetSpec, folder: RunFolder, options: RecordOptions
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start the bootstrap and wait until it stands at its starting line."""
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    config = {
        "raw_dir": str(folder.raw.resolve()),
        "kind": spec.kind if spec.kind == "script" else "module",
        "run": spec.run,
        "argv": spec.argv,
        "recording": options.for_target(),  # InProcessRecording's keywords
        "go_fd": go_r,
        "ready_fd": ready_w,
        "controller_pid": os.getpid(),  # lets `tracer doctor` tell a stray perf record
    }
    config_path = folder.raw_file(raw_files.BOOTSTRAP)
    atomic_write_bytes(config_path, orjson.dumps(config))
    env = dict(os.environ)
    package_root = str(Path(tracer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["THREADSCOPE_MARKERS"] = str(folder.raw_file(raw_files.MARKERS).resolve())
    try:
        proc = subprocess.Popen(
            [options.python, "-m", "tracer.bootstrap", str(config_path.resolve())],
            pass_fds=(go_r, ready_w),
            env=env,
        )
    except OSError as exc:
        for fd in (go_r, go_w, ready_r, ready_w):
            os.close(fd)
        raise ThreadscopeError(f"cannot start {options.python}: {exc}") from exc
    os.close(go_r)
    os.close(ready_w)
    try:
        readable, _, _ = select.select([ready_r], [], [], READY_TIMEOUT_S)
        if not readable or os.read(ready_r, 1) != b"R":
            proc.kill()
            proc.wait()
            raise ThreadscopeError(
                f"the target interpreter {options.python} did not start (exit code "
                f"{proc.returncode}); is threadscope importable there?"
            )
        yield proc, go_w
    finally:
        os.close(ready_r)
        with contextlib.suppress(OSError):
            os.close(go_w)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _progress_line(options: RecordOptions,
                   recorders: RecorderSet) -> Iterator[Callable[[], None]]:
    """A live line on a terminal (elapsed time, samples, threads seen); nothing otherwise.

    The target writes to the same terminal, so the line is redrawn below its output rather than
    kept in place: it is a heartbeat for long runs, not a dashboard.
    """
    console = Console(stderr=True)
    if options.quiet or not console.is_terminal:
        yield lambda: None
        return
    began = time.monotonic()
    with console.status("recording...", spinner="dots") as status:
        last = 0.0

        def tick() -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < 0.5:
                return
            last = now
            status.update(f"recording {now - began:5.1f} s · " + " · ".join(recorders.progress()))

        yield tick


def _wait(
    proc: subprocess.Popen[bytes], options: RecordOptions, recorders: RecorderSet,
    tick: Callable[[], None] = lambda: None, stops: StopRequests | None = None,
    raw_dir: Path | None = None,
) -> tuple[str, int]:
    """Wait for the target to end, or stop it at the timeout or on a stop request; returns the
    status and exit code for run.json. At the timeout the target is told why first (in
    ``raw_dir``), so it says "stopped at --timeout" rather than print a Ctrl-C traceback."""
    stops = stops if stops is not None else StopRequests()
    deadline = None if options.timeout_s is None else time.monotonic() + options.timeout_s
    while True:
        try:
            code = proc.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        tick()
        if deadline is not None and time.monotonic() >= deadline:
            if raw_dir is not None:
                with contextlib.suppress(OSError):
                    (raw_dir / raw_files.STOP_REASON).write_text("timeout")
            recorders.final_dump()
            code = _stop_target(proc)
            return "timeout", code if code >= 0 else 128 - code
        if stops.signals:
            _stop_interrupted(proc, options, stops)
            return "interrupted", interrupts.exit_code(stops.signals[0])
    if stops.signals:  # the target ended with the signal, before we looked
        return "interrupted", interrupts.exit_code(stops.signals[0])
    if code < 0:
        return "killed", 128 - code
    return ("ok" if code == 0 else "failed"), code


def _stop_interrupted(proc: subprocess.Popen[bytes], options: RecordOptions,
                      stops: StopRequests) -> None:
    """Stop the target as Ctrl-C does, then give it time to save its trace.

    Ctrl-C reaches the whole foreground process group, so the target already has its SIGINT. A
    SIGTERM was sent to the tracer alone: it is passed on (the bootstrap makes it a
    KeyboardInterrupt, a program's own SIGTERM handler runs as it would without us). Later
    signals change nothing: the target saves its trace while it winds down, and cutting that
    short would leave it half-written (the bootstrap ignores them while it saves).
    """
    first = stops.signals[0]
    console = None if options.quiet else Console(stderr=True, highlight=False)
    if first == signal.SIGTERM:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    if console is not None:
        console.print(f"threadscope: {signal.Signals(first).name}: stopping the target (it has "
                      f"{INTERRUPT_GRACE_S:g} s to save its trace), then writing the report")
    told = False
    grace_end = time.monotonic() + INTERRUPT_GRACE_S
    while proc.poll() is None and time.monotonic() < grace_end:
        time.sleep(0.05)
        if console is not None and not told and len(stops.signals) > 1:
            console.print("threadscope: already stopping; the report follows")
            told = True
    if proc.poll() is None:
        _stop_target(proc)


def _stop_target(proc: subprocess.Popen[bytes]) -> int:
    """SIGINT first (the target saves its trace), then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, INTERRUPT_GRACE_S), (signal.SIGTERM, TERM_GRACE_S)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return int(proc.returncode)

