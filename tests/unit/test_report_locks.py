"""The report's lock views: the lock panel, lock waits and holds on the timeline, cut-off threads,
the deadlock banner and the figure-source badges. Lock names and sites come from user code, so
each view is also checked for escaping."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from reports.figures.locks import lock_wait_figure
from reports.figures.timeline import HOLD_LIMIT, hold_segments, timeline_figure
from reports.format import fmt_seconds
from reports.html import render_report_html
from reports.prose import deadlock_sentence, describe_wait, explain, thread_end_text
from reports.view import build_view
from reports.vocabulary import end_reason_words
from tests.fixtures.synthetic_model import (
    HOSTILE_LOCK,
    HOSTILE_SITE,
    build_deadlock_model,
    build_lock_model,
    build_synthetic_model,
)
from tests.unit.test_report_html import figure, figures_payload
from tracer.model.schema import (
    LOCK_HOLD,
    DeadlockStep,
    HoldDetail,
    Interval,
    LockRef,
    Marker,
    WaitDetail,
)

ESCAPED_LOCK = "&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture(scope="module")
def page() -> str:
    return render_report_html(build_lock_model())


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}".*?</section>', page, re.S)
    assert match, section_id
    return match.group(0)


def hover_text(spec: dict[str, Any], index: int) -> str:
    """What the page's script appends for bar ``index`` of a hover spec."""
    note = spec["notes"][index]
    return spec["texts"][note] if note >= 0 else ""


# ---------------------------------------------------------------------------------------------
# The lock panel


def test_lock_table_lists_every_lock_worst_wait_first(page: str) -> None:
    locks = section(page, "locks")
    rows = re.findall(r"<tr class=\"(contended|quiet|signal)\">\s*<td class=\"name\">(.*?)</td>",
                      locks)
    # Locks first (contention), worst wait first; the barrier, waited on for a signal, below
    # them under its own heading, though it waited longer than "inner" (which never waited).
    assert rows == [("contended", ESCAPED_LOCK), ("quiet", "inner"), ("signal", "start line")]
    assert locks.index("inner") < locks.index("Waited on for a signal, not contention") < \
        locks.index("start line")
    assert "1 made a thread wait while another thread held it, and threads waited on 1 for a " \
        "signal" in " ".join(locks.split())
    assert "&lt;/script&gt;&lt;b&gt;" in locks  # the hostile site, escaped
    assert "logging.Handler.lock" in locks and "your code" in locks  # made_by, or the user's
    assert "100.0 ms" in locks  # total / max wait of the hostile lock
    assert "149.9 ms" in locks  # its hold


def test_lock_panel_says_who_waited_for_whom(page: str) -> None:
    waiters = re.search(r'<table id="waiter-table">.*?</table>', page, re.S)
    assert waiters
    text = waiters.group(0)
    assert "hasher (tid 1101)" in text and "worker-0 (tid 1001)" in text
    assert "— (a signal: no holder)" in text  # the barrier
    assert f"{ESCAPED_LOCK} (lock)" in text


def test_worst_locks_chart_ranks_by_wait_and_escapes_names(page: str) -> None:
    payload = figures_payload(page)
    chart = figure(payload, "fig-locks")
    labels = chart["layout"]["yaxis"]["ticktext"]
    assert labels[0] == f"{ESCAPED_LOCK} (evil.py:3 &lt;/script&gt;&lt;b&gt;)"
    assert labels[1].startswith("start line")
    assert len(labels) == 2  # "inner" never made anyone wait
    (bars,) = chart["data"]
    assert bars["x"] == sorted(bars["x"], reverse=True)
    assert "&lt;img" in bars["hovertext"][0] and "<img" not in bars["hovertext"][0]


def test_worst_locks_chart_keeps_the_top_fifteen() -> None:
    model = build_lock_model()
    template = model.locks[0]
    model.locks = [replace(template, id=n, name=f"l{n}", wait_s=float(n)) for n in range(30)]
    spec = lock_wait_figure(build_view(model))
    assert spec is not None
    assert list(spec.figure.data[0].x) == [float(n) for n in range(29, 14, -1)]


def test_no_lock_panel_without_lock_recording() -> None:
    page = render_report_html(build_synthetic_model())
    assert 'id="locks"' not in page


def test_lock_recorder_without_locks_says_so() -> None:
    model = build_synthetic_model()
    model.figure_sources = {"locks": "instrumented"}
    page = render_report_html(model)
    assert 'id="locks-empty"' in page
    assert "fig-locks" not in [f["id"] for f in figures_payload(page)["figures"]]


# ---------------------------------------------------------------------------------------------
# The timeline: lock waits, holds, cut-off threads


def timeline_traces(page: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    timeline = figure(figures_payload(page), "fig-timeline")
    return timeline, {t.get("name", ""): t for t in timeline["data"]}


def test_lock_wait_hover_names_the_lock_its_kind_and_the_holder(page: str) -> None:
    timeline, traces = timeline_traces(page)
    index = timeline["data"].index(traces["waiting for lock"])
    spec = timeline["hover"][str(index)]
    texts = [hover_text(spec, i) for i in range(len(spec["notes"]))]
    assert f"on {ESCAPED_LOCK} (lock), held by worker-0 (tid 1001)" in texts
    assert "on start line (barrier)" not in texts  # not a lock: a wait for a signal
    assert all("<img" not in text for text in texts)


def test_signal_wait_hover_names_what_was_waited_for(page: str) -> None:
    timeline, traces = timeline_traces(page)
    signal = traces["waiting for a signal"]
    assert signal["marker"]["color"] != traces["waiting for lock"]["marker"]["color"]
    spec = timeline["hover"][str(timeline["data"].index(signal))]
    texts = [hover_text(spec, i) for i in range(len(spec["notes"]))]
    assert texts == ["on start line (barrier)"]


def test_lock_holds_are_a_thin_strip_in_their_row(page: str) -> None:
    timeline, traces = timeline_traces(page)
    holds = traces["holds a lock"]
    spec = timeline["hover"][str(timeline["data"].index(holds))]
    assert spec["rows"] == [1]  # worker-0, the second row
    assert holds["y"] == [1.3] and holds["width"] < 0.5
    # Nested holds (inner inside the hostile lock) are drawn once, both named.
    assert hover_text(spec, 0) == f"{ESCAPED_LOCK}, inner"
    assert holds["base"] == [0.25] and holds["x"] == [pytest.approx(0.1499)]


def test_too_many_holds_are_left_to_the_trace() -> None:
    model = build_lock_model()
    worker = model.threads[1]
    worker.holds = [
        Interval(k * 1e-4, k * 1e-4 + 5e-5, LOCK_HOLD, HoldDetail(1, 4242, "l", "lock"))
        for k in range(HOLD_LIMIT + 1)
    ]
    spec = timeline_figure(build_view(model))
    assert spec is not None
    assert "holds a lock" not in [t.name for t in spec.figure.data]
    assert "too many to draw" in spec.note


def test_hold_segments_merge_overlaps_per_thread() -> None:
    model = build_deadlock_model()
    model.threads[1].holds.append(
        Interval(0.5, 0.6, LOCK_HOLD, HoldDetail(22, 4242, "lock_c", "lock")))
    segments = hold_segments(model.threads)
    assert [(s.row, s.start, s.end) for s, _ in segments] == [(1, 0.01, 1.5), (2, 0.01, 1.5)]
    assert segments[0][1] == ["lock_a (still held at the end)", "lock_c"]


def test_cut_off_threads_are_marked_where_they_stopped(page: str) -> None:
    _, traces = timeline_traces(page)
    killed, stopped = traces["killed at exit"], traces["running when stopped"]
    assert killed["marker"]["symbol"] == "x" and killed["x"] == [1.5]
    (text,) = killed["hovertext"]
    assert "killed at interpreter exit while in nap (scenarios/gil_cpu.py:30)" in text
    assert "its last mark was iteration i=14" in text
    assert "&lt;/script&gt;" in text  # the sleeper's hostile name, escaped
    (text,) = stopped["hovertext"]
    assert "still running when the run was stopped while in spin" in text


def test_thread_table_says_how_each_thread_ended(page: str) -> None:
    table = re.search(r'<table id="thread-table">.*?</table>', page, re.S)
    assert table
    text = table.group(0)
    assert "killed at interpreter exit while in nap (scenarios/gil_cpu.py:30)" in text
    assert "still running when the run was stopped" in text
    assert '<span class="clip">finished</span>' in text
    assert "killed_at_exit" not in text


def test_thread_end_text() -> None:
    model = build_lock_model()
    threads = {t.tid: t for t in model.threads}
    assert thread_end_text(threads[1000], model.markers) is None  # finished on its own
    sleeper = threads[1100]
    late = Marker("iteration", "mark", (sleeper.end_s or 0.0) + 1.0, None, 1100, {"i": 99})
    text = thread_end_text(sleeper, [*model.markers, late])
    assert text is not None and "i=14" in text and "i=99" not in text
    sleeper.last_stack = []
    assert thread_end_text(sleeper) == "killed at interpreter exit"
    assert end_reason_words("running_at_stop") == "still running when the run was stopped"
    assert end_reason_words(None) == "—"
    assert end_reason_words("gone_fishing") == "gone fishing"


# ---------------------------------------------------------------------------------------------
# Deadlocks


def test_deadlock_banner_names_the_cycle_in_words() -> None:
    page = render_report_html(build_deadlock_model())
    banner = re.search(
        r'<div class="banner[^"]*" role="alert" id="deadlock-banner">(.*?)</div>', page, re.S
    )
    assert banner
    assert (
        "first holds lock_a and waits for lock_b, held by second; "
        "second holds lock_b and waits for lock_a, held by first."
        in " ".join(banner.group(1).split())
    )
    assert 'id="status-banner"' not in page  # the run itself exited normally


def test_no_deadlock_banner_without_a_cycle(page: str) -> None:
    assert "deadlock-banner" not in page


def test_explanation_mentions_the_deadlock_and_the_killed_threads() -> None:
    text = " ".join(explain(build_view(build_deadlock_model())))
    assert "The program deadlocked: first holds lock_a" in text
    assert "first (tid 3001) was killed at interpreter exit while in second_step" in text
    assert "its last mark was iteration i=1" in text


def test_deadlock_sentence_copes_with_missing_names() -> None:
    cycle = [
        DeadlockStep(7, None, [], LockRef(2, None), 8),
        DeadlockStep(8, "b", [LockRef(2, "x"), LockRef(3, "y")], LockRef(4, "z"), 7),
    ]
    assert deadlock_sentence(cycle, {}) == (
        "thread 7 waits for lock #2, held by b; b holds x and y and waits for z, held by thread 7"
    )
    assert deadlock_sentence(cycle, {7: "a"}).startswith("a waits for lock #2, held by b")


def test_describe_wait() -> None:
    labels = {5: "holder (tid 5)"}
    assert describe_wait(None, labels) == "on a lock (not recorded which)"
    assert describe_wait(WaitDetail(1, 4242, "q", "queue_get", None, ok=True), labels) == (
        "on q (queue_get)")
    assert describe_wait(WaitDetail(3, 4242, "", "lock", 5, ok=False), labels) == (
        "on lock #3 (lock), held by holder (tid 5); gave up (timed out)"
    )
    assert describe_wait(WaitDetail(4, 4242, "a", "lock", 9, ok=False, unfinished=True),
                         labels) == (
        "on a (lock), held by thread 9; still waiting when the run ended"
    )


def test_fmt_seconds() -> None:
    assert [fmt_seconds(v) for v in (None, 0, 2.5, 0.0123, 0.0000123)] == [
        "—",
        "0",
        "2.500 s",
        "12.3 ms",
        "12 µs",
    ]


# ---------------------------------------------------------------------------------------------
# Where each number comes from


def test_badges_say_how_each_figure_was_obtained(page: str) -> None:
    def badge(section_id: str) -> str:
        title = re.search(r"<h2>.*?</h2>", section(page, section_id), re.S)
        assert title
        found = re.search(r'class="badge badge-(\w+)"', title.group(0))
        assert found, section_id
        return found.group(1)

    assert badge("gil") == "exact"
    assert badge("parallelism") == "sampled"
    assert badge("locks") == "instrumented"
    assert badge("timeline") == "exact"
    sources = section(page, "sources")
    assert 'id="figure-source-table"' in sources
    assert "lock waits and holds" in sources and "every event was recorded" in sources


def test_unknown_methods_get_a_neutral_badge() -> None:
    model = build_lock_model()
    model.figure_sources["gil"] = '"><script>alert(1)</script>'
    page = render_report_html(model)
    assert "<script>alert(1)" not in page
    assert "badge-other" in page


def test_no_badges_without_figure_sources() -> None:
    page = render_report_html(build_synthetic_model())
    assert 'class="badge' not in page
    assert 'id="figure-source-table"' not in page


def test_hostile_lock_names_never_appear_raw(page: str) -> None:
    assert HOSTILE_LOCK not in page
    assert HOSTILE_SITE not in page


def test_uncontended_locks_are_folded_away() -> None:
    model = build_lock_model()
    model.locks = [row for row in model.locks if row.name == "inner"]
    page = render_report_html(model)
    assert 'id="lock-details"' in page and "No lock made a thread wait" in page
    assert 'id="lock-details"' not in render_report_html(build_lock_model())
