"""The "Where the time went" section of report.html: its tables as plain strings for the
template (which escapes them) and the flame graph's data for the page's script (embedded once,
as JSON through :func:`reports.html.script_json`). Everything is read from the view's
:class:`~reports.where_view.WhereView`; nothing is computed here beyond formatting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports import prose
from reports.format import MISSING, fmt_seconds
from reports.view import ReportView
from reports.vocabulary import (
    ALL_STATES_COLOUR,
    ALL_STATES_WORD,
    ALL_THREADS_WORD,
    HOLDER_CODE_UNKNOWN,
    NO_HOLDER,
    state_colour,
    state_name,
)
from reports.where_view import ALL, BlameRow, BlameTable, FunctionRow, WhereView
from tracer.model.schema import GIL_WAIT, RUNNING, Frame

# The state the section opens on: the code that held the GIL, else the first state with time.
OPENING_STATES = (RUNNING, GIL_WAIT)


@dataclass(frozen=True)
class FunctionCells:
    """One line of the top-functions table; ``*_value`` are what its columns sort by."""

    state: str
    shown: bool  # in the state the page opens on
    function: str
    site: str
    threads: str
    self_s: str
    self_value: float
    self_share: str
    inclusive_s: str
    inclusive_value: float
    inclusive_share: str


@dataclass(frozen=True)
class BlameCells:
    waiter: str
    waiter_code: str
    waiter_site: str
    holder: str
    holder_code: str
    holder_site: str
    lock: str
    seconds: str
    seconds_value: float
    share: str


@dataclass(frozen=True)
class BlamePanel:
    rows: list[BlameCells]
    hidden: str  # what the rows past the table's cap covered ("" when none)


@dataclass(frozen=True)
class WherePanel:
    source: str
    absent: str  # the one line said when no time was put on stacks ("" otherwise)
    unattributed: str
    left_out: str
    states: list[tuple[str, str]] = field(default_factory=list)  # (value, words)
    opening_state: str = ALL
    threads: list[tuple[str, str]] = field(default_factory=list)
    functions: list[FunctionCells] = field(default_factory=list)
    gil: BlamePanel | None = None
    locks: BlamePanel | None = None


def where_panel(view: ReportView) -> WherePanel:
    where = view.where
    if where is None or not where.has_rows:
        return WherePanel(source=prose.where_source_line(where) if where else "",
                          absent=prose.where_absent(view.model), unattributed="", left_out="")
    opening = next((s for s in OPENING_STATES if s in where.states), where.states[0])
    return WherePanel(
        source=prose.where_source_line(where),
        absent="",
        unattributed=prose.where_unattributed(where),
        left_out=prose.where_left_out(where),
        states=[*[(s, state_name(s)) for s in where.states], (ALL, ALL_STATES_WORD)],
        opening_state=opening,
        threads=[(ALL, ALL_THREADS_WORD), *[(str(tid), label) for tid, label in where.threads]],
        functions=[_function_cells(state, row, state == opening)
                   for state, rows in where.functions.items() for row in rows],
        gil=_blame_panel(where.gil_blame, locks=False) if where.gil_blame.rows else None,
        locks=_blame_panel(where.lock_blame, locks=True) if where.lock_blame.rows else None,
    )


def _function_cells(state: str, row: FunctionRow, shown: bool) -> FunctionCells:
    threads = ", ".join(row.threads) + (f" and {row.more_threads} more" if row.more_threads
                                        else "")
    return FunctionCells(
        state=state, shown=shown, function=row.function, site=row.site, threads=threads,
        self_s=fmt_seconds(row.self_s), self_value=row.self_s,
        self_share=f"{row.self_share:.1%}",
        inclusive_s=fmt_seconds(row.inclusive_s), inclusive_value=row.inclusive_s,
        inclusive_share=f"{row.inclusive_share:.1%}",
    )


def _code(frame: Frame | None, unknown: str) -> tuple[str, str]:
    return (frame.function, f"{frame.file}:{frame.line}") if frame else (unknown, "")


def _blame_panel(table: BlameTable, locks: bool) -> BlamePanel:
    return BlamePanel(
        rows=[_blame_cells(row, locks) for row in table.rows],
        hidden=(f"{table.hidden:,} smaller rows ({fmt_seconds(table.hidden_s)}) are in "
                "model.json." if table.hidden else ""),
    )


def _blame_cells(row: BlameRow, locks: bool) -> BlameCells:
    waiter_code, waiter_site = _code(row.waiter_frame, MISSING)
    if row.holder is None:
        holder_code, holder_site = MISSING, ""
    else:
        holder_code, holder_site = _code(row.holder_frame, HOLDER_CODE_UNKNOWN)
    return BlameCells(
        waiter=row.waiter, waiter_code=waiter_code, waiter_site=waiter_site,
        holder=row.holder if row.holder is not None else NO_HOLDER,
        holder_code=holder_code, holder_site=holder_site,
        lock=(row.lock or "") if locks else "",
        seconds=fmt_seconds(row.seconds), seconds_value=row.seconds,
        share=f"{row.share:.0%}",
    )


def flame_payload(where: WhereView | None) -> dict[str, Any] | None:
    """The flame graph's data, interned (see :class:`~reports.where_view.FlameRows`): rows are
    [tid, state index, stack index, seconds]; strings are escaped by script_json and put in the
    page by the script with textContent only."""
    if where is None or not where.has_rows:
        return None
    flame = where.flame
    states = [*where.states, *sorted({row[1] for row in flame.rows} - set(where.states))]
    index = {state: n for n, state in enumerate(states)}
    return {
        "frames": [[f.function, f.file, f.line] for f in flame.frames],
        "stacks": flame.stacks,
        "rows": [[tid, index[state], stack, round(seconds, 9)]
                 for tid, state, stack, seconds in flame.rows],
        "states": states,
        "names": {**{s: state_name(s) for s in states}, ALL: ALL_STATES_WORD},
        "threads": {**{str(tid): label for tid, label in where.threads}, ALL: ALL_THREADS_WORD},
        "colours": {**{s: state_colour(s) for s in states}, ALL: ALL_STATES_COLOUR},
        "words": prose.flame_words(),
    }
