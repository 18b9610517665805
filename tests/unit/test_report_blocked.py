"""What blocked a thread, as the report says it: the timeline's hover, the thread table's
"blocked by" cell and the explanation's sentence."""

from __future__ import annotations

from reports.figures.timeline import blocked_notes
from reports.html import render_report_html
from reports.intervals import Segment
from reports.prose import blocked_reading, explain, thread_family
from reports.view import build_view
from reports.vocabulary import BLOCKED_CAUSE_WORDS, blocked_cause_phrase, blocked_cause_short
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.blocked import blocked_seconds
from tracer.model.schema import (
    BLOCKED,
    RUNNING,
    BlockedCause,
    BlockedDetail,
    Interval,
    RunModel,
    ThreadTimeline,
)
from tracer.model.states import state_seconds

C = BlockedCause


def _blocked(thread: ThreadTimeline, pieces: list[tuple[float, float, BlockedCause]]) -> None:
    thread.intervals = [Interval(a, b, BLOCKED, BlockedDetail(c)) for a, b, c in pieces]
    thread.intervals.append(Interval(pieces[-1][1], pieces[-1][1] + 0.01, RUNNING))
    thread.state_s = state_seconds(thread.intervals)
    thread.blocked_by = blocked_seconds(thread.intervals, thread.state_s[BLOCKED])


def _writers() -> RunModel:
    model = build_synthetic_model(workers=3)
    writers = model.threads[1:4]
    for n, thread in enumerate(writers):
        thread.name = f"writer-{n}"
        _blocked(thread, [(0.0, 0.7, C.FILE_LOCK), (0.7, 0.75, C.SLEEP)])
    return model


def test_every_cause_has_words() -> None:
    assert set(BLOCKED_CAUSE_WORDS) == set(BlockedCause)
    assert blocked_cause_phrase("sleep") == "sleeping"
    assert blocked_cause_short("file_lock") == "file lock"
    assert blocked_cause_phrase("napping") == "in napping"  # a newer model's word, said plainly


def test_the_hover_says_what_blocked_the_bar() -> None:
    thread = build_synthetic_model().threads[1]
    _blocked(thread, [(0.0, 0.2, C.SLEEP), (0.2, 0.3, C.IO)])
    notes = blocked_notes([thread], [Segment(0, 0.0, 0.1, BLOCKED), Segment(0, 0.0, 0.3, BLOCKED)])
    assert notes[0] == "blocked: sleeping"
    assert notes[1].startswith("blocked: sleeping 200")
    assert "in socket, pipe or file I/O 100" in notes[1]


def test_the_explanation_names_each_group_s_biggest_cause() -> None:
    assert thread_family("writer-12") == "writer" and thread_family("pool_0") == "pool"
    model = _writers()
    view = build_view(model)
    sentences = blocked_reading(model, view.numbers)
    assert len(sentences) == 1
    assert "the 3 writer threads spent 2.10 s blocked in file locks (fcntl/flock)" in sentences[0]
    assert "one at a time" not in sentences[0]  # not measured, so not said
    assert sentences[0] in explain(view)


def test_the_thread_table_has_a_blocked_by_cell() -> None:
    html = render_report_html(_writers())
    assert "<th title=\"the biggest cause" in html
    assert "file lock 93%" in html
    assert "in file locks (fcntl/flock): 700.0 ms; sleeping: 50.0 ms" in html
