"""One line per thread row whatever the name: a 56-thread report with 120-character names once
had an 8,400 px breakdown table. Rows show the name cut short with "…"; the full (escaped) name
is in the cell's title and the figures' hover."""

from __future__ import annotations

import copy
import re

from markupsafe import escape

from reports.figures.breakdown import breakdown_figure
from reports.figures.layout import NAME_CHARS, shorten
from reports.figures.timeline import row_label, timeline_figure
from reports.html import render_report_html
from reports.view import build_view
from tests.fixtures.synthetic_model import HOSTILE_THREAD, PID, build_synthetic_model
from tracer.model.schema import BLOCKED, RUNNING, Interval, RunModel, ThreadTimeline

THREADS = 56
NAME_LENGTH = 120
ROW = re.compile(r'<td class="thread-name" title="([^"]*)">([^<]*)</td><td>(\d+)</td>')


def long_name(n: int) -> str:
    if n == 1:  # one hostile name, to see it escaped in the title and the figures
        return (HOSTILE_THREAD + "y" * NAME_LENGTH)[:NAME_LENGTH]
    name = f"pipeline-stage-{'x' * (NAME_LENGTH - 19)}-{n:03d}"
    assert len(name) == NAME_LENGTH
    return name


def many_threads(count: int = THREADS, names: bool = True) -> RunModel:
    """The synthetic run plus idle threads up to ``count``, every name 120 characters long."""
    model = build_synthetic_model()
    for n in range(count - len(model.threads)):
        start = round(0.1 + n * 0.001, 6)
        model.threads.append(ThreadTimeline(
            tid=20_000 + n, pid=PID, name=f"idle-{n}", start_s=start, end_s=1.4, cpu_s=0.001,
            daemon=True, end_reason="finished",
            intervals=[Interval(start, start + 0.001, RUNNING), Interval(start + 0.001, 1.4,
                                                                          BLOCKED)]))
    if names:
        for n, thread in enumerate(model.threads):
            thread.name = long_name(n)
    return model


def test_shorten_keeps_both_ends_within_the_limit() -> None:
    name = long_name(7)
    short = shorten(name)
    assert len(short) == NAME_CHARS and "…" in short
    assert name.startswith(short.split("…")[0]) and name.endswith(short.split("…")[1])
    assert short.endswith("-007")  # what tells the threads apart survives
    assert shorten("worker-0") == "worker-0"


def test_thread_table_rows_show_short_names_and_title_the_full_ones() -> None:
    model = many_threads()
    page = render_report_html(model)
    table = re.search(r'<table id="thread-table">.*?</table>', page, re.S)
    assert table
    rows = ROW.findall(table.group(0))
    assert len(rows) == THREADS
    by_tid = {t.tid: t for t in model.threads}
    for title, shown, tid in rows:
        thread = by_tid[int(tid)]
        full = thread.name + (" (main)" if thread.is_main else "")
        assert title == str(escape(full))
        assert str(escape(shorten(thread.name))) in shown and "…" in shown
        assert len(shorten(thread.name)) <= NAME_CHARS
    assert "&lt;img src=x onerror=alert(1)&gt;" in table.group(0)
    assert "<img" not in table.group(0)


def test_figure_ticks_are_short_and_hovers_have_the_full_labels() -> None:
    model = many_threads()
    view = build_view(model)
    for spec in (timeline_figure(view), breakdown_figure(view)):
        assert spec is not None
        ticks = spec.figure.layout.yaxis.ticktext
        assert len(ticks) == THREADS
        assert all("…" in tick and len(tick) <= NAME_CHARS + len(" (tid 99999)") + 20
                   for tick in ticks)
        rows = view.selection.rows
        assert list(spec.labels) == [str(escape(row_label(r))) for r in rows]


def test_breakdown_height_grows_per_row_not_with_name_length() -> None:
    long = breakdown_figure(build_view(many_threads()))
    short_model = many_threads(names=False)
    short = breakdown_figure(build_view(short_model))
    assert long is not None and short is not None
    assert long.figure.layout.height == short.figure.layout.height
    fewer = breakdown_figure(build_view(many_threads(36)))
    assert fewer is not None
    per_row = (long.figure.layout.height - fewer.figure.layout.height) / (THREADS - 36)
    assert per_row == 26
    wider = copy.deepcopy(many_threads())
    for thread in wider.threads:
        thread.name *= 5  # 600 characters: the same height
    again = breakdown_figure(build_view(wider))
    assert again is not None and again.figure.layout.height == long.figure.layout.height
