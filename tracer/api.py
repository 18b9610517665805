"""Record a block of your own program::

    import tracer

    with tracer.record("runs/checkout"):
        run_the_threads()

    @tracer.record()
    def main(): ...

The same run folder as ``tracer run`` (report.html, trace.json, model.json, raw/), made from
inside the program: the in-process recorders (thread hooks, lock instrumentation, and VizTracer
when asked for) start at the top of the block, and the out-of-process ones (OS sampler, py-spy,
GIL sampler, perf) run in a child process attached to this one, so they never compete for its GIL.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import webbrowser
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import orjson

from tracer import markers, raw_files
from tracer.errors import ThreadscopeError
from tracer.inprocess import DEFAULT_TRACER_ENTRIES, InProcessRecording
from tracer.options import RecordOptions
from tracer.runfolder import RunFolder

READY_TIMEOUT_S = 60.0


@contextlib.contextmanager
def record(out: str | os.PathLike[str] | None = None, *, force: bool = False,
           viztracer: bool = False, locks: bool = True, perf: bool = True, pyspy: bool = True,
           gil_sampler: bool = True, sched: bool = True, perf_budget: bool = True,
           rate_hz: float = 200.0, tracer_entries: int = DEFAULT_TRACER_ENTRIES,
           tasks: bool = True, slow_step_s: float = 0.1,
           open_report: bool = False, quiet: bool = False) -> Iterator[RunFolder]:
    """Record the threads of this process while the block runs, then write the report.

    Exceptions from the block propagate unchanged; the report is written first and says so.
    Usable as a decorator; with ``out=None`` each call gets a fresh run folder.
    ``viztracer=True`` adds VizTracer's function timeline, at a cost the report estimates
    (1.6-4.9x slower on real programs), which is why it is off unless asked for. The other
    keywords are the options of ``tracer run`` (:class:`tracer.options.RecordOptions` says what
    each does); ``--python`` and ``--timeout`` have none here, because the recorded process is
    this one and the block ends when it returns.
    """
    folder = RunFolder.create(Path(out) if out is not None else None, "record", force=force)
    options = RecordOptions(python=sys.executable, rate_hz=rate_hz, viztracer=viztracer,
                            viztracer_by_default=not viztracer, pyspy=pyspy, perf=perf,
                            gil_sampler=gil_sampler, sched=sched, perf_budget=perf_budget,
                            locks=locks, tracer_entries=tracer_entries, tasks=tasks,
                            slow_step_s=slow_step_s, quiet=quiet)
    recording = InProcessRecording(str(folder.raw.resolve()), **options.for_target())
    recording.prepare()
    previous_sink = markers.set_sink(str(folder.raw_file(raw_files.MARKERS).resolve()))
    child = _start_recorders(folder, options)
    try:
        recording.begin()
        try:
            yield folder
        except BaseException as exc:
            recording.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            recording.exit_code = None
            recording.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            recording.finish(reason="block ended")
            _stop_recorders(child)
    finally:
        recording.undo()
        markers.set_sink(previous_sink)
        _report(folder, quiet, open_report)


def _start_recorders(folder: RunFolder, options: RecordOptions) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tracer.attach", str(os.getpid()), str(folder.root.resolve()),
         "--options", orjson.dumps(asdict(options)).decode()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], READY_TIMEOUT_S)
    line = child.stdout.readline() if readable else b""
    if line.strip() != b"ready":
        child.kill()
        child.wait()
        raise ThreadscopeError("the out-of-process recorders did not start")
    return child


def _stop_recorders(child: subprocess.Popen[bytes]) -> None:
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _report(folder: RunFolder, quiet: bool, open_report: bool) -> None:
    from tracer.model import side_by_side
    from tracer.pipeline import analyse_and_render

    with side_by_side.inline():  # this is the user's process: no forks of it
        analyse_and_render(folder)
    if not quiet:
        print(f"threadscope: report written to {folder.report_html}", file=sys.stderr)
    if open_report:
        webbrowser.open(folder.report_html.resolve().as_uri())
