"""Recording a process that is already running: only the out-of-process recorders can see it.

Used by ``tracer attach PID`` and, for the calling process itself, by the Python API
(:mod:`tracer.api`), which runs this module as a child (``python -m tracer.attach``) so that no
sampler ever competes for the recorded process's GIL.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import orjson

import tracer
from tracer import raw_files
from tracer.attached_threads import AttachedThreads
from tracer.errors import RecorderUnavailable, TargetNotFound
from tracer.gil_locate import find_interpreter, gil_layout
from tracer.inprocess import write_gil_layout
from tracer.options import AppliesTo, RecordOptions
from tracer.procfs import process_alive
from tracer.raw_files import RunRecord, RunStatus, SourceName
from tracer.recorders.lifecycle import RecorderSet, build_recorders, recorder_context
from tracer.runfolder import RunFolder, atomic_write_bytes
from tracer.session import RecordResult


def process_python(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return sys.executable


def process_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except OSError:
        return [f"pid {pid}"]


def record_attached(pid: int, folder: RunFolder, options: RecordOptions,
                    duration_s: float | None, should_stop: Callable[[], bool],
                    on_ready: Callable[[], None] | None = None,
                    mode: str = "attach") -> RecordResult:
    """Record ``pid`` until ``duration_s`` passes, it exits, or ``should_stop()`` says so."""
    if not process_alive(pid):
        raise TargetNotFound(f"no process with pid {pid}")
    ctx = recorder_context(options, folder.raw, process_python(pid), pid)
    gil_notes: list[str] = []
    threads = _locate_gil(pid, folder, gil_notes) if mode == "attach" else None
    recorders = RecorderSet(build_recorders(options))
    recorders.note_turned_off(options.turned_off(AppliesTo.ATTACH))
    recorders.check(ctx)
    with recorders.started(ctx):
        started_ns = time.monotonic_ns()
        if on_ready is not None:
            on_ready()
        try:
            status = _watch(pid, duration_s, should_stop, threads)
        finally:
            if threads is not None:
                threads.close()
        if status == RunStatus.OK.value:  # stopped by us, so the process still runs
            recorders.final_dump()
        end_ns = time.monotonic_ns()
    sources = recorders.sources
    gil_source = sources.get(SourceName.GIL_SAMPLER)
    if gil_source is not None and gil_source.used:
        gil_source.notes = [*gil_notes, *gil_source.notes]
    cmdline = process_cmdline(pid)
    run = RunRecord(
        threadscope_version=tracer.__version__, mode=mode,
        target={"kind": mode, "name": " ".join(cmdline)[:200] or f"pid {pid}", "run": str(pid),
                "argv": cmdline},
        python=ctx.python, options=asdict(options), started_ns=started_ns, go_ns=started_ns,
        exit_ns=end_ns, exit_code=None, status=status, pid=pid, controller_pid=os.getpid(),
        cores=os.cpu_count() or 1,
        sources={name: asdict(source) for name, source in sources.items()})
    atomic_write_bytes(folder.raw_file(raw_files.RUN), run.to_json_bytes())
    return RecordResult(exit_code=0, status=status, sources=sources)


def _watch(pid: int, duration_s: float | None, should_stop: Callable[[], bool],
           threads: AttachedThreads | None) -> str:
    """Wait while recording; returns "ended" if the process exited first, else "ok"."""
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while process_alive(pid):
        if should_stop() or (deadline is not None and time.monotonic() >= deadline):
            return RunStatus.OK.value
        if threads is not None:
            threads.poll()
        time.sleep(0.02)
    return RunStatus.ENDED.value


def _locate_gil(pid: int, folder: RunFolder, notes: list[str]) -> AttachedThreads | None:
    """Write ``raw/gil_layout.json`` for the GIL recorders, found from outside since the target
    never ran our probe (or ``{"error": why}``), and start logging which thread state is which
    thread to ``raw/threads.jsonl``; returns that log, or None. ``notes`` gets what the report
    should say about it."""
    try:
        interpreter = find_interpreter(pid)
        layout = gil_layout(interpreter)
    except RecorderUnavailable as exc:
        write_gil_layout(str(folder.raw), {"error": f"GIL not found from outside: {exc}"})
        return None
    except Exception as exc:  # a bug here must not stop the other recorders
        write_gil_layout(str(folder.raw), {"error": f"GIL search failed: "
                                                    f"{type(exc).__name__}: {exc}"})
        return None
    write_gil_layout(str(folder.raw), layout)
    offset = layout["gil_addr"] - interpreter.runtime_addr
    notes.append(f"GIL found from outside at _PyRuntime+{offset} (CPython "
                 f"{interpreter.version_text}, {os.path.basename(interpreter.image)})")
    threads = AttachedThreads(interpreter, str(folder.raw_file(raw_files.THREADS)))
    try:
        threads.start()
    except RecorderUnavailable as exc:
        notes.append(f"GIL holder not matched to threads: {exc}")
        return None
    except Exception as exc:
        notes.append(f"GIL holder not matched to threads: {type(exc).__name__}: {exc}")
        return None
    return threads


def main(argv: list[str] | None = None) -> int:
    """Child mode for the Python API: record PID into RAW_DIR's run folder until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m tracer.attach")
    parser.add_argument("pid", type=int)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--options", default="{}", help="RecordOptions as JSON")
    args = parser.parse_args(argv)
    options = RecordOptions(**orjson.loads(args.options))
    folder = RunFolder(args.run_dir)
    stop = threading.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.buffer.read()
        stop.set()

    def ignore(signum: int, frame: FrameType | None) -> None:
        pass  # Ctrl-C reaches the whole process group; the API decides when we stop

    signal.signal(signal.SIGINT, ignore)
    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()

    def ready() -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    record_attached(args.pid, folder, options, None, stop.is_set, on_ready=ready, mode="api")
    return 0


if __name__ == "__main__":
    sys.exit(main())
