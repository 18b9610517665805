"""The HTML report: offline, escaped, honest in its wording, and bounded in size."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from reports import html
from reports.figures import SEGMENT_BUDGET
from reports.figures.timeline import timeline_figure
from reports.html import render_report, render_report_html, script_json
from reports.intervals import merge_intervals
from reports.prose import explain
from reports.view import build_view
from tests.fixtures.synthetic_model import (
    HOSTILE_FUNCTION,
    HOSTILE_THREAD,
    build_large_model,
    build_synthetic_model,
)
from tracer.model.schema import BLOCKED, RUNNING, Interval, RunMetrics, RunModel, ThreadTimeline

FIGURES_BLOCK = re.compile(
    r'<script type="application/json" id="threadscope-figures">(.*?)</script>', re.S
)


def figures_payload(page: str) -> dict[str, Any]:
    match = FIGURES_BLOCK.search(page)
    assert match, "the figure JSON block is missing"
    payload: dict[str, Any] = json.loads(match.group(1))
    return payload


def figure(payload: dict[str, Any], div_id: str) -> dict[str, Any]:
    (found,) = [f for f in payload["figures"] if f["id"] == div_id]
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    render_report(build_synthetic_model(), out)
    return out.read_text(encoding="utf-8")


def test_report_loads_nothing_from_the_network(page: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert not re.search(r"<(img|iframe)[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", page, re.I)


def test_report_inlines_the_plotly_bundle(page: str) -> None:
    bundle = html._plotly_js()
    assert bundle[:500] in page
    assert bundle[-500:] in page


def test_the_basic_bundle_is_inlined_when_it_matches_the_plotly_package() -> None:
    html._plotly_js.cache_clear()
    if get_plotlyjs_version() != html.VENDORED_PLOTLY_VERSION:
        pytest.skip(f"plotly writes figures for plotly.js {get_plotlyjs_version()}")
    bundle = html._plotly_js()
    assert f"plotly.js (basic - minified) v{html.VENDORED_PLOTLY_VERSION}" in bundle[:200]
    assert len(bundle) < len(get_plotlyjs()) / 2


def test_the_full_bundle_is_inlined_for_another_plotly_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html, "get_plotlyjs_version", lambda: "0.0.1")
    html._plotly_js.cache_clear()
    try:
        assert html._plotly_js() == get_plotlyjs()
    finally:
        html._plotly_js.cache_clear()


def test_embedded_figure_json_parses_back(page: str) -> None:
    payload = figures_payload(page)
    ids = [f["id"] for f in payload["figures"]]
    assert ids == [
        "fig-timeline",
        "fig-gil-detail",
        "fig-gil-overview",
        "fig-parallelism",
        "fig-breakdown",
    ]
    for fig in payload["figures"]:
        assert fig["data"], fig["id"]
        assert f'id="{fig["id"]}"' in page


def test_hostile_names_never_appear_raw(page: str) -> None:
    assert HOSTILE_THREAD not in page
    assert HOSTILE_FUNCTION not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the thread table, escaped by Jinja
    block = FIGURES_BLOCK.search(page)
    assert block and not set("<>&") & set(block.group(1))


def test_figure_text_is_html_escaped_for_plotly(page: str) -> None:
    payload = figures_payload(page)
    ticks = figure(payload, "fig-timeline")["layout"]["yaxis"]["ticktext"]
    assert "&lt;img src=x onerror=alert(1)&gt; (tid 1002)" in ticks
    assert any("&lt;/script&gt;" in label for label in ticks)
    assert any("&lt;/script&gt;" in stack for stack in payload["stacks"])
    notes = [a["text"] for a in figure(payload, "fig-timeline")["layout"]["annotations"]]
    assert "&lt;img src=x onerror=alert(1)&gt;" in notes


def test_script_json_escapes_markup_characters() -> None:
    text = script_json({"a": "</script><b>&amp;"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><b>&amp;"}


def test_every_merged_interval_is_drawn_when_under_budget() -> None:
    model = build_synthetic_model()
    spec = timeline_figure(build_view(model))
    assert spec is not None and not spec.aggregated
    states = [t for t in spec.figure.data if t.type == "bar" and t.name != "holds a lock"]
    drawn = sum(len(trace.x) for trace in states)
    assert drawn == sum(len(merge_intervals(t.intervals)) for t in model.threads)


def test_hover_stacks_point_at_recorded_stacks(page: str) -> None:
    payload = figures_payload(page)
    timeline = figure(payload, "fig-timeline")
    ids = [i for spec in timeline["hover"].values() for i in spec["stacks"]]
    assert any(i >= 0 for i in ids)
    assert all(-1 <= i < len(payload["stacks"]) for i in ids)


def test_partial_run_shows_a_red_banner(tmp_path: Path) -> None:
    model = build_synthetic_model()
    model.target.status = "timeout"
    model.partial = True
    render_report(model, tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="status-banner"' in page
    assert "TIMED OUT" in page and "partial" in page


def test_ok_run_has_no_banner(page: str) -> None:
    assert 'id="status-banner"' not in page


def test_sources_claims_and_warnings_are_listed(page: str) -> None:
    assert "perf is not installed (apt install linux-perf)" in page
    assert "instrumented" in page and "100 Hz" in page
    assert "not held" in page and "held" in page
    assert "VizTracer slowed the target 1.78x" in page


def test_explanation_states_the_measured_numbers() -> None:
    model = build_synthetic_model()
    numbers = build_view(model).numbers
    text = " ".join(explain(build_view(model)))
    assert f"{numbers.cpu_s:.2f} s of CPU" in text
    assert f"{model.wall_s:.2f} s of wall time" in text
    assert f"CPU parallelism of {model.metrics.parallelism:.2f}" in text
    assert "2 cores" in text
    assert "4 threads wanted a CPU" in text and "1.08 CPU-s per wall second on 2 cores" in text
    assert "waited" in text and "for the GIL" in text
    assert "for locks" in text


def test_explanation_is_honest_without_gil_data() -> None:
    text = " ".join(explain(build_view(build_synthetic_model(gil=False))))
    assert "GIL ownership was not measured" in text
    assert "for the GIL (" not in text


def test_explanation_follows_measurements_not_names() -> None:
    model = build_synthetic_model()
    model.target.name = "io_bound"
    model.metrics.parallelism = 1.8
    text = " ".join(explain(build_view(model)))
    assert "more than one core was busy" in text
    assert "native code" in text


def test_explanation_of_a_waiting_program() -> None:
    model = _single_thread_model([Interval(0.0, 0.1, RUNNING), Interval(0.1, 2.0, BLOCKED)])
    text = " ".join(explain(build_view(model)))
    assert "Less than half a core" in text
    assert "95% blocked" in text


def test_aggregation_keeps_a_huge_run_drawable(tmp_path: Path) -> None:
    model = build_large_model(threads=64, intervals=5000)
    out = tmp_path / "report.html"
    render_report(model, out)
    page = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 10 * 1024 * 1024
    assert 'id="timeline-note"' in page and "trace.json has every event" in page
    timeline = figure(figures_payload(page), "fig-timeline")
    assert sum(len(trace["x"]) for trace in timeline["data"]) <= SEGMENT_BUDGET
    gil = figure(figures_payload(page), "fig-gil-detail")
    assert sum(len(t["x"]) for t in gil["data"] if t["type"] == "bar") <= SEGMENT_BUDGET


def test_merge_intervals_joins_touching_states_and_clips_overlaps() -> None:
    merged = merge_intervals(
        [
            Interval(0.0, 1.0, RUNNING),
            Interval(1.0, 2.0, RUNNING),
            Interval(1.5, 3.0, BLOCKED),
            Interval(2.5, 2.8, BLOCKED),
        ]
    )
    assert [(i.start, i.end, i.state) for i in merged] == [
        (0.0, 2.0, RUNNING),
        (2.0, 3.0, BLOCKED),
    ]


def _single_thread_model(intervals: list[Interval]) -> RunModel:
    model = build_synthetic_model()
    end = intervals[-1].end if intervals else 0.0
    model.threads = [
        ThreadTimeline(
            tid=7,
            pid=1,
            name="only",
            start_s=0.0,
            end_s=end,
            cpu_s=sum(i.duration for i in intervals if i.state == RUNNING),
            is_main=True,
            intervals=intervals,
        )
    ]
    model.wall_s = end
    model.metrics = RunMetrics(cpu_s=0.0, parallelism=None, cores=2, threads=len(model.threads))
    model.parallelism = None
    model.markers = []
    return model


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(_single_thread_model([]), id="no-intervals"),
        pytest.param(_single_thread_model([Interval(0.0, 0.5, RUNNING)]), id="single-thread"),
        pytest.param(build_synthetic_model(gil=False), id="no-gil"),
        pytest.param(build_synthetic_model(workers=1), id="one-worker"),
    ],
)
def test_degenerate_models_render(model: RunModel) -> None:
    page = render_report_html(model)
    figures_payload(page)
    assert "threadscope" in page


def test_empty_and_zero_wall_models_render() -> None:
    empty = build_synthetic_model()
    empty.threads, empty.wall_s, empty.parallelism = [], 0.0, None
    empty.metrics = RunMetrics(cpu_s=0.0, parallelism=None, cores=2, threads=0)
    empty.markers, empty.sources, empty.claims, empty.stacks = [], {}, [], []
    page = render_report_html(empty)
    assert figures_payload(page)["figures"] == []
    assert "No threads were recorded" in page
    zero = _single_thread_model([Interval(0.0, 0.0, RUNNING)])
    figures_payload(render_report_html(zero))


def test_without_gil_data_the_page_says_so() -> None:
    page = render_report_html(build_synthetic_model(gil=False))
    assert 'id="gil-absent"' in page
    ids = [f["id"] for f in figures_payload(page)["figures"]]
    assert "fig-gil-detail" not in ids and "fig-gil-overview" not in ids
