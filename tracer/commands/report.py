"""`tracer report RUN_DIR`: rebuild model.json, report.html and trace.json from raw/."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from rich.console import Console

from tracer.pipeline import analyse_and_render
from tracer.runfolder import RunFolder


class ReportCommand:
    help = "rebuild a run's report from its raw recordings"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", type=Path, help="a run folder made by `tracer run`")
        parser.add_argument("--open", action="store_true", help="open report.html in a browser")
        parser.add_argument("--quiet", action="store_true", help="print only the report path")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        folder = RunFolder.existing(args.run_dir)
        model = analyse_and_render(folder, None if args.quiet else Console(stderr=True))
        console = Console(stderr=True)
        if args.quiet:
            console.print(str(folder.report_html))
        else:
            from reports.summary import print_summary

            print_summary(model, folder.root, console)
        if args.open:
            webbrowser.open(folder.report_html.resolve().as_uri())
        return 0
