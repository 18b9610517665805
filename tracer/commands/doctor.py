"""`tracer doctor [--python PATH]`: which recorders will run here, what would enable the others, and
a clean-up of whatever a killed tracer left on the machine."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tracer.errors import RecorderUnavailable
from tracer.leftovers import delete_stale_uprobe_groups, stop_stray_perf_records
from tracer.readiness import HostFacts, TracefsFacts, Verdict, assess, gather, tracefs_facts
from tracer.tracefs import cleanup_stale, ensure_tracefs, find_tracefs


class DoctorCommand:
    help = "say which recorders can run here and how to enable the others; clean up after " \
           "killed runs"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--python", default=sys.executable, metavar="PATH",
                            help="the interpreter your targets run under (default: this one)")

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        cleaned = [*stop_stray_perf_records(), *cleanup_stale()]
        tracefs, removed = _look_at_tracefs()
        cleaned += [f"deleted uprobe group {group}:* of a threadscope run that is gone"
                    for group in removed]
        facts = gather(args.python, tracefs)
        verdicts = assess(facts)
        console = Console(highlight=False)
        _print(console, facts, verdicts, cleaned)
        return 0 if all(verdict.available for verdict in verdicts) else 1


def _look_at_tracefs() -> tuple[TracefsFacts, list[str]]:
    """tracefs as a run would see it, and the stale uprobe groups deleted. As root, tracefs is
    mounted for the look if it is not (and unmounted again): uprobes of a killed old-version run
    stay in the kernel, visible only through it."""
    if os.geteuid() != 0:
        path = find_tracefs()
        return tracefs_facts(path, False, "" if path else "not mounted, and only root can mount "
                                                          "it", False), []
    try:
        lease = ensure_tracefs()
    except RecorderUnavailable as exc:
        return tracefs_facts(None, False, str(exc), True), []
    try:
        return (tracefs_facts(lease.path, lease.mounted_here, "", True),
                delete_stale_uprobe_groups(lease.path))
    finally:
        lease.release()


def _print(console: Console, facts: HostFacts, verdicts: list[Verdict], cleaned: list[str]) -> None:
    py = facts.interpreter
    about = py.error or (f"CPython {py.version}, {py.libc or 'C library: not glibc'}")
    console.print(Text.assemble(("python ", "bold"), f"{py.python} ({about})"))
    console.print(Text.assemble(("machine ", "bold"),
                                f"{facts.platform} {facts.machine}, "
                                f"{'root' if facts.is_root else f'uid {os.geteuid()}'}"))
    table = Table(title="Recorders", title_justify="left", show_lines=True)
    table.add_column("recorder", no_wrap=True)
    table.add_column("runs here", no_wrap=True)
    table.add_column("why not, and how to enable it / what it uses", overflow="fold")
    for verdict in verdicts:
        lines = Text()
        for problem in verdict.problems:
            lines.append("✗ ", "red")
            lines.append(f"{problem.why}\n")
            lines.append("  → ", "bold")
            lines.append(f"{problem.fix}\n", "bold")
        for note in verdict.notes:
            lines.append(f"· {note}\n", "dim")
        lines.rstrip()
        table.add_row(verdict.recorder,
                      Text("yes", "green") if verdict.available else Text("no", "bold red"),
                      lines)
    console.print(table)
    if cleaned:
        console.print(Text("Cleaned up after earlier runs:", "bold"))
        for line in cleaned:
            console.print(f"  {line}", markup=False)
    else:
        console.print("Nothing left behind by earlier runs (stray perf record, uprobe groups, "
                      "tracefs mounts).")
    missing = [v.recorder for v in verdicts if not v.available]
    if missing:
        console.print(f"{len(missing)} of {len(verdicts)} recorders cannot run here: "
                      f"{', '.join(missing)}.", markup=False)
    else:
        console.print(f"All {len(verdicts)} recorders can run here.")
