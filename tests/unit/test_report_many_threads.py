"""Reports of runs with hundreds of threads: the interesting threads keep a row each, the rest are
folded into labelled group rows with their summed or averaged figures, and nothing is lost (the
page lists every thread; trace.json is not touched by folding)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from reports.figures.breakdown import breakdown_figure
from reports.figures.gil_detail import (
    GIL_STRIP_BUDGET,
    HOLDER_COLOURS,
    gil_detail_figure,
    strip_turns,
)
from reports.figures.layout import esc
from reports.figures.timeline import timeline_figure
from reports.html import render_report_html
from reports.intervals import Segment
from reports.prose import explain
from reports.summary import print_summary
from reports.threads import (
    FOLD_ABOVE,
    SHOWN_THREADS,
    ThreadGroup,
    ordered_threads,
    select_threads,
    thread_label,
    thread_state_seconds,
)
from reports.view import build_view
from tests.fixtures.synthetic_model import (
    HOSTILE_FUNCTION,
    HOSTILE_THREAD,
    PID,
    build_synthetic_model,
)
from tracer.model.schema import (
    BLOCKED,
    GIL_WAIT,
    OFF_CPU,
    RUNNING,
    STATES,
    Interval,
    RunModel,
    ThreadTimeline,
)

IDLE = 300  # threads that mostly sleep: folded into one row
QUEUED = 100  # threads that mostly wait for the GIL: the longest waiters shown, the rest folded
HOSTILE_IDLE = f"{HOSTILE_THREAD} idle"
IDLE_WORDS = "other threads (similar: mostly idle or blocked)"


def build_many_thread_model(idle: int = IDLE, queued: int = QUEUED) -> RunModel:
    """The synthetic GIL-bound run (main, four workers, a daemon sleeper cut off at exit, a hasher
    that waits on a lock) plus ``idle`` sleeping threads (one with a hostile name) and ``queued``
    threads that run for a moment and then wait for the GIL to the end."""
    model = build_synthetic_model()
    wall = model.wall_s
    for n in range(idle):
        start = round(0.1 + n * 0.001, 6)
        model.threads.append(
            ThreadTimeline(
                tid=10_000 + n,
                pid=PID,
                name=HOSTILE_IDLE if n == 7 else f"idle-{n}",
                start_s=start,
                end_s=wall - 0.05,
                cpu_s=0.001,
                daemon=True,
                end_reason="finished",
                intervals=[
                    Interval(start, start + 0.001, RUNNING),
                    Interval(start + 0.001, wall - 0.05, BLOCKED),
                ],
            )
        )
    for n in range(queued):
        ran = round(0.102 + n * 0.0001, 6)
        model.threads.append(
            ThreadTimeline(
                tid=50_000 + n,
                pid=PID,
                name=f"queued-{n}",
                start_s=0.1,
                end_s=1.3,
                cpu_s=ran - 0.1,
                daemon=False,
                end_reason="finished",
                intervals=[Interval(0.1, ran, RUNNING), Interval(ran, 1.3 - n * 0.01, GIL_WAIT)],
            )
        )
    return model


def group_of(model: RunModel, state: str) -> ThreadGroup:
    (group,) = [g for g in select_threads(model).groups if g.state == state]
    return group


def round_robin_model(threads: int = 100, turns: int = 2_000) -> RunModel:
    """``threads`` threads taking 1 ms GIL turns in order; the first five hold it twice as long."""
    model = build_synthetic_model()
    lanes: list[list[Interval]] = [[] for _ in range(threads)]
    t = 0.0
    for k in range(turns):
        length = 0.002 if k % threads < 5 else 0.001
        lanes[k % threads].append(Interval(round(t, 6), round(t + length, 6), RUNNING))
        t += length
    model.threads = [
        ThreadTimeline(
            tid=7000 + n,
            pid=PID,
            name=f"turn-{n}",
            start_s=lane[0].start,
            end_s=lane[-1].end,
            cpu_s=sum(i.duration for i in lane),
            intervals=lane,
        )
        for n, lane in enumerate(lanes)
    ]
    model.wall_s = t
    return model


def test_a_few_threads_are_never_folded() -> None:
    model = build_synthetic_model()
    selection = select_threads(model)
    assert selection.shown == ordered_threads(model)
    assert selection.groups == []
    page = render_report_html(model)
    assert 'id="fold-note"' not in page and 'id="all-threads"' not in page


def test_the_interesting_threads_keep_their_own_row() -> None:
    model = build_many_thread_model()
    selection = select_threads(model)
    shown = {t.name for t in selection.shown}
    assert "MainThread" in shown
    assert {"worker-0", HOSTILE_THREAD, "worker-2", "worker-3"} <= shown  # held the GIL longest
    assert "hasher" in shown  # the only lock waiter
    assert any(name.startswith("sleeper") for name in shown)  # cut off at exit
    assert "queued-0" in shown  # waited longest for the GIL
    assert len(group_of(model, GIL_WAIT).threads) > 1  # the other queued threads: folded
    assert sum(name.startswith("idle-") for name in shown) <= 1  # at most one, for its CPU time
    assert len(selection.rows) <= FOLD_ABOVE
    assert len(selection.shown) <= SHOWN_THREADS + len(STATES)
    by_name = {t.name: t for t in model.threads}
    assert selection.why(by_name["MainThread"]) == "main thread"
    assert selection.why(by_name["queued-0"]) == "waited longest for the GIL (#1)"


def test_every_thread_is_shown_or_folded_exactly_once() -> None:
    model = build_many_thread_model()
    selection = select_threads(model)
    tids = [t.tid for t in selection.shown] + [t.tid for g in selection.groups for t in g.threads]
    assert sorted(tids) == sorted(t.tid for t in model.threads)
    assert selection.folded == len(model.threads) - len(selection.shown)
    shown = {t.tid for t in selection.shown}
    assert selection.shown == [t for t in ordered_threads(model) if t.tid in shown]


def test_folded_threads_are_grouped_by_what_they_mostly_did() -> None:
    model = build_many_thread_model()
    selection = select_threads(model)
    assert {g.state for g in selection.groups} == {BLOCKED, GIL_WAIT}
    idle, queued = group_of(model, BLOCKED), group_of(model, GIL_WAIT)
    assert idle.label == f"{len(idle.threads)} {IDLE_WORDS}"
    assert len(idle.threads) >= IDLE - 1
    assert all(t.name.startswith("idle-") or t.name == HOSTILE_IDLE for t in idle.threads)
    assert HOSTILE_IDLE in {t.name for t in idle.threads}
    assert queued.label.endswith("other threads (similar: mostly waiting for the GIL)")
    assert all(t.name.startswith("queued-") for t in queued.threads)
    expected = sum(thread_state_seconds(t)[BLOCKED] for t in idle.threads)
    assert abs(idle.state_seconds()[BLOCKED] - expected) < 1e-9
    assert abs(idle.cpu_s - len(idle.threads) * 0.001) < 1e-9


def test_a_group_of_one_is_shown_as_the_thread_it_is() -> None:
    model = build_many_thread_model()
    loner = model.threads[-1]
    loner.intervals = [Interval(0.1, 1.0, OFF_CPU)]  # no measure of interest ranks off-CPU time
    loner.cpu_s = 0.0
    selection = select_threads(model)
    assert loner in selection.shown
    assert selection.why(loner) == "the only one of its kind"
    assert all(len(g.threads) > 1 for g in selection.groups)


def test_timeline_draws_one_row_per_shown_thread_and_group() -> None:
    model = build_many_thread_model()
    selection = select_threads(model)
    spec = timeline_figure(build_view(model))
    assert spec is not None
    ticks = list(spec.figure.layout.yaxis.ticktext)
    assert ticks == [esc(thread_label(t)) for t in selection.shown] + [
        g.label for g in selection.groups
    ]
    assert len(ticks) <= FOLD_ABOVE
    # One trace per state (plus the lock-hold strip and cut-off marks), never one per thread.
    assert len(spec.figure.data) <= len(STATES) + 3
    idle_row = ticks.index(group_of(model, BLOCKED).label)
    on_idle_row = [
        (trace.name, base)
        for trace in spec.figure.data
        if trace.type == "bar"
        for y, base in zip(trace.y, trace.base, strict=True)
        if y == idle_row
    ]
    assert on_idle_row and {name for name, _ in on_idle_row} == {"blocked"}
    assert min(base for _, base in on_idle_row) >= 0.09  # no idle thread existed before 0.1 s
    assert "Each row of folded threads shows the state most of them were in" in spec.note


def test_group_bars_say_what_they_stand_for_in_their_hover() -> None:
    model = build_many_thread_model()
    spec = timeline_figure(build_view(model))
    assert spec is not None
    (blocked,) = [i for i, t in enumerate(spec.figure.data) if t.name == "blocked"]
    hover = spec.hover[blocked]
    idle = group_of(model, BLOCKED)
    row = list(spec.figure.layout.yaxis.ticktext).index(idle.label)
    points = [i for i, y in enumerate(spec.figure.data[blocked].y) if y == row]
    texts = {hover["texts"][hover["notes"][i]] for i in points}
    expected = f"the state most of these {len(idle.threads)} threads"
    assert len(texts) == 1 and texts.pop().startswith(expected)
    assert all(hover["stacks"][i] == -1 for i in points)  # no one thread's stack stands for all


def test_breakdown_shows_a_group_as_the_mean_of_its_threads() -> None:
    model = build_many_thread_model()
    spec = breakdown_figure(build_view(model))
    assert spec is not None
    group = group_of(model, BLOCKED)
    row = spec.labels.index(group.label)
    (blocked,) = [t for t in spec.figure.data if t.name == "blocked"]
    mean = group.state_seconds()[BLOCKED] / len(group.threads)
    assert abs(blocked.x[row] - round(mean, 6)) < 1e-6
    assert f"for all {len(group.threads)} together" in blocked.hovertext[row]
    assert "mean per thread" in spec.figure.layout.title.text


def test_gil_strip_colours_ten_holders_and_folds_the_rest() -> None:
    spec = gil_detail_figure(build_view(round_robin_model()))
    assert spec is not None
    bars = [t for t in spec.figure.data if t.type == "bar"]
    assert len(bars) == len(HOLDER_COLOURS)
    # The five that held it twice as long keep a colour (four more share the rest's length).
    assert [t.name for t in bars[:5]] == [f"turn-{n} (tid {7000 + n})" for n in range(5)]
    others = bars[-1]
    assert others.name == f"{100 - len(HOLDER_COLOURS) + 1} other threads"
    index = list(spec.figure.data).index(others)
    hover = spec.hover[index]
    assert "label" not in hover and len(hover["rows"]) == len(others.x)
    coloured = {t.name for t in bars[:-1]}
    assert {spec.labels[row] for row in hover["rows"]} == {
        f"turn-{n} (tid {7000 + n})" for n in range(100)
    } - coloured
    assert all(y == 0 for t in bars for y in t.y)


def test_gil_range_slider_draws_the_waiters_not_the_bars() -> None:
    spec = gil_detail_figure(build_view(build_synthetic_model()))
    assert spec is not None
    layout = spec.figure.layout
    assert layout.xaxis2.rangeslider.visible and layout.xaxis.matches == "x2"
    for trace in spec.figure.data:
        assert (trace.xaxis or "x") == ("x" if trace.type == "bar" else "x2"), trace.name


def test_strip_keeps_every_turn_around_the_opening_window() -> None:
    turns = [
        Segment(n % 4, round(n * 0.005, 6), round(n * 0.005 + 0.005, 6), str(n % 4))
        for n in range(10_000)
    ]
    drawn, note = strip_turns(turns, 50.0, 20.0, 1_000)
    assert len(drawn) <= 1_000
    window = [t for t in turns if 20.0 <= t.start < 20.1]
    assert all(t in drawn for t in window)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(drawn, drawn[1:]))
    assert drawn[0].start == 0.0 and abs(drawn[-1].end - 50.0) < 1e-6
    assert "every turn is drawn from" in note and "trace.json has every turn" in note
    assert strip_turns(turns[:100], 0.5, 0.0, 1_000) == (turns[:100], "")
    assert GIL_STRIP_BUDGET < 6_000


def test_page_folds_rows_lists_every_thread_and_escapes_names() -> None:
    model = build_many_thread_model()
    page = render_report_html(model)
    selection = select_threads(model)
    assert 'id="fold-note"' in page
    assert f"This run had {len(model.threads)} threads" in page
    assert "trace.json" in page and group_of(model, BLOCKED).label in page
    table = re.search(r'<table id="thread-table">(.*?)</table>', page, re.S)
    assert table is not None
    assert table.group(1).count("<tr") == 1 + len(selection.shown) + len(selection.groups)
    assert table.group(1).count('<tr class="folded">') == len(selection.groups)
    everyone = re.search(r'<table id="all-thread-table">(.*?)</table>', page, re.S)
    assert everyone is not None
    assert everyone.group(1).count("<tr") == 1 + len(model.threads)
    assert "&lt;img src=x onerror=alert(1)&gt; idle" in everyone.group(1)
    assert HOSTILE_THREAD not in page and HOSTILE_FUNCTION not in page


def test_summary_folds_its_thread_table(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    model = build_many_thread_model()
    print_summary(model, tmp_path, console)
    text = console.export_text()
    assert IDLE_WORDS in text
    assert "folded into 2 rows (their sums); report.html lists every thread" in text
    assert "idle-299" not in text and "MainThread" in text


def test_explanation_counts_many_cut_off_threads() -> None:
    model = build_many_thread_model()
    for thread in model.threads[-60:]:
        thread.end_reason = "killed_at_exit"
    text = " ".join(explain(build_view(model)))
    assert "61 threads were cut off: 61 killed at interpreter exit" in text
    assert "(for example sleeper" in text
    assert text.count("was killed at interpreter exit") == 0


def test_threads_that_share_a_reused_tid_are_told_apart() -> None:
    model = build_many_thread_model()
    for thread in model.threads[-QUEUED:]:
        thread.tid = 4  # the OS reuses the tids of threads that ended
    selection = select_threads(model)
    counted = len(selection.shown) + selection.folded
    assert counted == len(model.threads)
    assert len(selection.shown) <= SHOWN_THREADS + len(STATES)


def test_group_label_counts_its_threads() -> None:
    thread = build_synthetic_model().threads[0]
    assert ThreadGroup(BLOCKED, [thread, thread]).label == (
        "2 other threads (similar: mostly idle or blocked)"
    )
    assert ThreadGroup("", [thread, thread]).label == "2 other threads (similar: no state recorded)"
