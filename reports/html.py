"""The self-contained HTML report: one file that opens offline, years later, on any machine.

Plotly.js is inlined (no CDN, no network), the page shell is a Jinja2 template with autoescape on,
and figure data (and the flame graph's) travels as JSON in ``<script type="application/json">``
blocks with ``<``, ``>`` and ``&`` written as ``\\u003c`` etc., so no user string can close the
script element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from reports import prose
from reports.figures import SEGMENT_BUDGET, FigureSpec, build_figures
from reports.figures.layout import PlotlyDict, shorten, stack_hover_table
from reports.format import (
    MISSING,
    daemon_word,
    fmt_fixed,
    fmt_seconds,
    gil_figure_words,
    thread_row_name,
)
from reports.processes_view import ProcessTable
from reports.tasks_html import TasksPanel, tasks_panel
from reports.threads import ThreadGroup, ThreadSelection, thread_state_seconds
from reports.view import ReportView, RunNumbers, as_view
from reports.vocabulary import (
    FIGURE_NAMES,
    METHOD_MEANINGS,
    blocked_cause_phrase,
    blocked_cause_short,
    end_reason_words,
    method_meaning,
    state_colour,
    state_name,
    state_phrase,
)
from reports.where_html import WherePanel, flame_payload, where_panel
from tracer.model.schema import (
    Claim,
    LockStats,
    LockWaiter,
    Marker,
    Method,
    RunModel,
    Source,
    Target,
    ThreadTimeline,
)
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
def render_report(source: RunModel | ReportView, out: Path) -> None:
    """Write the report for ``source`` (the pipeline's view, or a model) to ``out`` atomically."""
    atomic_write_text(out, render_report_html(source))


def render_report_html(source: RunModel | ReportView, budget: int = SEGMENT_BUDGET) -> str:
    view = as_view(source)
    figures = build_figures(view, budget)
    payload = {
        "figures": [_figure_payload(spec) for spec in figures],
        "stacks": stack_hover_table(view.model.stacks),
    }
    return (
        template_environment()
        .get_template("report.html.j2")
        .render(
            page=_page(view, figures),
            figures_json=Markup(script_json(payload)),  # escaped by script_json
            where_json=Markup(script_json(flame_payload(view.where))),  # the same
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


def _figure_payload(spec: FigureSpec) -> PlotlyDict:
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
    name: str  # in full: the cell's title
    label: str  # what the cell shows, one line (figures.layout.shorten)
    tid: str
    daemon: str
    start: str
    end: str
    cpu: str
    states: list[str]
    end_reason: str
    why: str = ""  # why a thread has its own row when the report folds threads
    gil: list[str] = field(default_factory=list)  # held, waiting, waits, longest wait
    blocked_by: str = ""  # the top cause of its blocked time and its share: "file lock 93%"
    blocked_by_title: str = ""  # every cause with its seconds


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
    signal: bool = False  # waited on for a signal (Event, Condition, Barrier, queue): not a lock


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


@dataclass(frozen=True)
class Folding:
    """What the page says when it folds threads: how many, and into which groups."""

    total: int
    shown: int
    folded: int
    groups: list[str]
    all_hidden: int  # threads past ALL_THREAD_ROWS, left to model.json


@dataclass(frozen=True)
class LockPanel:
    """The lock section's tables."""

    rows: list[LockRow]
    total: int
    hidden: int
    contended: int  # locks that made a thread wait while another thread held them
    waiters: list[WaiterRow]
    waiters_hidden: int
    signalled: int = 0  # primitives a thread waited on for a signal (not contention)


@dataclass(frozen=True)
class Page:
    """Everything the template shows, as plain values (the template escapes them)."""

    target: Target
    title: str
    failed: bool
    failure: str
    banner: str
    numbers: RunNumbers
    explanation: list[str]
    claims: list[Claim]
    warnings: list[str]
    sources: list[SourceRow]
    figures: dict[str, FigureSpec]
    gil_recorded: bool
    states: list[str]
    state_names: dict[str, str]
    state_colours: dict[str, str]
    state_phrases: dict[str, str]
    threads: list[ThreadRow]
    thread_groups: list[ThreadRow]
    all_threads: list[ThreadRow]
    folding: Folding | None
    gil_columns: bool
    gil_note: str
    model: RunModel
    deadlocks: list[str]
    viztracer_headlines: list[str]
    figure_sources: dict[str, Method]
    figure_source_rows: list[FigureSourceRow]
    method_meanings: dict[Method, str]
    locks: LockPanel | None
    where: WherePanel
    processes: ProcessTable | None
    tasks: TasksPanel | None


def _page(view: ReportView, figures: list[FigureSpec]) -> Page:
    model = view.model
    states = view.numbers.states
    failed = prose.failed(model)
    threads, groups, everyone, folding = _thread_tables(view, states)
    gil_columns, gil_note = _gil_columns(model)
    return Page(
        target=model.target,
        title=model.target.name,
        failed=failed,
        failure=prose.failure_text(model) if failed else "",
        banner=prose.status_banner(model),
        numbers=view.numbers,
        explanation=prose.explain(view),
        claims=model.claims,
        warnings=model.warnings,
        sources=[_source_row(name, source) for name, source in model.sources.items()],
        figures={spec.div_id: spec for spec in figures},
        gil_recorded=view.gil_recorded,
        states=states,
        state_names={s: state_name(s) for s in states},
        state_colours={s: state_colour(s) for s in states},
        state_phrases={s: state_phrase(s) for s in states},
        threads=threads,
        thread_groups=groups,
        all_threads=everyone,
        folding=folding,
        gil_columns=gil_columns,
        gil_note=gil_note,
        model=model,
        deadlocks=prose.deadlock_sentences(view),
        viztracer_headlines=prose.viztracer_headlines(model),
        figure_sources=dict(model.figure_sources),
        figure_source_rows=_figure_source_rows(model.figure_sources),
        method_meanings=dict(METHOD_MEANINGS),
        locks=_lock_panel(view),
        where=where_panel(view),
        processes=view.processes,
        tasks=tasks_panel(view),
    )


def _thread_tables(
    view: ReportView, states: list[str]
) -> tuple[list[ThreadRow], list[ThreadRow], list[ThreadRow], Folding | None]:
    """The thread table: every thread, or when there are too many, the selected ones, a summed
    row per folded group and the full list behind a closed ``<details>``."""
    selection = view.selection
    markers = view.model.markers
    rows = [_thread_row(t, states, markers, selection) for t in selection.shown]
    if not selection.groups:
        return rows, [], [], None
    everyone = view.threads
    folding = Folding(
        total=len(everyone),
        shown=len(selection.shown),
        folded=selection.folded,
        groups=[group.label for group in selection.groups],
        all_hidden=max(0, len(everyone) - ALL_THREAD_ROWS),
    )
    return (
        rows,
        [_group_row(group, states) for group in selection.groups],
        [_thread_row(t, states, markers) for t in everyone[:ALL_THREAD_ROWS]],
        folding,
    )


def _gil_columns(model: RunModel) -> tuple[bool, str]:
    """Whether the thread table has GIL columns, and what a sampled source's ± means there."""
    measured = [t for t in model.threads if t.gil_waits is not None]
    sampled = next((t.gil_sampled for t in measured if t.gil_sampled is not None), None)
    note = prose.sampled_gil_note(sampled.period_ms) if sampled is not None else ""
    return bool(measured), note


def _figure_source_rows(sources: dict[str, Method]) -> list[FigureSourceRow]:
    return [
        FigureSourceRow(FIGURE_NAMES.get(name, name), method, method_meaning(method))
        for name, method in sources.items()
    ]


def _lock_panel(view: ReportView) -> LockPanel | None:
    """The lock section's tables, or None when no lock was recorded and none was looked for."""
    model = view.model
    if not model.locks and "locks" not in model.figure_sources:
        return None
    # Contention heads the table (and who waited on whom): a thread that slept in Event.wait
    # for seconds must not rank above a lock other threads queued for.
    ordered = sorted(model.locks,
                     key=lambda row: (not row.contention, -row.wait_s, -row.acquisitions))
    waiters = [(row, waiter) for row in model.locks for waiter in row.waiters]
    waiters.sort(key=lambda pair: (not pair[0].contention, -pair[1].wait_s))
    return LockPanel(
        rows=[_lock_row(row) for row in ordered[:LOCK_ROWS]],
        total=len(ordered),
        hidden=max(0, len(ordered) - LOCK_ROWS),
        contended=sum(1 for row in ordered if row.contention and row.contended > 0),
        signalled=sum(1 for row in ordered if not row.contention and row.contended > 0),
        waiters=[_waiter_row(row, w, view.labels) for row, w in waiters[:WAITER_ROWS]],
        waiters_hidden=max(0, len(waiters) - WAITER_ROWS),
    )


def _lock_row(row: LockStats) -> LockRow:
    instances = row.instances
    name = row.name + (f" ({instances} instances)" if instances > 1 else "")
    return LockRow(
        name=name,
        kind=row.kind,
        site=row.site or MISSING,
        acquisitions=f"{row.acquisitions:,}",
        contended=f"{row.contended:,}",
        wait=fmt_seconds(row.wait_s),
        mean_wait=fmt_seconds(row.mean_wait_s),
        p95_wait=fmt_seconds(row.p95_wait_s),
        max_wait=fmt_seconds(row.max_wait_s),
        hold=fmt_seconds(row.hold_s),
        max_hold=fmt_seconds(row.max_hold_s),
        made_by=row.made_by or "your code",
        contended_any=row.contended > 0,
        signal=not row.contention,
    )


def _waiter_row(row: LockStats, waiter: LockWaiter, labels: Mapping[int, str]) -> WaiterRow:
    def called(tid: int) -> str:
        return labels.get(tid, f"thread {tid}")

    return WaiterRow(
        waiter=called(waiter.tid),
        holder=called(waiter.holder) if waiter.holder is not None else (
            "— (no single owner)" if row.contention else "— (a signal: no holder)"),
        lock=f"{row.name} ({row.kind})",
        count=waiter.count,
        wait=fmt_seconds(waiter.wait_s),
    )


def _thread_row(
    thread: ThreadTimeline, states: list[str], markers: Sequence[Marker],
    selection: ThreadSelection | None = None,
) -> ThreadRow:
    seconds = thread_state_seconds(thread)
    blocked = _blocked_cells(thread.blocked_by)
    main = thread_row_name(thread)[len(thread.name):]  # " (main)" or ""
    return ThreadRow(
        name=thread_row_name(thread),
        label=shorten(thread.name) + main,
        tid=str(thread.tid),
        daemon=daemon_word(thread),
        start=fmt_fixed(thread.start_s),
        end=fmt_fixed(thread.end_s),
        cpu=f"{thread.cpu_s:.3f}",
        states=[f"{seconds.get(s, 0.0):.3f}" for s in states],
        end_reason=prose.thread_end_text(thread, markers) or end_reason_words(thread.end_reason),
        why=selection.why(thread) if selection is not None else "",
        gil=list(astuple(gil_figure_words(thread))),
        blocked_by=blocked[0],
        blocked_by_title=blocked[1],
    )


def _blocked_cells(blocked_by: Mapping[str, float]) -> tuple[str, str]:
    """The "blocked by" cell: the top cause and its share of the blocked time, with every cause
    and its seconds in the cell's title."""
    total = sum(blocked_by.values())
    if total <= 0:
        return MISSING, ""
    ranked = sorted(blocked_by.items(), key=lambda item: -item[1])
    cause, seconds = ranked[0]
    share = seconds / total
    return (f"{blocked_cause_short(cause)} {prose.share_words(share)}",
            "; ".join(f"{blocked_cause_phrase(c)}: {fmt_seconds(t)}" for c, t in ranked))


def _group_row(group: ThreadGroup, states: list[str]) -> ThreadRow:
    """A folded group's line: its threads' seconds summed, from the first start to the last end."""
    seconds = group.state_seconds()
    blocked = _blocked_cells(_summed_causes(group.threads))
    starts = [t.start_s for t in group.threads if t.start_s is not None]
    ends = [t.end_s for t in group.threads if t.end_s is not None]
    reasons: dict[str, int] = {}
    for thread in group.threads:
        words = end_reason_words(thread.end_reason)
        reasons[words] = reasons.get(words, 0) + 1
    return ThreadRow(
        name=group.label,
        label=group.label,
        tid=MISSING,
        daemon=MISSING,
        start=fmt_fixed(min(starts, default=None)),
        end=fmt_fixed(max(ends, default=None)),
        cpu=f"{group.cpu_s:.3f}",
        states=[f"{seconds.get(s, 0.0):.3f}" for s in states],
        end_reason=", ".join(f"{count} {words}" for words, count in reasons.items()),
        why="folded: the sum over these threads",
        blocked_by=blocked[0],
        blocked_by_title=blocked[1],
    )


def _summed_causes(threads: Sequence[ThreadTimeline]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for thread in threads:
        for cause, seconds in thread.blocked_by.items():
            summed[cause] = summed.get(cause, 0.0) + seconds
    return summed


def _source_row(name: str, source: Source) -> SourceRow:
    return SourceRow(
        name=name,
        used=source.used,
        method=source.method or MISSING,
        rate=MISSING if source.rate_hz is None else f"{source.rate_hz:g} Hz",
        samples=MISSING if source.samples is None else f"{source.samples:,}",
        reason=source.reason,
        notes=list(source.notes),
    )
