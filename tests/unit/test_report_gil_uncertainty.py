"""Sampled GIL figures carry their uncertainty into model.json, the report and the summary."""

from __future__ import annotations

from pathlib import Path

import orjson
from rich.console import Console

from reports.format import gil_figure_words
from reports.html import render_report_html
from reports.prose import explain
from reports.summary import print_summary
from reports.view import build_view
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.schema import RunModel, SampledGilFigures, ThreadTimeline

FIGURES = SampledGilFigures(
    period_ms=1.02, samples=1400, gil_held_share=0.0042, gil_held_share_pm=0.006,
    gil_wait_share=0.8311, gil_wait_share_pm=0.021, gil_waits_low=303, gil_waits_high=945,
    max_gil_wait_low_s=0.01208, max_gil_wait_high_s=0.05301, hidden_turns=302,
)


def _sampled_model() -> tuple[RunModel, ThreadTimeline]:
    model = build_synthetic_model()
    worker = next(t for t in model.threads if t.name == "worker-0")
    worker.gil_waits, worker.max_gil_wait_s, worker.gil_wait_s = 523, 0.02652, 1.1
    worker.gil_sampled = FIGURES
    model.figure_sources["gil"] = "sampled"
    return model, worker


def test_the_figures_survive_model_json() -> None:
    model, _ = _sampled_model()
    again = RunModel.from_dict(orjson.loads(model.to_json_bytes()))
    worker = next(t for t in again.threads if t.name == "worker-0")
    assert worker.gil_sampled == FIGURES
    assert all(t.gil_sampled is None for t in again.threads if t.name != "worker-0")


def test_words_give_shares_with_their_range_and_counts_with_their_bounds() -> None:
    _, worker = _sampled_model()
    words = gil_figure_words(worker)
    assert words.wait == "83% ±2 pp"
    assert words.held == "0% ±0.6 pp"
    assert words.waits == "523 (303–945)"
    assert words.longest == "26.5 ms (12.1 ms–53.0 ms)"


def test_an_unbounded_count_reads_as_a_lower_bound() -> None:
    _, worker = _sampled_model()
    worker.gil_sampled = SampledGilFigures(**{**FIGURES.__dict__, "gil_waits_high": None})
    assert gil_figure_words(worker).waits == "523 (≥303)"


def test_exact_figures_are_plain_numbers() -> None:
    model = build_synthetic_model()
    exact = next(t for t in model.threads if t.name == "worker-0")
    exact.start_s, exact.end_s = 0.0, 1.0
    exact.gil_held_s, exact.gil_wait_s, exact.gil_waits, exact.max_gil_wait_s = 0.3, 0.6, 40, 0.02
    words = gil_figure_words(exact)
    assert (words.held, words.wait, words.waits, words.longest) == ("30%", "60%", "40", "20.0 ms")


def test_summary_and_report_show_the_uncertainty(tmp_path: Path) -> None:
    model, _ = _sampled_model()
    console = Console(record=True, width=160)
    print_summary(model, tmp_path, console)
    text = console.export_text()
    assert "GIL per thread (sampled every 1.0 ms" in text
    assert "83% ±2 pp" in text and "523 (303–945)" in text
    html = render_report_html(model)
    assert "<th>GIL waits</th>" in html and "<th>longest GIL wait</th>" in html
    assert "523 (303–945)" in html and "83% ±2 pp" in html
    assert 'id="gil-uncertainty-note"' in html
    reading = " ".join(explain(build_view(model)))
    assert "sampled every 1.0 ms" in reading
    assert "at least 303 and allow at most 945" in reading
    assert "302 of its GIL turns fell between samples" in reading
