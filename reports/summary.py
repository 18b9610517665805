"""The terminal summary printed at the end of ``tracer run`` and ``tracer report``.

It answers, without opening a browser: did the run finish (or deadlock), did VizTracer overflow
or slow it so much that its figures mislead (said first), how parallel was it, what each thread
did, which locks cost the most waiting, the three biggest items of where the time went in the code
(and who kept whom waiting), which recorders ran (and why the others did not), and
where the report files are. Text from user code is printed with rich markup disabled, so a
thread named ``[red]x[/red]`` stays literal.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

from reports import prose
from reports.format import (
    MISSING,
    daemon_word,
    fmt_fixed,
    fmt_seconds,
    gil_figure_words,
    thread_row_name,
)
from reports.processes_view import ProcessTable
from reports.threads import ThreadGroup, thread_state_seconds
from reports.view import ReportView, RunNumbers, as_view
from reports.vocabulary import end_reason_short, state_heading
from tracer.model.schema import Claim, LockStats, RunModel, Source, ThreadTimeline
from tracer.raw_files import SourceName

FILES = ("report.html", "trace.json", "model.json")
# Locks listed in the terminal; the report and model.json have them all.
TOP_LOCKS = 5
# Primitives waited on for a signal (Event, Condition, Barrier, queue), listed under the locks.
TOP_SIGNALS = 3
# Culprits of "where the time went" printed; report.html has the tables and the flame graph.
WHERE_ITEMS = 3
# A width no table reaches: what a table is measured in to find the width its content needs.
UNBOUNDED = 100_000


def print_summary(source: RunModel | ReportView, run_dir: Path, console: Console) -> None:
    """Print the whole summary to ``console``; ``source`` is the pipeline's view (or a model)."""
    view = as_view(source)
    model = view.model
    _print_status(view, console)
    for line in prose.viztracer_headlines(model):
        console.print(Text(line, style="bold yellow"))
    _print_numbers(view.numbers, console)
    print_table(_thread_table(view), console)
    gil = _gil_table(view)
    if gil is not None:
        print_table(gil, console)
    if view.processes is not None:
        print_table(_process_table(view.processes), console)
    _print_locks(model, console)
    _print_where(view, console)
    _print_tasks(view, console)
    print_table(_source_table(model.sources), console)
    if model.claims:
        print_table(_claims_table(model.claims), console)
    for warning in model.warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), warning))
    _print_files(run_dir, console)


def print_table(table: Table, console: Console) -> None:
    """A table on a terminal as rich fits it to the window; anywhere else (piped, redirected) at
    least as wide as its content needs, so no column is squeezed away or cut to "0.…".

    A file has no window to fit: rich would lay it out at 80 columns and, with a dozen columns,
    drop the thread names and ellipsise every number. The table's minimum width is what keeps
    every cell of a no-wrap column whole and every word of a wrapping one, so it is printed at
    that width when the console is narrower (uncropped: the lines are as long as they need).
    """
    if console.is_terminal:
        console.print(table)
        return
    needed = Measurement.get(console, console.options.update_width(UNBOUNDED), table).minimum
    if needed <= console.width:
        console.print(table)
        return
    lines = console.render(table, console.options.update_width(needed))
    console.print(Segments(lines), crop=False)


def _print_status(view: ReportView, console: Console) -> None:
    model = view.model
    target = model.target
    line = Text.assemble(
        ("threadscope ", "bold"), (f"{target.kind} ", "dim"), (target.name, "bold")
    )
    line.append(f"  (Python {target.python_version})", style="dim")
    console.print(line)
    failed = prose.failed(model)
    status = Text(f"status: {target.status}", style="bold red" if failed else "bold green")
    if target.exit_code is not None:
        status.append(f" (exit code {target.exit_code})")
    if model.partial:
        status.append("  PARTIAL RECORDING: figures cover only what was captured", style="bold red")
    if target.error:
        status.append(f"  {target.error}", style="red")
    console.print(status)
    for sentence in prose.deadlock_sentences(view):
        console.print(Text.assemble(("DEADLOCK: ", "bold red"), (sentence + ".", "red")))


def _print_numbers(n: RunNumbers, console: Console) -> None:
    parallelism = MISSING if n.parallelism is None else f"{n.parallelism:.2f}"
    console.print(
        Text.assemble(
            "wall ",
            (f"{n.wall_s:.3f} s", "bold"),
            "   CPU ",
            (f"{n.cpu_s:.3f} s", "bold"),
            "   CPU parallelism ",
            (parallelism, "bold"),
            f" on {n.cores} cores",
            f"   threads {n.threads}",
        )
    )


def _thread_table(view: ReportView) -> Table:
    states = view.numbers.states
    table = Table(
        title="Threads (seconds)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    # rich does not wrap headers, so two-word headings are split by hand; the numbers and the end
    # reason never wrap, and the name column takes what is left (folding long names).
    table.add_column("thread", overflow="fold")
    for heading in ("tid", "daemon", "start", "end", "CPU s"):
        table.add_column(heading, justify="right", no_wrap=True)
    for state in states:
        table.add_column(state_heading(state), justify="right", no_wrap=True)
    table.add_column("end\nreason", no_wrap=True)
    selection = view.terminal_selection
    for thread in selection.shown:
        table.add_row(*_thread_cells(thread, states))
    for group in selection.groups:
        table.add_row(*_group_cells(group, states), style="italic")
    if selection.groups:
        table.caption = prose.folded_caption(selection, len(view.model.threads))
        table.caption_justify = "left"
    return table


def _thread_cells(thread: ThreadTimeline, states: list[str]) -> list[Text | str]:
    seconds = thread_state_seconds(thread)
    return [
        Text(thread_row_name(thread)),
        str(thread.tid),
        daemon_word(thread),
        fmt_fixed(thread.start_s),
        fmt_fixed(thread.end_s),
        f"{thread.cpu_s:.3f}",
        *[fmt_fixed(seconds.get(s, 0.0)) for s in states],
        Text(end_reason_short(thread.end_reason)),
    ]


def _group_cells(group: ThreadGroup, states: list[str]) -> list[Text | str]:
    seconds = group.state_seconds()
    return [
        Text(group.label),
        MISSING,
        MISSING,
        "",
        "",
        f"{group.cpu_s:.3f}",
        *[fmt_fixed(seconds.get(s, 0.0)) for s in states],
        "",
    ]


def _gil_table(view: ReportView) -> Table | None:
    """Per thread: GIL held and wait shares of its life, waits and the longest one; sampled
    figures with their ± and the bounds the samples prove (reports.format.gil_figure_words)."""
    shown = [t for t in view.terminal_selection.shown if t.gil_waits is not None]
    if not shown:
        return None
    sampled = next((t.gil_sampled for t in shown if t.gil_sampled is not None), None)
    title = "GIL per thread" + (
        prose.sampled_gil_title(sampled.period_ms) if sampled is not None else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("thread", overflow="fold")
    for heading in ("held", "waiting", "waits", "longest wait"):
        table.add_column(heading, justify="right", no_wrap=True)
    for thread in shown:
        words = gil_figure_words(thread)
        table.add_row(Text(thread_row_name(thread)), words.held,
                      words.wait, words.waits, words.longest)
    return table


def _process_table(processes: ProcessTable) -> Table:
    title = "Processes" + (f" (first {len(processes.rows)}; every one is in model.json)"
                           if processes.hidden else "")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("command", overflow="fold")
    for heading in ("start", "end", "threads", "CPU s", "cores"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("its GIL", no_wrap=True)
    for row in processes.rows:
        table.add_row(str(row.pid), row.role, Text(row.command), row.start, row.end, row.threads,
                      row.cpu, row.cores, row.gil)
    return table


def _print_locks(model: RunModel, console: Console) -> None:
    """The locks threads waited longest for while another thread held them (contention), then
    the primitives they waited on for a signal, apart; or one line saying none made anyone wait."""
    if not model.locks:
        return
    contended = _waited(model.locks, contention=True)
    signals = _waited(model.locks, contention=False)
    if not contended and not signals:
        console.print(
            Text(f"Locks: {len(model.locks)} recorded; none made a thread wait.", style="dim")
        )
        return
    locks = sum(1 for row in model.locks if row.contention)
    if contended:
        title = (f"Locks by time threads waited for another's hold (top "
                 f"{min(TOP_LOCKS, len(contended))} of {locks})")
        print_table(_lock_table(title, contended[:TOP_LOCKS], contention=True), console)
    else:
        console.print(Text(f"Locks: {locks} recorded; no thread waited for one another held.",
                           style="dim"))
    title = (f"Waits for a signal, not contention (top {min(TOP_SIGNALS, len(signals))} of "
             f"{len(signals)})")
    if signals:
        print_table(_lock_table(title, signals[:TOP_SIGNALS], contention=False), console)


def _waited(locks: list[LockStats], contention: bool) -> list[LockStats]:
    return sorted((row for row in locks if row.contention == contention and row.wait_s > 0),
                  key=lambda row: -row.wait_s)


def _lock_table(title: str, rows: list[LockStats], contention: bool) -> Table:
    """Locks (waits: contended of all acquisitions) or signal primitives (waits: how many)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("lock" if contention else "primitive", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("made at", overflow="fold")
    for heading in ("waits", "total wait", "max wait"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            Text(row.name),
            Text(row.kind),
            Text(row.site or MISSING),
            f"{row.contended}/{row.acquisitions}" if contention else f"{row.contended}",
            fmt_seconds(row.wait_s),
            fmt_seconds(row.max_wait_s),
        )
    return table


def _print_where(view: ReportView, console: Console) -> None:
    """The three biggest items of "where the time went", as the report's explanation says
    them; nothing when no time was put on code."""
    where = view.where
    items = prose.where_items(where, view.model.wall_s, WHERE_ITEMS)
    if where is None or not where.has_rows or not items:
        return
    console.print(Text.assemble(("Where the time went", "bold"),
                                (f"  {prose.where_source_line(where)}", "dim")))
    for number, item in enumerate(items, 1):
        console.print(Text(f"{number}. {item}"))


def _print_tasks(view: ReportView, console: Console) -> None:
    """One line per pool and per event loop, as the report's explanation says them; nothing
    when the program used neither."""
    sentences = prose.pool_reading(view.tasks) + prose.loop_reading(view.tasks)
    if not sentences:
        return
    console.print(Text("Tasks", style="bold"))
    for sentence in sentences:
        console.print(Text(sentence))  # Text: a task's name is never read as rich markup


def _source_table(sources: dict[SourceName, Source]) -> Table:
    table = Table(title="Sources", title_justify="left", box=box.SIMPLE_HEAD)
    for heading in ("source", "used", "method", "rate", "samples", "why not / notes"):
        table.add_column(heading)
    if not sources:
        table.add_row(MISSING, "no", "", "", "", "no sources were recorded")
    for name, source in sources.items():
        used = Text("yes", style="green") if source.used else Text("no", style="red")
        rate = "" if source.rate_hz is None else f"{source.rate_hz:g} Hz"
        samples = "" if source.samples is None else f"{source.samples:,}"
        why = (
            source.reason
            if not source.used
            else "; ".join(filter(None, [source.reason, *source.notes]))
        )
        method = source.method.value if source.method else ""
        table.add_row(Text(name.value), used, method, rate, samples, Text(why))
    return table


def _claims_table(claims: list[Claim]) -> Table:
    table = Table(title="Claims", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("verdict")
    table.add_column("claim")
    table.add_column("detail")
    for claim in claims:
        if claim.held is None:
            verdict = Text("not checked", style="yellow")
        elif claim.held:
            verdict = Text("held", style="bold green")
        else:
            verdict = Text("NOT HELD", style="bold red")
        table.add_row(verdict, Text(claim.claim), Text(claim.detail))
    return table


def _print_files(run_dir: Path, console: Console) -> None:
    for name in FILES:
        path = run_dir / name
        state = "" if path.exists() else "  (not written)"
        console.print(Text.assemble((f"{name:<12}", "bold"), str(path), (state, "red")))
