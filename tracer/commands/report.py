"""`tracer report RUN_DIR`: rebuild model.json, report.html and trace.json from raw/."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracer.pipeline import analyse_and_present
from tracer.runfolder import RunFolder


class ReportCommand:
    help = "rebuild a run's report from its raw recordings"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", type=Path, help="a run folder made by `tracer run`")
        parser.add_argument("--open", action="store_true", help="open report.html in a browser")
        parser.add_argument("--quiet", action="store_true", help="print only the report path")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        folder = RunFolder.existing(args.run_dir)
        analyse_and_present(folder, args.quiet, args.open)
        return 0
