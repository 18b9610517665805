"""The report's view is built once per render: report.html, trace.json and the terminal summary
read the same thread order and selection instead of each recomputing them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import reports.html
import reports.perfetto
import reports.prose
import reports.summary
import tracer.pipeline
from reports.threads import ordered_threads, select_threads
from reports.view import TERMINAL_THREADS, build_view
from tests.fixtures.synthetic_model import build_synthetic_model
from tests.unit.test_report_many_threads import build_many_thread_model, round_robin_model
from tracer.model.build import BuiltRun
from tracer.model.schema import RunModel
from tracer.runfolder import RunFolder

# Loaded before counting, so that every name a renderer imported is replaced.
RENDERERS = (reports.html, reports.perfetto, reports.prose, reports.summary)


def count_calls(monkeypatch: pytest.MonkeyPatch, original: Callable[..., Any]) -> list[int]:
    """Replace ``original`` in every reports module that holds it (so a renderer that imported it
    by name is counted too) with a wrapper that counts its calls."""
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name == "reports" or name.startswith("reports."):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attribute, counted)
    return calls


@pytest.mark.parametrize("make", [build_synthetic_model, build_many_thread_model])
def test_a_full_render_selects_the_threads_once(
    make: Callable[[], RunModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = make()
    monkeypatch.setattr(tracer.pipeline, "build_and_check", lambda folder: BuiltRun(model))
    selections = count_calls(monkeypatch, select_threads)
    orders = count_calls(monkeypatch, ordered_threads)
    folder = RunFolder(tmp_path)
    tracer.pipeline.analyse_and_present(folder)
    assert selections == [1]
    assert orders == [1]
    for path in (folder.report_html, folder.trace_json, folder.model_json):
        assert path.stat().st_size > 0
    assert "Threads (seconds)" in capsys.readouterr().err  # the summary was printed too


@pytest.mark.parametrize("make", [build_many_thread_model, round_robin_model])
def test_the_terminal_selection_is_what_a_smaller_limit_selects(
    make: Callable[[], RunModel],
) -> None:
    model = make()
    narrowed = build_view(model).terminal_selection
    direct = select_threads(model, shown=TERMINAL_THREADS)
    assert narrowed.shown == direct.shown
    assert [(g.state, g.threads) for g in narrowed.groups] == [
        (g.state, g.threads) for g in direct.groups
    ]
    assert {id(t): narrowed.why(t) for t in narrowed.shown} == direct.reasons


def test_the_view_orders_threads_as_every_renderer_lists_them() -> None:
    model = build_many_thread_model()
    view = build_view(model)
    assert list(view.threads) == ordered_threads(model)
    assert view.selection.shown == select_threads(model).shown
    rows = {turn.row for turn in view.gil_turns}
    assert all(view.threads[row].intervals for row in rows)
