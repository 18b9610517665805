"""report.html in headless Chromium: every figure draws, offline, with no errors and no XSS; the
lock panel, lock hovers, cut-off marks and the deadlock banner show user text literally; a run with
hundreds of threads draws folded rows; the flame graph of where the time went draws, follows its
state and thread selectors, zooms, and shows function names as text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reports.html import render_report
from reports.threads import FOLD_ABOVE
from tests.fixtures.synthetic_model import (
    HOSTILE_FUNCTION,
    HOSTILE_LOCK,
    HOSTILE_QUALNAME,
    HOSTILE_THREAD,
    build_deadlock_model,
    build_lock_model,
    build_synthetic_model,
)
from tests.unit.test_report_many_threads import (
    HOSTILE_IDLE,
    IDLE_WORDS,
    build_many_thread_model,
)
from tracer.model.schema import RunModel

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DRAW_TIMEOUT_MS = 60_000  # generous: a loaded CI machine must not flake; drawing takes ~1 s
GIL_FIGURES = [
    "fig-timeline",
    "fig-gil-detail",
    "fig-gil-overview",
    "fig-parallelism",
    "fig-breakdown",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is missing (apt install chromium)", allow_module_level=True)


@dataclass
class OpenedReport:
    """A report page plus everything it tried to do that it should not have."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_report(browser: Any, model: RunModel, folder: Path) -> OpenedReport:
    out = folder / "report.html"
    render_report(model, out)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    opened = OpenedReport(page)
    page.on(
        "console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
    page.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))

    def refuse_network(route: Any) -> None:
        if not route.request.url.startswith("file://"):
            opened.requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", refuse_network)
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-plots]", state="attached", timeout=DRAW_TIMEOUT_MS)
    return opened


@pytest.fixture(scope="module")
def report(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenedReport]:
    opened = open_report(browser, build_synthetic_model(), tmp_path_factory.mktemp("gil"))
    yield opened
    opened.page.close()


def assert_clean(opened: OpenedReport) -> None:
    assert opened.page.get_attribute("body", "data-plots") == "ready"
    assert opened.console_errors == []
    assert opened.page_errors == []
    assert opened.dialogs == []
    assert opened.requests == []


def test_every_figure_renders(report: OpenedReport) -> None:
    for div_id in GIL_FIGURES:
        assert report.page.locator(f"#{div_id} .main-svg").count() > 0, div_id
    assert_clean(report)


def test_hostile_names_show_as_text_and_run_nothing(report: OpenedReport) -> None:
    page = report.page
    table = page.locator("#thread-table").inner_text()
    assert HOSTILE_THREAD in table
    assert HOSTILE_FUNCTION in table
    ticks = page.locator("#fig-timeline .ytick text").all_text_contents()
    assert f"{HOSTILE_THREAD} (tid 1002)" in ticks
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.alert") == "function"
    assert_clean(report)


def test_hover_shows_the_sampled_stack_literally(report: OpenedReport) -> None:
    page = report.page
    page.evaluate(
        """() => {
        const gd = document.getElementById("fig-timeline");
        const payload = JSON.parse(
            document.getElementById("threadscope-figures").textContent);
        const stacks = payload.figures.find(f => f.id === "fig-timeline").hover;
        // A bar of the hostile thread (row 2) with a sample inside it, so a stack is shown.
        for (const [curve, spec] of Object.entries(stacks)) {
            const point = gd.data[Number(curve)].y.findIndex(
                (row, i) => row === 2 && spec.stacks[i] >= 0);
            if (point >= 0) {
                Plotly.Fx.hover(gd, [{curveNumber: Number(curve), pointNumber: point}]);
                return;
            }
        }
        throw new Error("the fixture has no sampled bar on the hostile thread's row");
    }"""
    )
    hover = page.locator("#fig-timeline .hoverlayer")
    sync_api.expect(hover).to_contain_text("Python stack", timeout=DRAW_TIMEOUT_MS)
    text = hover.text_content() or ""
    assert HOSTILE_THREAD in text
    assert f"{HOSTILE_FUNCTION} (evil.py:1)" in text
    assert_clean(report)


def test_report_without_gil_data(browser: Any, tmp_path: Path) -> None:
    opened = open_report(browser, build_synthetic_model(gil=False), tmp_path)
    try:
        page = opened.page
        assert page.locator("#gil-absent").is_visible()
        for div_id in ("fig-timeline", "fig-parallelism", "fig-breakdown"):
            assert page.locator(f"#{div_id} .main-svg").count() > 0, div_id
        assert page.locator("#fig-gil-detail").count() == 0
        assert_clean(opened)
    finally:
        opened.page.close()


def test_failed_empty_run_renders(browser: Any, tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.threads, model.parallelism, model.markers, model.stacks = [], None, [], []
    model.target.status, model.partial, model.wall_s = "failed", True, 0.0
    opened = open_report(browser, model, tmp_path)
    try:
        assert "FAILED" in opened.page.locator("#status-banner").inner_text()
        assert_clean(opened)
    finally:
        opened.page.close()


@pytest.fixture(scope="module")
def lock_report(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenedReport]:
    opened = open_report(browser, build_lock_model(), tmp_path_factory.mktemp("locks"))
    yield opened
    opened.page.close()


def hover_trace(page: Any, trace_name: str, expected: str, predicate: str = "() => true",
                figure: str = "fig-timeline") -> str:
    """Hover the first point of the named trace of ``figure`` for which ``predicate`` holds,
    wait for ``expected`` in the hover box and return the box's text."""
    page.evaluate(
        """([name, predicate, figure]) => {
        const gd = document.getElementById(figure);
        const curve = gd.data.findIndex(t => t.name === name);
        if (curve < 0) { throw new Error("no trace named " + name); }
        const test = eval(predicate);
        Plotly.Fx.unhover(gd);
        const point = gd.data[curve].x.findIndex((x, i) => test(gd, curve, i));
        Plotly.Fx.hover(gd, [{curveNumber: curve, pointNumber: Math.max(point, 0)}]);
    }""",
        [trace_name, predicate, figure],
    )
    hover = page.locator(f"#{figure} .hoverlayer")
    sync_api.expect(hover).to_contain_text(expected, timeout=DRAW_TIMEOUT_MS)
    return hover.text_content() or ""


def test_lock_panel_renders_with_a_hostile_lock_name(lock_report: OpenedReport) -> None:
    page = lock_report.page
    for div_id in [*GIL_FIGURES, "fig-locks"]:
        assert page.locator(f"#{div_id} .main-svg").count() > 0, div_id
    rows = page.locator("#lock-table tbody tr:not(.signal-head)")
    assert rows.count() == 3
    assert rows.first.locator("td").first.inner_text() == HOSTILE_LOCK
    # The barrier, waited on for a signal, is below the locks under a heading of its own.
    assert page.locator("#lock-table tbody tr.signal-head").count() == 1
    assert rows.last.locator("td").first.inner_text() == "start line"
    assert HOSTILE_LOCK in page.locator("#waiter-table").inner_text()
    ticks = page.locator("#fig-locks .ytick text").all_text_contents()
    assert any(tick.startswith(HOSTILE_LOCK) for tick in ticks)
    assert page.locator("#locks .badge").inner_text().lower() == "instrumented"
    assert page.locator("img").count() == 0
    assert_clean(lock_report)


def test_lock_wait_hover_names_lock_kind_and_holder(lock_report: OpenedReport) -> None:
    expected = f"on {HOSTILE_LOCK} (lock), held by worker-0 (tid 1001)"
    hasher_row = "(gd, c, i) => gd.data[c].y[i] === 6"
    text = hover_trace(lock_report.page, "waiting for lock", expected, hasher_row)
    assert text.startswith("hasher (tid 1101)waiting for lock")
    assert_clean(lock_report)


def test_signal_wait_hover_names_what_was_waited_for(lock_report: OpenedReport) -> None:
    text = hover_trace(lock_report.page, "waiting for a signal", "on start line (barrier)")
    assert text.startswith("worker-2 (tid 1003)waiting for a signal")
    assert "held by" not in text
    assert_clean(lock_report)


def test_cut_off_thread_hover_says_where_it_stopped(lock_report: OpenedReport) -> None:
    expected = "killed at interpreter exit while in nap (scenarios/gil_cpu.py:30)"
    text = hover_trace(lock_report.page, "killed at exit", expected)
    assert "iteration i=14" in text
    assert HOSTILE_FUNCTION in text  # the sleeper's name, shown literally
    assert lock_report.page.locator("#fig-timeline .scatterlayer .point").count() == 2
    assert_clean(lock_report)


def test_deadlock_banner_is_shown(browser: Any, tmp_path: Path) -> None:
    opened = open_report(browser, build_deadlock_model(), tmp_path)
    try:
        banner = opened.page.locator("#deadlock-banner")
        assert banner.is_visible()
        assert (
            "first holds lock_a and waits for lock_b, held by second; "
            "second holds lock_b and waits for lock_a, held by first." in banner.inner_text()
        )
        assert opened.page.locator("#fig-locks .main-svg").count() > 0
        assert_clean(opened)
    finally:
        opened.page.close()


def test_many_thread_report_draws_folded_rows(browser: Any, tmp_path: Path) -> None:
    model = build_many_thread_model(idle=150, queued=80)
    opened = open_report(browser, model, tmp_path)
    try:
        page = opened.page
        for div_id in GIL_FIGURES:
            assert page.locator(f"#{div_id} .main-svg").count() > 0, div_id
        for div_id in ("fig-timeline", "fig-breakdown"):
            ticks = page.locator(f"#{div_id} .ytick text").all_text_contents()
            assert len(ticks) <= FOLD_ABOVE, div_id
            assert any(tick.endswith(IDLE_WORDS) for tick in ticks), div_id
        note = page.locator("#fold-note")
        assert note.is_visible() and "trace.json" in note.inner_text()
        assert page.locator("#thread-table tr.folded").count() == 2
        # Every thread is listed, folded away until asked for, with its name shown literally.
        assert not page.locator("#all-thread-table").is_visible()
        page.locator("#all-threads summary").click()
        assert page.locator("#all-thread-table tbody tr").count() == len(model.threads)
        assert HOSTILE_IDLE in page.locator("#all-thread-table").inner_text()
        on_idle_row = "(gd, c, i) => gd.layout.yaxis.ticktext[gd.data[c].y[i]].includes('idle')"
        text = hover_trace(page, "blocked", "the state most of these", on_idle_row)
        assert IDLE_WORDS in text
        assert page.locator("img").count() == 0
        assert_clean(opened)
    finally:
        opened.page.close()


def flame_texts(page: Any) -> list[str]:
    return page.locator("#where-flame .flame-frame").all_text_contents()


def wait_for_flame(page: Any, state: str, thread: str) -> None:
    page.wait_for_function(
        """([state, thread]) => {
        const flame = document.getElementById("where-flame");
        return flame.getAttribute("data-state") === state
            && flame.getAttribute("data-thread") === thread;
    }""", arg=[state, thread], timeout=DRAW_TIMEOUT_MS)


def test_flame_graph_renders_and_its_selectors_change_it(lock_report: OpenedReport) -> None:
    page = lock_report.page
    flame = page.locator("#where-flame")
    assert flame.get_attribute("data-ready") == "yes"
    # It opens on the code that held the GIL, over all threads.
    wait_for_flame(page, "running", "all")
    running = flame_texts(page)
    assert "crunch" in running and HOSTILE_QUALNAME in running  # shown literally, as text
    assert page.locator("#where-caption").inner_text().startswith("running (holds GIL), all "
                                                                  "threads: ")
    shown = page.locator("#where-functions tbody tr:not([hidden])")
    assert shown.first.locator("td").first.inner_text() == "crunch"

    page.select_option("#where-state", "gil_wait")
    wait_for_flame(page, "gil_wait", "all")
    waiting = flame_texts(page)
    assert "crunch" not in waiting and "spin" in waiting and HOSTILE_FUNCTION in waiting
    assert page.locator("#where-functions tbody tr:not([hidden])").first.locator(
        "td").first.inner_text() == "spin"

    page.select_option("#where-thread", "1002")  # the hostile thread alone
    wait_for_flame(page, "gil_wait", "1002")
    alone = flame_texts(page)
    assert HOSTILE_FUNCTION in alone and "spin" not in alone
    title = page.locator("#where-flame .flame-frame", has_text=HOSTILE_FUNCTION).get_attribute(
        "title")
    assert title == (f"{HOSTILE_FUNCTION} (evil.py:1)\n1.050 s, 100.0% of waiting for GIL, "
                     f"{HOSTILE_THREAD} (tid 1002)")

    page.select_option("#where-state", "all")
    page.select_option("#where-thread", "all")
    wait_for_flame(page, "all", "all")
    everything = flame_texts(page)
    assert {"crunch", "join", "digest_loop", "update"} <= set(everything)
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.alert") == "function"
    assert_clean(lock_report)


def test_flame_graph_zooms_into_a_frame_and_resets(lock_report: OpenedReport) -> None:
    page = lock_report.page
    page.select_option("#where-state", "running")
    page.select_option("#where-thread", "all")
    wait_for_flame(page, "running", "all")
    before = page.locator("#where-flame .flame-frame").count()
    page.locator("#where-flame .flame-frame", has_text="spin").first.click()
    flame = page.locator("#where-flame")
    assert flame.get_attribute("data-zoomed") == "yes"
    assert page.locator("#where-caption").inner_text().startswith(
        "Zoomed into spin (scenarios/gil_cpu.py:14): ")
    zoomed = flame_texts(page)
    assert zoomed[0] == "spin" and "crunch" in zoomed and "<module>" not in zoomed
    assert page.locator("#where-flame .flame-frame").count() < before
    page.click("#where-reset")
    assert flame.get_attribute("data-zoomed") == "no"
    assert page.locator("#where-flame .flame-frame").count() == before
    assert_clean(lock_report)


def test_where_tables_sort_by_a_click(lock_report: OpenedReport) -> None:
    page = lock_report.page
    heading = page.locator("#where-gil-blame th", has_text="seconds")
    heading.click()  # largest first
    values = page.locator("#where-gil-blame tbody tr td:nth-child(5)").evaluate_all(
        "cells => cells.map(c => Number(c.getAttribute('data-value')))")
    assert values == sorted(values, reverse=True)
    heading.click()
    values = page.locator("#where-gil-blame tbody tr td:nth-child(5)").evaluate_all(
        "cells => cells.map(c => Number(c.getAttribute('data-value')))")
    assert values == sorted(values)
    assert_clean(lock_report)


def test_report_without_stacks_says_so(browser: Any, tmp_path: Path) -> None:
    opened = open_report(browser, build_synthetic_model(gil=False), tmp_path)
    try:
        absent = opened.page.locator("#where-absent")
        assert absent.is_visible() and "ptrace denied" in absent.inner_text()
        assert opened.page.locator("#where-flame").count() == 0
        assert_clean(opened)
    finally:
        opened.page.close()


TASK_FIGURES = ["fig-task-gantt", "fig-queue-depth", "fig-queue-wait", "fig-loop-busy",
                "fig-loop-tasks"]


def test_tasks_and_event_loop_sections_draw_with_hostile_names(
        browser: Any, tmp_path: Path) -> None:
    """A pool, a task and a function named with markup: the Tasks and Event loop figures draw,
    and the names show as text in the page, running nothing."""
    from tests.unit.test_report_tasks import EVIL, hostile_events, with_tasks

    opened = open_report(browser, with_tasks(hostile_events()), tmp_path)
    page = opened.page
    for div_id in TASK_FIGURES:
        assert page.locator(f"#{div_id} .main-svg").count() > 0, div_id
    text = page.locator("body").inner_text()
    assert EVIL in text and HOSTILE_FUNCTION in text
    assert page.locator("img").count() == 0
    assert_clean(opened)
    page.close()


def test_a_pool_tasks_hover_names_its_code_wait_and_worker_literally(
        browser: Any, tmp_path: Path) -> None:
    """The Gantt's hover box: the task's function (markup, shown as text), its queue wait and
    run time, and the worker process it ran on."""
    from tests.unit.test_report_tasks import EVIL, with_tasks
    from tests.unit.test_task_model import process_six_on_two

    events = process_six_on_two()
    events[2] = ("fn", 1, HOSTILE_FUNCTION, f"/app/{EVIL}.py:3")
    opened = open_report(browser, with_tasks(events), tmp_path)
    page = opened.page
    last = "(gd, curve, i) => gd.data[curve].base[i] > 0.5"  # a task of the third wave
    text = hover_trace(page, "returned", "queue wait", last, figure="fig-task-gantt")
    assert HOSTILE_FUNCTION in text and f"/app/{EVIL}.py:3" in text
    assert "queue wait 605.0 ms" in text and "ran 300.0 ms on process 600" in text
    waited_longest = "(gd, curve, i) => gd.data[curve].x[i] > 0.5"
    waiting = hover_trace(page, "waiting in the queue", "queue wait", waited_longest,
                          figure="fig-task-gantt")
    assert "queue wait 605.0 ms" in waiting
    assert page.locator("img").count() == 0
    assert_clean(opened)
    page.close()
