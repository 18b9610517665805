"""`tracer list`: every scenario, one line each, grouped by concept."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from scenarios.registry import all_scenarios


class ListCommand:
    help = "list the scenarios, grouped by concept"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        console = Console()
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("scenario", style="cyan", no_wrap=True)
        table.add_column("what it measures")
        concept = None
        for scenario in sorted(all_scenarios(), key=lambda s: (s.concept, s.name)):
            if scenario.concept != concept:
                concept = scenario.concept
                table.add_row(f"[bold]{concept}[/bold]", "")
            table.add_row(f"  {scenario.name}", scenario.summary)
        console.print(table)
        console.print("\nRun one with: python -m tracer run NAME [-- --param value]")
        return 0
