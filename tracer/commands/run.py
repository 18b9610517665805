"""`tracer run`: record a scenario, a script or a module, then analyse and report it."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracer.interrupts import rebuild_hint
from tracer.options import AppliesTo, RecordOptions, add_flags, from_args
from tracer.pipeline import analyse_and_present
from tracer.runfolder import RunFolder
from tracer.session import record
from tracer.target import resolve


class RunCommand:
    help = "record a scenario, a script or a module and write a report"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.usage = ("python -m tracer run [OPTIONS] (SCENARIO | all | SCRIPT.py | -m MODULE) "
                        "[ARGS...]")
        parser.add_argument("target", nargs="?", help="scenario name or path of a script")
        parser.add_argument("-m", dest="module", metavar="MODULE",
                            help="run a module, like python -m")
        parser.add_argument("--out", type=Path,
                            help="run folder (default: threadscope_runs/NAME-TIME)")
        parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
        parser.add_argument("--open", action="store_true", help="open report.html in a browser")
        add_flags(parser, AppliesTo.RUN)
        parser.add_argument("target_args", nargs=argparse.REMAINDER, metavar="ARGS",
                            help="the program's arguments (after the target, or after --)")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        target_args: list[str] = list(args.target_args)
        if target_args[:1] == ["--"]:
            target_args = target_args[1:]
        if args.target == "--":
            args.target = target_args.pop(0) if target_args and not args.module else None
        if args.module and args.target:
            target_args.insert(0, args.target)
        if not args.module and not args.target:
            parser.error("name a scenario, a script or -m MODULE")
        if args.target == "all" and not args.module and not Path("all").exists():
            if target_args:
                parser.error("`run all` runs every scenario with its defaults; it takes no ARGS")
            from tracer.tour import run_all  # here: it imports plotly and jinja2 (~0.2 s)

            return run_all(args.out, self._options(args, scenario=True), force=args.force,
                           open_index=args.open)
        spec = resolve(args.module or args.target, target_args, as_module=bool(args.module))
        options = self._options(args, scenario=spec.kind == "scenario")
        folder = RunFolder.create(args.out, spec.label, force=args.force)
        result = record(spec, folder, options)
        with rebuild_hint(folder):
            analyse_and_present(folder, args.quiet, args.open)
        return result.exit_code

    @staticmethod
    def _options(args: argparse.Namespace, scenario: bool) -> RecordOptions:
        """VizTracer, unless asked either way, only for the bundled scenarios: they teach with
        its function timeline and are short, while the user's own program is what they came to
        measure, and VizTracer would slow it (the report says how much when it is on)."""
        given = args.viztracer  # None: neither --viztracer nor --no-viztracer
        return from_args(args, AppliesTo.RUN, viztracer=scenario if given is None else given,
                         viztracer_by_default=given is None)
