"""The growth benchmark's arithmetic: sizing the work, reading a run folder, and finding where cost
stops growing linearly. No timing here: the benchmark itself runs in benchmarks/run.py."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from benchmarks.recording_scale import (
    GrowthRow,
    ItemCost,
    TracedRun,
    _read_run,
    departures,
    fit_event_cost,
    growth_notes,
    iterations_for,
    level_departures,
    marginal_costs,
    rescale,
    rounds_for,
    slope_departures,
    tracer_entries_for,
)


def test_iterations_for_is_gil_bound_with_many_threads_and_wait_bound_with_one() -> None:
    cost = ItemCost(cpu_s=0.001, wait_s=0.002)
    assert iterations_for(1, 3.0, cost) == 1000  # 1 ms CPU + 2 ms wait per item
    assert iterations_for(8, 4.0, cost) == 500  # 8 threads x 1 ms of GIL per round
    assert iterations_for(512, 0.1, cost) == 1  # never zero items


def test_rescale_corrects_a_guess_by_what_it_measured() -> None:
    assert rescale(100, measured_s=2.0, wanted_s=1.0) == 50
    assert rescale(100, measured_s=0.0, wanted_s=1.0) == 100
    assert rescale(3, measured_s=10.0, wanted_s=1.0) == 1


def test_short_cases_get_more_rounds() -> None:
    assert rounds_for(1.0, 1) == 3
    assert rounds_for(10.0, 1) == 1
    assert rounds_for(60.0, 2) == 2


def test_tracer_entries_cover_the_work_and_never_shrink_the_default() -> None:
    assert tracer_entries_for(1, 10) == 1_000_000
    assert tracer_entries_for(8, 100_000) > 8 * 100_000 * 18


def test_marginal_costs_ignore_a_fixed_cost() -> None:
    points = [(1.0, 5.0 + 2 * 1), (8.0, 5.0 + 2 * 8), (64.0, 5.0 + 2 * 64)]
    assert marginal_costs(points) == pytest.approx([2.0, 2.0])
    assert slope_departures(points, floor=0.5) == []


def test_slope_departures_flag_a_steeper_segment() -> None:
    points = [(1.0, 1.0), (8.0, 1.7), (64.0, 7.3), (512.0, 200.0)]  # 0.1/unit, then ~0.43
    found = slope_departures(points, floor=0.5)
    assert [i for i, *_ in found] == [2]
    _, before, _, ratio = found[0]
    assert before == pytest.approx(0.1)
    assert ratio > 1.5


def test_slope_departures_leave_noise_below_the_floor_alone() -> None:
    points = [(1.0, 1.0), (10.0, 1.05), (60.0, 1.4)]  # both changes under the 0.5 s floor
    assert slope_departures(points, floor=0.5) == []


def test_slope_departures_flag_a_flatter_segment_only_after_a_clear_one() -> None:
    points = [(1.0, 0.0), (10.0, 9.0), (60.0, 9.2)]  # 1 s per unit, then flat
    assert [round(r, 3) for *_, r in slope_departures(points, floor=0.5)] == [0.01]


def test_level_departures_compare_per_unit_values() -> None:
    points = [(1.0, 0.4), (8.0, 1.0), (64.0, 1.1), (512.0, 0.02)]
    found = level_departures(points, floor=0.05)
    assert [(i, round(r, 2)) for i, _, _, r in found] == [(1, 2.5), (3, 0.05)]


def _row(threads: int, seconds: float, after_exit: float, ratio: float) -> GrowthRow:
    run = TracedRun(status="ok", work_s=seconds * ratio, stop_s=0.0, analyse_s=after_exit,
                    write_s=0.0, raw_mb=threads * seconds * 0.1)
    return GrowthRow(threads, seconds, 10, seconds, {"full": run, "sampled": run})


def test_departures_name_the_axis_and_where() -> None:
    # after exit: 0.01 s per thread up to 64, 0.1 s per thread beyond; linear in seconds
    rows = [_row(n, s, s * (1 + 0.01 * min(n, 64) + 0.1 * max(0, n - 64)), 1.5)
            for n in (1, 8, 64, 512) for s in (1.0, 10.0)]
    found = [d.text() for d in departures(rows)]
    assert any("full mode, after exit s (per extra thread) at 10 s" in t
               and "over 64->512 threads" in t and "faster" in t for t in found)
    assert not any("per untraced s" in t for t in found)  # the ratio is constant
    notes = growth_notes(rows)
    assert notes[0].startswith("full mode, time after exit, s per extra thread: at 1 s:")


def test_growth_notes_say_so_when_everything_is_linear() -> None:
    rows = [_row(n, s, 1.0 + 0.001 * n * s, 1.5) for n in (1, 8) for s in (1.0, 10.0)]
    assert growth_notes(rows)[-1].startswith("No departure from linear")


def test_fit_event_cost_recovers_a_linear_cost() -> None:
    cases = [(1e5, 2e5), (6e5, 2e5), (3e5, 9e5), (7e6, 8e5), (2e6, 1e5)]
    samples = [(p, v, 0.8 + 20 * p / 1e6 + 13 * v / 1e6) for p, v in cases]
    fit = fit_event_cost(samples)
    assert fit is not None
    assert (fit.fixed_s, fit.per_m_perf, fit.per_m_viztracer) == pytest.approx((0.8, 20, 13))
    assert fit.largest_miss_s == pytest.approx(0, abs=1e-6)


def test_fit_event_cost_declines_what_it_cannot_tell_apart() -> None:
    assert fit_event_cost([(1.0, 1.0, 1.0)] * 3) is None  # too few
    assert fit_event_cost([(n, 2 * n, n) for n in (1e5, 2e5, 3e5, 4e5)]) is None  # collinear


def test_read_run_splits_the_time_after_exit(tmp_path: Path) -> None:
    out = tmp_path / "run"
    raw = out / "raw"
    raw.mkdir(parents=True)
    offset = 1_000_000_000_000  # realtime = monotonic + offset
    (raw / "run.json").write_text(json.dumps({"status": "ok", "go_ns": 2_000_000_000,
                                              "exit_ns": 5_000_000_000}))
    (raw / "markers.jsonl").write_text(
        '{"kind":"phase_start","name":"work","t_ns":2000000000}\n'
        '{"kind":"phase_end","name":"work","t_ns":4500000000}\n')
    (out / "model.json").write_text(json.dumps({
        "sources": {"viztracer": {"used": True, "samples": 1234},
                    "perf": {"used": True, "samples": 99},
                    "sched": {"used": True, "rate_hz": 103.5, "samples": 7},
                    "gil-sampler": {"used": False, "rate_hz": None}},
        "warnings": ["VizTracer's buffer (10 entries) overflowed: ..."]}))
    (out / "report.html").write_bytes(b"x" * 2_000_000)
    os.utime(raw / "run.json", ns=(offset + 6_000_000_000,) * 2)
    os.utime(out / "model.json", ns=(offset + 8_000_000_000,) * 2)
    run = _read_run(out, began_ns=1_000_000_000, ended_ns=9_500_000_000,
                    realtime_offset_ns=offset)
    assert (run.work_s, run.start_s, run.stop_s, run.analyse_s, run.write_s) == \
        pytest.approx((2.5, 1.0, 1.0, 2.0, 1.5))
    assert run.after_exit_s == pytest.approx(4.5)
    assert run.wall_s == pytest.approx(8.5)
    assert (run.events, run.overflow, run.perf_events) == (1234, True, 99)
    assert run.sched_hz == 103.5
    assert math.isnan(run.gil_hz)
    assert run.report_mb == pytest.approx(2.0)
