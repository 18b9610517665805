"""Say only what was measured: no counterfactual from a run's mean, no zeros that say nothing,
no parallelism above the cores, and the race example's promised total next to the run's."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from reports.figures.parallelism import fit_to_cores, parallelism_figure
from reports.html import render_report_html
from reports.prose import explain
from reports.view import build_view
from scenarios import race_condition
from tests.fixtures.synthetic_model import build_lock_model, build_synthetic_model
from tracer.model.schema import (
    BLOCKED,
    LOCK_WAIT,
    RUNNING,
    Interval,
    Marker,
    RunMetrics,
    RunModel,
    Series,
    ThreadTimeline,
)

# Words that claim what another run (more threads, processes, fewer threads) would have done.
COUNTERFACTUALS = ("did not add speed", "did not help", "would help", "would be faster",
                   "adding threads", "take turns", "instead of running", "limited by",
                   "not by computation", "must have run")


def _text(model: RunModel) -> str:
    return " ".join(explain(build_view(model)))


def _waiting_model() -> RunModel:
    model = build_synthetic_model()
    model.threads = [ThreadTimeline(
        tid=7, pid=1, name="only", start_s=0.0, end_s=2.0, cpu_s=0.1, is_main=True,
        intervals=[Interval(0.0, 0.1, RUNNING), Interval(0.1, 2.0, BLOCKED)])]
    model.wall_s = 2.0
    model.metrics = RunMetrics(cpu_s=0.1, parallelism=0.05, cores=2, threads=1)
    model.parallelism, model.markers = None, []
    return model


def _parallel_model() -> RunModel:
    model = build_synthetic_model()
    model.metrics.parallelism = 1.8
    return model


@pytest.mark.parametrize("model", [
    pytest.param(build_synthetic_model(), id="gil-bound"),
    pytest.param(build_synthetic_model(gil=False), id="os-only"),
    pytest.param(_parallel_model(), id="parallel"),
    pytest.param(_waiting_model(), id="waiting"),
])
def test_no_counterfactual_without_a_comparison(model: RunModel) -> None:
    text = _text(model).lower()
    for words in COUNTERFACTUALS:
        assert words not in text, words


def test_busy_threads_are_said_with_what_was_measured() -> None:
    text = _text(build_synthetic_model())
    assert ("4 threads wanted a CPU (were on one or waiting for the GIL) for at least 25% of "
            "the run each, and together they used 1.08 CPU-s per wall second on 2 cores.") in text
    assert "one core's worth" not in text


def test_a_waiting_run_says_its_off_cpu_share_not_what_limits_it() -> None:
    text = _text(_waiting_model())
    assert "Less than half a core was busy on average (0.05 CPU-s per wall second on 2 cores)" \
        in text
    assert "off a CPU for 95% of the time they existed" in text


def test_a_parallel_run_says_its_rate_and_native_time() -> None:
    text = _text(_parallel_model())
    assert "more than one core was busy (1.80 CPU-s per wall second on 2 cores)" in text
    assert "0.10 s on a CPU in native code without the GIL" in text


def _set_lock_wait(model: RunModel, seconds: float) -> RunModel:
    for thread in model.threads:
        thread.state_s.pop(LOCK_WAIT, None)
        thread.intervals = [i for i in thread.intervals if i.state != LOCK_WAIT]
    if seconds:
        model.threads[-1].state_s[LOCK_WAIT] = seconds
    return model


def test_a_small_lock_wait_is_said_in_a_unit_that_shows_it() -> None:
    model = _set_lock_wait(build_lock_model(), 0.0004)
    text = _text(model)
    assert ("Threads waited 400 µs in total for locks held by other threads (under 1% of their "
            "time)") in text
    assert f"{model.threads[-1].name} (tid {model.threads[-1].tid}) waited longest, 400 µs" in text
    assert "0.00 s" not in text and " 0% " not in text


def test_no_lock_wait_is_said_as_such_not_as_zeros() -> None:
    text = _text(_set_lock_wait(build_lock_model(), 0.0))
    assert "No lock made a thread wait." in text
    assert "for locks" not in text and "0.00 s" not in text


def test_state_shares_leave_out_states_with_nothing_to_say() -> None:
    model = _set_lock_wait(build_synthetic_model(), 0.0000001)
    model.threads[-1].state_s["on_cpu"] = 0.00001
    shares = next(p for p in explain(build_view(model)) if p.startswith("Of the "))
    assert "on a CPU (" not in shares and "waiting for a lock" not in shares
    assert not re.search(r"\b0% ", shares) and "0.00 s" not in shares
    assert "48% waiting for the GIL (4.20 s)" in shares


# ---------------------------------------------------------------------------------------------
# CPU parallelism never drawn above the cores


def _jittered(values: list[float]) -> Series:
    return Series(bin_s=0.01, t=[round(i * 0.01, 6) for i in range(len(values))], values=values)


def test_a_jittered_bin_above_the_cores_is_rebinned_until_none_is() -> None:
    series = _jittered([1.8] * 7 + [3.6, 0.4] + [1.9] * 11)  # 3.6 on 2 cores: a late tick
    drawn = fit_to_cores(series, 2)
    assert drawn.merged > 1 and drawn.capped == 0
    assert max(drawn.values) <= 2.0
    # CPU time is kept: every drawn bin is the mean of the sampler bins it covers.
    widths = [b - a for a, b in zip(drawn.t, [*drawn.t[1:], 0.2], strict=True)]
    assert sum(v * w for v, w in zip(drawn.values, widths, strict=True)) == pytest.approx(
        sum(series.values) * 0.01, abs=1e-3)


def test_the_figure_says_its_bin_width_and_why() -> None:
    model = build_synthetic_model()
    model.parallelism = _jittered([1.8] * 7 + [3.6, 0.4] + [1.9] * 11)
    spec = parallelism_figure(build_view(model))
    assert spec is not None
    curve = spec.figure.data[0]
    assert max(curve.y) <= model.cores
    assert "(20.0 ms bins)" in spec.figure.layout.title.text
    assert "1 bin of 10.0 ms read above the machine's 2 cores (up to 3.60)" in spec.note
    assert "Drawn in 20.0 ms bins" in spec.note
    assert str(escape(spec.note)) in render_report_html(model)


def test_bins_no_width_can_fit_are_capped_and_counted() -> None:
    model = build_synthetic_model()
    model.parallelism = _jittered([3.6] * 20)
    spec = parallelism_figure(build_view(model))
    assert spec is not None
    assert max(spec.figure.data[0].y) == 2.0
    assert "(10.0 ms bins)" in spec.figure.layout.title.text
    assert spec.note.startswith("20 bins of 10.0 ms read above the machine's 2 cores (up to "
                                "3.60)")
    assert "drawn capped at 2" in spec.note
    assert "read 3.60" in spec.figure.data[0].hovertext[0]


def test_a_series_within_the_cores_is_drawn_as_sampled() -> None:
    model = build_synthetic_model()
    model.parallelism = _jittered([1.0, 2.0, 1.5, 0.2])
    spec = parallelism_figure(build_view(model))
    assert spec is not None and spec.note == ""
    assert model.parallelism is not None
    assert list(spec.figure.data[0].y[:-1]) == model.parallelism.values


# ---------------------------------------------------------------------------------------------
# The race example's promised total next to the run's


def _race_model(threads: int, increments: int, finals: list[int]) -> RunModel:
    model = build_synthetic_model()
    model.target.python_version = "3.12.3"
    expected = threads * increments
    model.markers = [Marker("params", "mark", 0.0, None, 1000,
                            {"threads": threads, "increments": increments})]
    model.markers += [
        Marker("race_result", "mark", 0.1 + run, None, 1000,
               {"variant": "notebook", "run": run, "traced": True, "expected": expected,
                "final": final, "lost": expected - final})
        for run, final in enumerate(finals)
    ]
    return model


def test_race_claim_states_the_notebooks_total_and_the_runs() -> None:
    model = _race_model(5, 100_000, [500_000, 500_000, 500_000])
    claim = race_condition.check(model)[0]
    assert claim.held is True
    assert claim.detail == (
        "The notebook expects 500,000 (100,000 × 5 threads) and says the code prints something "
        "less; this run, with the notebook's numbers, got 500,000, 500,000 and 500,000 in its 3 "
        "runs (lost 0, 0 and 0).")


def test_race_claim_maps_other_parameters_to_the_notebooks() -> None:
    model = _race_model(5, 50_000, [250_000, 249_990])
    claim = race_condition.check(model)[0]
    assert claim.held is False
    assert "The notebook expects 500,000 (100,000 × 5 threads)" in claim.detail
    assert ("this run added 50,000 × 5 threads, so it expected 250,000, and got 250,000 and "
            "249,990 in its 2 runs (lost 0 and 10)") in claim.detail
