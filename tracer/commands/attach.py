"""`tracer attach PID`: record a running process with the out-of-process recorders."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tracer.attach import record_attached
from tracer.errors import TargetNotFound
from tracer.interrupts import StopRequests, rebuild_hint
from tracer.pipeline import analyse_and_present
from tracer.procfs import process_alive
from tracer.runfolder import RunFolder
from tracer.session import RecordOptions


class AttachCommand:
    help = "record a running Python process for a while (py-spy, OS sampler, perf)"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("pid", type=int, help="process id of a running Python program")
        parser.add_argument("--duration", type=float, default=10.0, metavar="S",
                            help="seconds to record (default: 10; Ctrl-C stops earlier)")
        parser.add_argument("--out", type=Path, help="run folder (default: threadscope_runs/)")
        parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
        parser.add_argument("--open", action="store_true", help="open report.html in a browser")
        parser.add_argument("--rate", type=float, default=200.0, metavar="HZ",
                            help="OS sampler rate (default: 200 Hz)")
        for name, what in (("pyspy", "py-spy stack sampling"),
                           ("perf", "exact GIL waits from perf (the GIL's futex calls)"),
                           ("sched", "the /proc CPU sampler")):
            parser.add_argument(f"--no-{name}", dest=name, action="store_false",
                                help=f"do not record {what}")
        parser.add_argument("--no-perf-budget", dest="perf_budget", action="store_false",
                            help="record every GIL event and context switch even when that slows "
                                 "the program by more than ~10%% (by default exact recording "
                                 "stops then, the GIL sampler carries on, and the report says so)")
        parser.add_argument("--quiet", action="store_true", help="print only the report path")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        if not process_alive(args.pid):
            raise TargetNotFound(f"no process with pid {args.pid}")
        folder = RunFolder.create(args.out, f"pid{args.pid}", force=args.force)
        options = RecordOptions(rate_hz=args.rate, viztracer=False, locks=False,
                                pyspy=args.pyspy, perf=args.perf, sched=args.sched,
                                perf_budget=args.perf_budget, quiet=args.quiet)
        # Ctrl-C or SIGTERM ends the recording early, as --duration does (so the exit code is 0);
        # counted, not raised, so the recorders always stop and run.json is always written.
        stops = StopRequests()
        console = Console(stderr=True)
        with stops.deferred():
            if not args.quiet:
                console.print(f"recording pid {args.pid} for up to {args.duration:g} s "
                              "(Ctrl-C to stop earlier)", highlight=False)
            record_attached(args.pid, folder, options, args.duration, lambda: bool(stops.signals))
        with rebuild_hint(folder):
            analyse_and_present(folder, args.quiet, args.open)
        return 0
