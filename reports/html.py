"""The self-contained HTML report: one file that opens offline, years later, on any machine.

Plotly.js is inlined (no CDN, no network), the page shell is a Jinja2 template with autoescape on,
and figure data travels as JSON in a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` written as ``\\u003c`` etc., so no user string can close the script element.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from reports.explain import (
    STATE_PHRASES,
    ThreadGroup,
    ThreadSelection,
    deadlock_sentences,
    end_reason_words,
    explain,
    fmt_seconds,
    gil_figure_words,
    lock_called,
    ordered_threads,
    run_numbers,
    select_threads,
    thread_end_text,
    thread_label,
    thread_state_seconds,
    viztracer_headlines,
)
from reports.figures import (
    SEGMENT_BUDGET,
    STATE_COLOURS,
    STATE_NAMES,
    FigureSpec,
    all_figures,
    stack_hover_table,
)
from reports.intervals import has_gil_data
from tracer.model.schema import STATES, RunModel
from tracer.raw_files import RunStatus
from tracer.runfolder import atomic_write_text

TEMPLATES = Path(__file__).parent / "templates"
VENDORED_PLOTLY = Path(__file__).parent / "vendor" / "plotly-basic.min.js"
VENDORED_PLOTLY_VERSION = "4.1.1"
# Rows in the lock table and the "who waited on whom" table. The table is sorted worst first; a
# program can create thousands of locks (one per object), and the tail is uncontended noise that
# model.json still holds.
LOCK_ROWS = 100
WAITER_ROWS = 50
# Rows in the folded "every thread" list of a many-thread report. It is closed by default, so it
# costs parsing only; past this many, model.json has the rest.
ALL_THREAD_ROWS = 2_000
# How each figure's numbers were obtained, as a reader reads the badge (figure_sources values).
METHOD_MEANINGS = {
    "exact": "every event was recorded",
    "sampled": "read at a fixed rate; short events may be missed",
    "instrumented": "recorded from inside the program, which slows it a little",
    "missing": "not recorded in this run",
}
FIGURE_NAMES = {
    "cpu": "CPU time and parallelism",
    "gil": "GIL holder and waits",
    "gil_holder": "who held the GIL while nobody waited for it",
    "thread_states": "thread states on the timeline",
    "locks": "lock waits and holds",
}


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
        template_environment()
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
def template_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """plotly.js's basic bundle (all the report draws is bars and lines), a quarter of the full
    bundle's size and parse time, when it matches the plotly.js version the ``plotly`` package
    writes figures for; else that package's full bundle (see reports/vendor/README.md)."""
    if get_plotlyjs_version() == VENDORED_PLOTLY_VERSION and VENDORED_PLOTLY.is_file():
        return VENDORED_PLOTLY.read_text(encoding="utf-8")
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
    tid: str
    daemon: str
    start: str
    end: str
    cpu: str
    states: list[str]
    end_reason: str
    why: str = ""  # why a thread has its own row when the report folds threads
    gil: list[str] = field(default_factory=list)  # held, waiting, waits, longest wait


@dataclass
class LockRow:
    name: str
    kind: str
    site: str
    acquisitions: str
    contended: str
    wait: str
    mean_wait: str
    p95_wait: str
    max_wait: str
    hold: str
    max_hold: str
    made_by: str
    contended_any: bool


@dataclass
class WaiterRow:
    waiter: str
    holder: str
    lock: str
    count: int
    wait: str


@dataclass
class FigureSourceRow:
    figure: str
    method: str
    meaning: str


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
    failed = model.partial or not RunStatus.of(target.status).normal
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
        **_thread_tables(model, states),
        **_gil_columns(model),
        "model": model,
        "deadlocks": deadlock_sentences(model),
        "viztracer_headlines": viztracer_headlines(model),
        "figure_sources": dict(model.figure_sources),
        "figure_source_rows": _figure_source_rows(model.figure_sources),
        "method_meanings": METHOD_MEANINGS,
        "locks": _lock_panel(model),
    }


def _thread_tables(model: RunModel, states: list[str]) -> dict[str, Any]:
    """The thread table: every thread, or when there are too many, the selected ones, a summed
    row per folded group and the full list behind a closed ``<details>``."""
    selection = select_threads(model)
    rows = [_thread_row(t, states, model, selection) for t in selection.shown]
    if not selection.groups:
        return {"threads": rows, "thread_groups": [], "all_threads": [], "folding": None}
    everyone = ordered_threads(model)
    return {
        "threads": rows,
        "thread_groups": [_group_row(group, states) for group in selection.groups],
        "all_threads": [_thread_row(t, states, model) for t in everyone[:ALL_THREAD_ROWS]],
        "folding": {
            "total": len(everyone),
            "shown": len(selection.shown),
            "folded": selection.folded,
            "groups": [group.label for group in selection.groups],
            "all_hidden": max(0, len(everyone) - ALL_THREAD_ROWS),
        },
    }


def _gil_columns(model: RunModel) -> dict[str, Any]:
    """Whether the thread table has GIL columns, and what a sampled source's ± means there."""
    measured = [t for t in model.threads if t.gil_waits is not None]
    sampled = next((t.gil_sampled for t in measured if t.gil_sampled is not None), None)
    note = ""
    if sampled is not None:
        note = (f"GIL figures were sampled every {sampled.period_ms:.1f} ms. Shares are of each "
                "thread's life; ± is a 95% range (the sampling's quantisation and what the "
                "sampler's own ticks can shift). Where the samples cannot count waits or time "
                "the longest one, the figure is an estimate and (low–high) the bounds they "
                "prove: a wait between two samples shows only in the GIL's switch counter and "
                "the threads' context switches.")
    return {"gil_columns": bool(measured), "gil_note": note}


def _figure_source_rows(sources: dict[str, str]) -> list[FigureSourceRow]:
    return [
        FigureSourceRow(FIGURE_NAMES.get(name, name), method, METHOD_MEANINGS.get(method, ""))
        for name, method in sources.items()
    ]


def _lock_panel(model: RunModel) -> dict[str, Any] | None:
    """The lock section's tables, or None when no lock was recorded and none was looked for."""
    if not model.locks and "locks" not in model.figure_sources:
        return None
    ordered = sorted(
        model.locks,
        key=lambda row: (-float(row.get("wait_s") or 0), -int(row.get("acquisitions") or 0)),
    )
    labels = {t.tid: thread_label(t) for t in model.threads}
    waiters = [(row, waiter) for row in model.locks for waiter in row.get("waiters") or []]
    waiters.sort(key=lambda pair: -float(pair[1].get("wait_s") or 0))
    return {
        "rows": [_lock_row(row) for row in ordered[:LOCK_ROWS]],
        "total": len(ordered),
        "hidden": max(0, len(ordered) - LOCK_ROWS),
        "contended": sum(1 for row in ordered if int(row.get("contended") or 0) > 0),
        "waiters": [_waiter_row(row, w, labels) for row, w in waiters[:WAITER_ROWS]],
        "waiters_hidden": max(0, len(waiters) - WAITER_ROWS),
    }


def _lock_row(row: dict[str, Any]) -> LockRow:
    instances = int(row.get("instances") or 1)
    name = lock_called(row) + (f" ({instances} instances)" if instances > 1 else "")
    return LockRow(
        name=name,
        kind=str(row.get("kind") or "lock"),
        site=str(row.get("site") or "—"),
        acquisitions=f"{int(row.get('acquisitions') or 0):,}",
        contended=f"{int(row.get('contended') or 0):,}",
        wait=fmt_seconds(row.get("wait_s")),
        mean_wait=fmt_seconds(row.get("mean_wait_s")),
        p95_wait=fmt_seconds(row.get("p95_wait_s")),
        max_wait=fmt_seconds(row.get("max_wait_s")),
        hold=fmt_seconds(row.get("hold_s")),
        max_hold=fmt_seconds(row.get("max_hold_s")),
        made_by=str(row.get("made_by") or "your code"),
        contended_any=int(row.get("contended") or 0) > 0,
    )


def _waiter_row(row: dict[str, Any], waiter: dict[str, Any], labels: dict[int, str]) -> WaiterRow:
    def called(tid: Any) -> str:
        return labels.get(int(tid), f"thread {tid}")

    holder = waiter.get("holder")
    return WaiterRow(
        waiter=called(waiter.get("tid")),
        holder=called(holder) if holder is not None else "— (no single owner)",
        lock=f"{lock_called(row)} ({row.get('kind') or 'lock'})",
        count=int(waiter.get("count") or 0),
        wait=fmt_seconds(waiter.get("wait_s")),
    )


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
    if not RunStatus.of(status).normal:
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


def _thread_row(
    thread: Any, states: list[str], model: RunModel, selection: ThreadSelection | None = None
) -> ThreadRow:
    seconds = thread_state_seconds(thread)
    daemon = "—" if thread.daemon is None else ("yes" if thread.daemon else "no")
    why = selection.why(thread) if selection is not None else ""
    return ThreadRow(
        name=thread.name + (" (main)" if thread.is_main else ""),
        tid=str(thread.tid),
        daemon=daemon,
        start=_fmt_opt(thread.start_s),
        end=_fmt_opt(thread.end_s),
        cpu=f"{thread.cpu_s:.3f}",
        states=[f"{seconds.get(s, 0.0):.3f}" for s in states],
        end_reason=thread_end_text(thread, model.markers) or end_reason_words(thread.end_reason),
        why=why,
        gil=list(astuple(gil_figure_words(thread))),
    )


def _group_row(group: ThreadGroup, states: list[str]) -> ThreadRow:
    """A folded group's line: its threads' seconds summed, from the first start to the last end."""
    seconds = group.state_seconds()
    starts = [t.start_s for t in group.threads if t.start_s is not None]
    ends = [t.end_s for t in group.threads if t.end_s is not None]
    reasons: dict[str, int] = {}
    for thread in group.threads:
        words = end_reason_words(thread.end_reason)
        reasons[words] = reasons.get(words, 0) + 1
    return ThreadRow(
        name=group.label,
        tid="—",
        daemon="—",
        start=_fmt_opt(min(starts, default=None)),
        end=_fmt_opt(max(ends, default=None)),
        cpu=f"{group.cpu_s:.3f}",
        states=[f"{seconds.get(s, 0.0):.3f}" for s in states],
        end_reason=", ".join(f"{count} {words}" for words, count in reasons.items()),
        why="folded: the sum over these threads",
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
