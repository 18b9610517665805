"""Jupyter/IPython: ``%load_ext tracer``, then a cell starting with ``%%tracer`` is recorded and
its report shown inline (the whole interactive report, in an iframe that needs no server).

A notebook kernel is a long-lived process: its own threads (heartbeat, I/O) show up in the
report, and a daemon thread started in a cell is never killed at "exit", because the kernel does
not exit. That is why the notebook's daemon example behaves differently there than in a script.
"""

from __future__ import annotations

import argparse
import html
import shlex
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import HTML, display

from tracer.api import record
from tracer.options import AppliesTo, add_flags, flagged


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%tracer", add_help=False)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--height", type=int, default=900, help="iframe height in pixels")
    add_flags(parser, AppliesTo.API)  # the options tracer.record() takes, as run spells them
    parser.set_defaults(viztracer=False)  # off unless asked for: it slows the cell
    return parser


def report_iframe(report: Path, height: int) -> str:
    """The report as an iframe whose document is inline: works offline, with no file server."""
    document = report.read_text(encoding="utf-8")
    return (f'<iframe srcdoc="{html.escape(document, quote=True)}" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #ddd" '
            'sandbox="allow-scripts"></iframe>'
            f"<div><small>threadscope report: {html.escape(str(report))}</small></div>")


@magics_class
class TracerMagics(Magics):
    @cell_magic
    def tracer(self, line: str, cell: str) -> None:
        """Record this cell's threads and show the report below it."""
        parser = _parser()
        try:
            args = parser.parse_args(shlex.split(line))
        except SystemExit:
            print(parser.format_usage().strip())
            return
        options = {f.name: getattr(args, f.name) for f in flagged(AppliesTo.API)}
        options["quiet"] = True
        folder = None
        try:
            with record(args.out, force=args.force, **options) as folder:
                shell: Any = self.shell
                result = shell.run_cell(cell)
                result.raise_error()
        except Exception:
            pass  # IPython has already shown the cell's traceback; the report says it failed
        if folder is not None and folder.report_html.is_file():
            display(HTML(report_iframe(folder.report_html, args.height)))


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(TracerMagics)
