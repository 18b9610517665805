"""The processes of a run as the report's table and the terminal's show them, computed once.

A run of one process has no table: its threads say everything. With children, each process gets
a row with the CPU it used (its own ``/proc`` figure) and how many cores' worth that was over its
life, so a pool of processes that spread over the cores reads differently from one that queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.format import MISSING, fmt_fixed, fmt_seconds, plural
from tracer.model.schema import COMMAND_CHARS, ProcessInfo, RunModel

# Processes the tables list; model.json has every one.
PROCESS_ROWS = 30


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    role: str  # "target", "fork" (a fork of the target: same program) or "child"
    command: str  # shortened to a table cell; ``command_full`` is its title
    command_full: str
    start: str
    end: str
    threads: str
    cpu: str
    cores: str  # CPU time per second of its life: how many cores' worth it used
    gil: str  # its own GIL's waits, or why there are none


@dataclass(frozen=True)
class ProcessTable:
    rows: tuple[ProcessRow, ...]
    hidden: int  # processes past PROCESS_ROWS


def process_table(model: RunModel) -> ProcessTable | None:
    """The table, or None for a run of one process."""
    if len(model.processes) < 2:
        return None
    target = model.processes[0]
    # The target runs under threadscope's bootstrap, and its forks keep that command line: they
    # are shown with the program's own command instead.
    program = " ".join(model.target.argv) or model.target.name
    rows = tuple(_row(p, target, program) for p in model.processes[:PROCESS_ROWS])
    return ProcessTable(rows, max(0, len(model.processes) - PROCESS_ROWS))


def _row(process: ProcessInfo, target: ProcessInfo, program: str) -> ProcessRow:
    life = (process.end_s - process.start_s) if (
        process.end_s is not None and process.start_s is not None) else None
    cores = (f"{process.cpu_s / life:.2f}" if process.cpu_s is not None and life and life > 0
             else MISSING)
    forked = process.pid != target.pid and process.cmdline == target.cmdline
    if process.pid == target.pid or forked:
        command, full = _shortened(program), program
    else:
        command, full = process.command or MISSING, " ".join(process.cmdline)
    return ProcessRow(
        pid=process.pid,
        role="target" if process.pid == target.pid else "fork" if forked else "child",
        command=command,
        command_full=full,
        start=fmt_fixed(process.start_s),
        end=fmt_fixed(process.end_s),
        threads=str(process.threads),
        cpu=fmt_fixed(process.cpu_s),
        cores=cores,
        gil=gil_cell(process),
    )


def _shortened(text: str) -> str:
    return text if len(text) <= COMMAND_CHARS else text[:COMMAND_CHARS - 1] + "…"


def gil_cell(process: ProcessInfo) -> str:
    """Its GIL waits in a table cell: "3 waits, 1.2 ms" (its own GIL), or "not followed"."""
    if process.gil is None:
        return "not followed"
    if process.gil.waits == 0:
        return "no waits"
    return f"{plural(process.gil.waits, 'wait')}, {fmt_seconds(process.gil.wait_s)}"
