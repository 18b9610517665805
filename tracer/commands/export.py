"""`tracer export RUN_DIR --format collapsed|speedscope`: the run's stacks for flame-graph tools,
from model.json (never from raw/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracer.errors import ThreadscopeError
from tracer.export import ALL_STATES, FORMATS, STATE_CHOICES, Selection, select_threads
from tracer.model.schema import RunModel
from tracer.runfolder import RunFolder, atomic_write_bytes

FORMAT_HELP = (
    "collapsed: folded stacks for flamegraph.pl or inferno, one line per stack, frames "
    "'function (file:line)' outermost first joined by ';', then a space and the time in whole "
    "microseconds; with more than one thread each stack starts with 'name (tid N)'; in names ';' "
    "becomes ':' and a line break the two characters '\\n'. speedscope: its JSON file format, one "
    "sampled profile per thread weighted in seconds (open it at https://www.speedscope.app)"
)


class ExportCommand:
    help = "write a run's stacks for flame-graph tools (flamegraph.pl, inferno, speedscope)"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", type=Path, help="a run folder made by `tracer run`")
        parser.add_argument("--format", required=True, choices=sorted(FORMATS), help=FORMAT_HELP)
        parser.add_argument("--state", default=ALL_STATES, metavar="STATE",
                            help="only the time spent in this state: " + ", ".join(STATE_CHOICES)
                            + f" (default: {ALL_STATES}, every state together)")
        parser.add_argument("--thread", metavar="NAME",
                            help="only this thread: a name (every thread of that name) or a tid")
        parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                            help="write to FILE (atomically) instead of standard output")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        folder = RunFolder.existing(args.run_dir)
        if not folder.model_json.is_file():
            raise ThreadscopeError(f"{folder.model_json} is missing; build it with "
                                   f"`python -m tracer report {args.run_dir}`")
        model = RunModel.load(folder.model_json)
        selection = Selection(args.state, select_threads(model, args.thread))
        payload = FORMATS[args.format](model, selection)
        if args.output is not None:
            atomic_write_bytes(args.output, payload)
            return 0
        try:
            sys.stdout.buffer.write(payload)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # `| head`: the reader has all it wanted
            sys.stderr.close()  # keep the interpreter's exit flush from complaining
        return 0
