"""What the in-target hooks could not record as it was reaches the report as a warning, and the
program ran as it does untraced."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import PROGRAMS, load_model, tracer


def test_a_thread_named_by_a_mock_runs_and_the_report_says_what_was_written(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = tracer("run", "--quiet", "--no-perf", "--no-pyspy", "--out", str(out),
                    str(PROGRAMS / "odd_thread_names.py"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    warnings = " ".join(load_model(out)["warnings"])
    assert "hooks inside the program" in warnings and "thread_name" in warnings
    assert "MagicMock" in warnings
