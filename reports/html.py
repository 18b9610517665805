"""The self-contained HTML report: one file that opens offline, years later, on any machine.

Plotly.js is inlined (no CDN, no network), the page shell is a Jinja2 template with autoescape on,
and figure data travels as JSON in a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` written as ``\\u003c`` etc., so no user string can close the script element.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from reports.explain import (
    STATE_PHRASES,
    explain,
    ordered_threads,
    run_numbers,
    thread_state_seconds,
)
from reports.figures import (
    SEGMENT_BUDGET,
    STATE_COLOURS,
    STATE_NAMES,
    FigureSpec,
    all_figures,
    has_gil_data,
    stack_hover_table,
)
from tracer.model.schema import STATES, RunModel
from tracer.runfolder import atomic_write_text

TEMPLATES = Path(__file__).parent / "templates"


def render_report(model: RunModel, out: Path) -> None:
    """Write the report for ``model`` to ``out`` atomically."""
    atomic_write_text(out, render_report_html(model))


def render_report_html(model: RunModel, budget: int = SEGMENT_BUDGET) -> str:
    figures = all_figures(model, budget)
    payload = {
        "figures": [_figure_payload(spec) for spec in figures],
        "stacks": stack_hover_table(model.stacks),
    }
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            page=_page(model, figures),
            figures_json=Markup(script_json(payload)),  # escaped by script_json
            plotly_js=Markup(_plotly_js()),  # plotly's own bundle
        )
    )


def script_json(value: Any) -> str:
    """JSON safe inside a script element: no ``<``, ``>`` or ``&`` survives literally."""
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return (
        text.decode("utf-8")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return str(get_plotlyjs())


def _figure_payload(spec: FigureSpec) -> dict[str, Any]:
    plotly_json = spec.figure.to_plotly_json()
    return {
        "id": spec.div_id,
        "data": plotly_json["data"],
        "layout": plotly_json["layout"],
        "labels": spec.labels,
        "hover": spec.hover,
    }


@dataclass
class ThreadRow:
    name: str
    tid: int
    daemon: str
    start: str
    end: str
    cpu: str
    states: list[str]
    end_reason: str


@dataclass
class SourceRow:
    name: str
    used: bool
    method: str
    rate: str
    samples: str
    reason: str
    notes: list[str]


def _page(model: RunModel, figures: list[FigureSpec]) -> dict[str, Any]:
    """Everything the template shows, as plain values (the template escapes them)."""
    numbers = run_numbers(model)
    states = [s for s in STATES if numbers.state_s.get(s, 0.0) > 0]
    states += sorted(s for s in numbers.state_s if s not in STATES)
    target = model.target
    failed = model.partial or target.status != "ok"
    return {
        "target": target,
        "title": target.name,
        "failed": failed,
        "failure": _failure_text(model) if failed else "",
        "banner": _banner(model),
        "numbers": numbers,
        "explanation": explain(model),
        "claims": model.claims,
        "warnings": model.warnings,
        "sources": [_source_row(name, source) for name, source in model.sources.items()],
        "figures": {spec.div_id: spec for spec in figures},
        "gil_recorded": has_gil_data(model),
        "states": states,
        "state_names": {s: STATE_NAMES.get(s, s) for s in states},
        "state_colours": {s: STATE_COLOURS.get(s, "#666666") for s in states},
        "state_phrases": {s: STATE_PHRASES.get(s, s) for s in states},
        "threads": [_thread_row(t, states) for t in ordered_threads(model)],
        "model": model,
    }


def _banner(model: RunModel) -> str:
    """The banner's headline word: the worst thing about the run."""
    headlines = {
        "timeout": "TIMED OUT",
        "failed": "FAILED",
        "interrupted": "INTERRUPTED",
        "killed": "KILLED",
        "error": "FAILED",
    }
    status = model.target.status
    if status != "ok":
        headline = headlines.get(status, status.upper())
        return headline + (" — partial recording" if model.partial else "")
    return "PARTIAL recording" if model.partial else ""


def _failure_text(model: RunModel) -> str:
    status = model.target.status
    words = {
        "timeout": "timed out",
        "failed": "failed",
        "interrupted": "was interrupted",
        "killed": "was killed",
        "error": "ended with an error",
    }
    text = f"The target {words.get(status, status)}"
    if model.target.exit_code is not None:
        text += f" (exit code {model.target.exit_code})"
    if model.partial:
        text += "; the recording is partial, so figures cover only what was captured"
    if model.target.error:
        text += f": {model.target.error}"
    return text + "."


def _fmt_opt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _thread_row(thread: Any, states: list[str]) -> ThreadRow:
    seconds = thread_state_seconds(thread)
    daemon = "—" if thread.daemon is None else ("yes" if thread.daemon else "no")
    return ThreadRow(
        name=thread.name + (" (main)" if thread.is_main else ""),
        tid=thread.tid,
        daemon=daemon,
        start=_fmt_opt(thread.start_s),
        end=_fmt_opt(thread.end_s),
        cpu=f"{thread.cpu_s:.3f}",
        states=[f"{seconds.get(s, 0.0):.3f}" for s in states],
        end_reason=thread.end_reason or "—",
    )


def _source_row(name: str, source: Any) -> SourceRow:
    return SourceRow(
        name=name,
        used=source.used,
        method=source.method or "—",
        rate="—" if source.rate_hz is None else f"{source.rate_hz:g} Hz",
        samples="—" if source.samples is None else f"{source.samples:,}",
        reason=source.reason,
        notes=list(source.notes),
    )
