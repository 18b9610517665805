"""Recorded raw files -> model.json -> report.html and trace.json. Shared by `run` and `report`."""

from __future__ import annotations

from tracer.model.build import build_run
from tracer.model.schema import RunModel
from tracer.runfolder import RunFolder


def analyse_and_render(folder: RunFolder) -> RunModel:
    from reports.html import render_report
    from reports.perfetto import write_trace

    built = build_run(folder)
    built.model.save(folder.model_json)
    write_trace(built.model, folder.trace_json, built.functions.events)
    render_report(built.model, folder.report_html)
    return built.model
