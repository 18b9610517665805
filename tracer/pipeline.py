"""Recorded raw files -> model.json -> report.html and trace.json. Shared by `run`, `report`,
`attach` and the Python API."""

from __future__ import annotations

import contextlib
import webbrowser
from collections.abc import Iterator
from functools import partial

from rich.console import Console

from reports.view import ReportView, build_view
from scenarios.registry import get_scenario
from tracer.model.build import BuiltRun, build_run
from tracer.model.schema import RunModel
from tracer.model.side_by_side import Pending
from tracer.runfolder import RunFolder


@contextlib.contextmanager
def _step(console: Console | None, text: str) -> Iterator[None]:
    """Say what is being done on a terminal: big traces take seconds to analyse."""
    if console is None or not console.is_terminal:
        yield
        return
    with console.status(text, spinner="dots"):
        yield


def build_and_check(folder: RunFolder) -> BuiltRun:
    """The model of a recording, with a scenario's claims checked against it. The model itself
    knows nothing of scenarios: a scenario is one kind of target, and its checks read the
    finished model."""
    built = build_run(folder)
    model = built.model
    if model.target.kind == "scenario":
        scenario = get_scenario(model.target.name)
        if scenario is not None:
            model.scenario = scenario.describe()
            model.claims = scenario.check(model)
    return built


def analyse_and_render(folder: RunFolder, console: Console | None = None) -> RunModel:
    """Build model.json, trace.json and report.html from ``folder``'s raw files."""
    return _analyse_and_render(folder, console).model


def _analyse_and_render(folder: RunFolder, console: Console | None) -> ReportView:
    """The same, returning the report's view: built once here, read by every renderer."""
    # The renderers are imported here, not at the top: every CLI verb imports this module, and
    # `list` or `doctor` should not pay for loading Plotly and Jinja2 (reports.html).
    from reports.html import render_report
    from reports.perfetto import write_trace

    with _step(console, "analysing the recording..."):
        built = build_and_check(folder)
    # The three outputs are independent: model.json and trace.json are written by children
    # beside the report (tracer.model.side_by_side; inline where that cannot be).
    with contextlib.ExitStack() as writers:
        saving = writers.enter_context(Pending(partial(built.model.save, folder.model_json)))
        with _step(console, "building the report's view..."):
            view = build_view(built.model)
        tracing = writers.enter_context(Pending(partial(
            write_trace, view, folder.trace_json, function_chunks=built.functions.chunks)))
        with _step(console, "writing report.html..."):
            render_report(view, folder.report_html)
        with _step(console, f"writing trace.json ({built.functions.entries:,} function events) "
                            "and model.json"):
            saving.result()
            tracing.result()
    return view


def analyse_and_present(folder: RunFolder, quiet: bool = False,
                        open_report: bool = False) -> RunModel:
    """What every recording command ends with: analyse, render, then the terminal summary (or
    just the report's path with ``quiet``), and the report in a browser if asked."""
    console = Console(stderr=True)
    view = _analyse_and_render(folder, None if quiet else console)
    if quiet:
        console.print(str(folder.report_html), highlight=False, markup=False)
    else:
        from reports.summary import print_summary  # with the renderers above, for the same reason

        print_summary(view, folder.root, console)
    if open_report:
        webbrowser.open(folder.report_html.resolve().as_uri())
    return view.model
