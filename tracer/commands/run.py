"""`tracer run`: record a scenario, a script or a module, then analyse and report it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracer.inprocess import DEFAULT_TRACER_ENTRIES
from tracer.interrupts import rebuild_hint
from tracer.pipeline import analyse_and_present
from tracer.runfolder import RunFolder
from tracer.session import RecordOptions, record
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
        parser.add_argument("--timeout", type=float, metavar="S",
                            help="stop the target after S seconds (a partial report is written)")
        parser.add_argument("--rate", type=float, default=200.0, metavar="HZ",
                            help="OS sampler rate (default: 200 Hz, one sample per 5 ms switch "
                                 "interval)")
        parser.add_argument("--python", default=sys.executable, metavar="PATH",
                            help="interpreter that runs the target (default: this one)")
        parser.add_argument("--viztracer", action=argparse.BooleanOptionalAction, default=None,
                            help="record VizTracer's in-process function timeline (default: on "
                                 "for the bundled scenarios, off for your own scripts and "
                                 "modules: it slows Python code, 1.6-4.9x on real programs; "
                                 "the report estimates by how much)")
        parser.add_argument("--tracer-entries", type=int, default=DEFAULT_TRACER_ENTRIES,
                            metavar="N",
                            help=f"VizTracer's buffer size in events (default: "
                                 f"{DEFAULT_TRACER_ENTRIES:,}, about 10 s of a call-heavy "
                                 "program; up to 90 bytes each in the target, about "
                                 f"{DEFAULT_TRACER_ENTRIES * 90 / 1e9:.2f} GB when full, and "
                                 "about 170 bytes each while the report is made; the oldest "
                                 "calls are dropped past it, and the report says so first)")
        for name, what in (("pyspy", "py-spy stack sampling"),
                           ("perf", "exact GIL waits from perf (the GIL's futex calls)"),
                           ("gil_sampler", "the out-of-process GIL sampler"),
                           ("sched", "the /proc CPU sampler"),
                           ("locks", "lock-wait instrumentation")):
            parser.add_argument(f"--no-{name.replace('_', '-')}", dest=name,
                                action="store_false", help=f"do not record {what}")
        parser.add_argument("--no-perf-budget", dest="perf_budget", action="store_false",
                            help="record every GIL event and context switch even when that slows "
                                 "the program by more than ~10%% (by default exact recording "
                                 "stops then, the GIL sampler carries on, and the report says so)")
        parser.add_argument("--quiet", action="store_true", help="print only the report path")
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
            from tracer.tour import run_all

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
        return RecordOptions(
            python=args.python, timeout_s=args.timeout, rate_hz=args.rate,
            viztracer=scenario if args.viztracer is None else args.viztracer,
            viztracer_by_default=args.viztracer is None,
            pyspy=args.pyspy, sched=args.sched, perf=args.perf, perf_budget=args.perf_budget,
            gil_sampler=args.gil_sampler,
            locks=args.locks, tracer_entries=args.tracer_entries, quiet=args.quiet,
        )
