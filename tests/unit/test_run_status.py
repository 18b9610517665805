"""One status vocabulary: an attach whose process exited while attached ("ended") is a normal
end everywhere (the report once showed it as a failure), and an unknown word is not "ok"."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from reports.html import render_report_html
from reports.prose import explain
from reports.summary import print_summary
from reports.view import build_view
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.raw_files import RunStatus


def test_the_vocabulary() -> None:
    assert RunStatus.of("ended") is RunStatus.ENDED and RunStatus.ENDED.normal
    assert RunStatus.of("ok").normal and not RunStatus.of("failed").normal
    assert RunStatus.of("from a newer version") is RunStatus.ERROR
    assert {s for s in RunStatus if s.stopped_early} == {
        RunStatus.TIMEOUT, RunStatus.INTERRUPTED, RunStatus.KILLED}


def _shown(status: str, tmp_path: Path) -> tuple[str, str, str]:
    model = build_synthetic_model()
    model.target.status = status
    console = Console(record=True, width=160)
    print_summary(model, tmp_path, console)
    return console.export_text(), render_report_html(model), " ".join(explain(build_view(model)))


def test_an_attach_that_saw_its_process_end_is_not_a_failure(tmp_path: Path) -> None:
    _, html, reading = _shown("ended", tmp_path)
    assert "did not finish normally" not in reading
    assert 'id="status-banner"' not in html and 'class="status-bad"' not in html
    assert 'class="status-ok">ended' in html
    _, failed_html, failed_reading = _shown("failed", tmp_path)
    assert "did not finish normally" in failed_reading
    assert 'id="status-banner"' in failed_html and 'class="status-bad">failed' in failed_html
