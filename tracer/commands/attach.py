"""`tracer attach PID`: record a running process with the out-of-process recorders."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tracer.attach import record_attached
from tracer.errors import TargetNotFound
from tracer.interrupts import StopRequests, rebuild_hint
from tracer.options import AppliesTo, add_flags, from_args
from tracer.pipeline import analyse_and_present
from tracer.procfs import process_alive
from tracer.runfolder import RunFolder


class AttachCommand:
    help = "record a running Python process for a while (py-spy, OS sampler, perf)"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("pid", type=int, help="process id of a running Python program")
        parser.add_argument("--duration", type=float, default=10.0, metavar="S",
                            help="seconds to record (default: 10; Ctrl-C stops earlier)")
        parser.add_argument("--out", type=Path, help="run folder (default: threadscope_runs/)")
        parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
        parser.add_argument("--open", action="store_true", help="open report.html in a browser")
        add_flags(parser, AppliesTo.ATTACH)

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        if not process_alive(args.pid):
            raise TargetNotFound(f"no process with pid {args.pid}")
        folder = RunFolder.create(args.out, f"pid{args.pid}", force=args.force)
        # The in-process recorders cannot reach a process that is already running.
        options = from_args(args, AppliesTo.ATTACH, viztracer=False, locks=False)
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
