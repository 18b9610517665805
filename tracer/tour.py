"""`tracer run all`: every scenario with its defaults, each in its own run folder, and an index
page linking the reports with their verdicts: a guided tour of the notebook, measured."""

from __future__ import annotations

import signal
import webbrowser
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reports.index import IndexEntry, render_index
from scenarios.registry import all_scenarios
from tracer.errors import ThreadscopeError
from tracer.interrupts import exit_code, signal_of
from tracer.model.schema import RunModel
from tracer.pipeline import analyse_and_render
from tracer.runfolder import RunFolder
from tracer.session import RecordOptions, record
from tracer.target import resolve

INDEX = "index.html"


def run_all(out: Path | None, options: RecordOptions, force: bool = False,
            open_index: bool = False) -> int:
    root = RunFolder.create(out, "all", force=force, with_raw=False).root
    console = Console(stderr=True)
    entries: list[IndexEntry] = []
    scenarios = all_scenarios()
    stopped_by: int | None = None  # Ctrl-C or SIGTERM ends the tour after the scenario it hit
    for number, scenario in enumerate(scenarios, 1):
        try:
            console.print(f"[{number}/{len(scenarios)}] {scenario.name}: {scenario.summary}",
                          highlight=False, markup=False)
            folder = RunFolder.create(root / scenario.name, scenario.name)
            try:
                result = record(resolve(scenario.name, []), folder, options)
                stopped_by = result.stop_signal
                model: RunModel | None = analyse_and_render(folder)
            except ThreadscopeError as exc:
                console.print(f"  could not record {scenario.name}: {exc}", markup=False)
                model = None
            entries.append(_entry(scenario.name, scenario.concept, scenario.section,
                                  scenario.summary, model))
        except KeyboardInterrupt as exc:  # between recordings, or while analysing one
            stopped_by = signal_of(exc)
        if stopped_by is not None:
            console.print(f"stopped by {signal.Signals(stopped_by).name} after {len(entries)} "
                          f"of {len(scenarios)} scenarios; the index lists those",
                          highlight=False, markup=False)
            break
    render_index(entries, root / INDEX)
    _print_verdicts(console, entries)
    console.print(f"index: {root / INDEX}", highlight=False, markup=False)
    if open_index:
        webbrowser.open((root / INDEX).resolve().as_uri())
    if stopped_by is not None:
        return exit_code(stopped_by)
    return 0 if all(entry.status != "error" for entry in entries) else 1


def _entry(name: str, concept: str, section: str, summary: str,
           model: RunModel | None) -> IndexEntry:
    if model is None:
        return IndexEntry(name, concept, section, summary, folder=name, status="error")
    return IndexEntry(
        scenario=name, concept=concept, section=section, summary=summary, folder=name,
        status=model.target.status, wall_s=model.wall_s,
        parallelism=model.metrics.parallelism,
        claims=[(c.claim, c.held, c.detail) for c in model.claims],
    )


def _print_verdicts(console: Console, entries: list[IndexEntry]) -> None:
    table = Table(title="The notebook, measured", title_justify="left")
    for column in ("scenario", "status", "held", "not held", "not checked"):
        table.add_column(column)
    for entry in entries:
        verdicts = [held for _, held, _ in entry.claims]
        table.add_row(entry.scenario, entry.status, str(verdicts.count(True)),
                      str(verdicts.count(False)), str(verdicts.count(None)))
    console.print(table)
