"""The terminal summary piped or redirected (`tracer report RUN 2>&1 | cat`): a file has no
window, so no table is squeezed to 80 columns; a terminal keeps rich's fit to its window."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from rich.console import Console

from reports.format import fmt_fixed
from reports.summary import print_summary
from reports.threads import thread_state_seconds
from reports.view import build_view
from tests.fixtures.synthetic_model import build_lock_model
from tracer.model.schema import RunModel

LONG = "pipeline-stage-" + "x" * 105  # a 120-character thread name


def _piped(model: RunModel, tmp_path: Path, width: int = 80) -> str:
    out = StringIO()
    console = Console(file=out, width=width)
    assert not console.is_terminal
    print_summary(model, tmp_path, console)
    return out.getvalue()


def _thread_lines(text: str) -> list[str]:
    """The thread table's lines: its heading rows, the rule, then the rows up to a blank line."""
    lines = [line.rstrip() for line in text.splitlines()]
    start = lines.index("Threads (seconds)") + 2
    end = next(i for i in range(start + 3, len(lines)) if not lines[i].strip())
    return lines[start:end]


def test_a_piped_summary_keeps_every_column_and_number_whole(tmp_path: Path) -> None:
    model = build_lock_model()
    text = _piped(model, tmp_path)
    lines = _thread_lines(text)
    assert lines[1].split()[0] == "thread"  # the name column is there
    view = build_view(model)
    states = view.numbers.states
    for thread in view.terminal_selection.shown:
        (line,) = [row for row in lines if f" {thread.tid} " in row]
        seconds = thread_state_seconds(thread)
        cells = [fmt_fixed(thread.start_s), fmt_fixed(thread.end_s), f"{thread.cpu_s:.3f}",
                 *[fmt_fixed(seconds.get(s, 0.0)) for s in states]]
        for cell in cells:
            assert f" {cell} " in line + " ", (cell, line)
        assert thread.name.split()[0] in line  # the name starts on the thread's own line
    assert "…" not in text
    for heading in ("Locks by time threads waited", "Waits for a signal", "Sources", "Claims"):
        assert heading in text


def test_long_names_fold_in_their_column_and_numbers_stay_whole(tmp_path: Path) -> None:
    model = build_lock_model()
    for thread in model.threads:
        thread.name = f"{LONG}-{thread.tid}"
    text = _piped(model, tmp_path)
    assert "…" not in text
    joined = "".join(line.split()[0] for line in _thread_lines(text)[3:])
    for thread in model.threads:
        assert f"{LONG}-{thread.tid}" in joined  # every name is there, folded across lines
        assert f" {thread.cpu_s:.3f} " in text


def test_a_terminal_summary_still_fits_its_window(tmp_path: Path) -> None:
    out = StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    print_summary(build_lock_model(), tmp_path, console)
    assert max(len(line) for line in out.getvalue().splitlines()) <= 80
