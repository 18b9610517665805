"""VizTracer's slowdown estimated from this run's calls, and the trace read in batches: pure
functions on tiny fixtures (no timing is measured here; benchmarks/viztracer_cost.py does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

import tracer.model.functions as functions_module
from reports.html import render_report
from reports.perfetto import write_trace
from reports.prose import viztracer_headlines
from reports.summary import print_summary
from tests.fixtures.synthetic_model import build_synthetic_model
from tracer.model.functions import FunctionTrace, ThreadCalls, load_function_trace
from tracer.model.schema import ThreadTimeline, VizTracerCost, VizTracerFigures
from tracer.model.viztracer_cost import (
    COST_UNCERTAINTY,
    CostRange,
    MeasuredCost,
    estimate_slowdown,
    explain_slowdown,
    overflow_sentence,
)

PID = 100
COST = MeasuredCost(python_call_ns=500.0, c_call_ns=250.0, loop_slowdown=1.0)
COSTS = CostRange.of([COST])


def one(cost: MeasuredCost) -> CostRange:
    return CostRange.of([cost])


def thread(tid: int, held: float | None = None, cpu: float = 0.0) -> ThreadTimeline:
    return ThreadTimeline(tid=tid, pid=PID, name=f"t{tid}", start_s=0.0, end_s=10.0,
                          cpu_s=cpu, gil_held_s=held)


def trace(calls: dict[int, tuple[int, int]], **extra: Any) -> FunctionTrace:
    return FunctionTrace(calls={tid: ThreadCalls(python=p, c=c) for tid, (p, c) in calls.items()},
                         **extra)


def test_added_time_is_calls_times_their_measured_cost() -> None:
    # 2M Python calls at 0.5 us and 4M C calls at 0.25 us over two threads: 2 s of CPU
    functions = trace({1: (1_000_000, 2_000_000), 2: (1_000_000, 2_000_000)})
    estimate = estimate_slowdown(functions, COSTS, [thread(1), thread(2)], PID, wall_s=6.0,
                                 parallelism=1.0)
    assert estimate.calls == 6_000_000
    assert estimate.calls_s == pytest.approx(2.0)
    assert estimate.hook_s == 0.0
    assert estimate.added_s == pytest.approx(2.0)
    assert estimate.call_ns == pytest.approx(2.0e9 / 6_000_000)
    # serialised by the GIL: the wall grew by all of it
    assert estimate.slowdown == pytest.approx(6.0 / 4.0)
    assert estimate.slowdown_low == pytest.approx(6.0 / (6.0 - 2.0 * (1 - COST_UNCERTAINTY)))
    assert estimate.slowdown_high == pytest.approx(6.0 / (6.0 - 2.0 * (1 + COST_UNCERTAINTY)))
    assert estimate.call_ns_range == pytest.approx((estimate.call_ns, estimate.call_ns))
    assert estimate.material and not estimate.parallel


def test_first_fill_of_the_buffer_costs_once_per_entry() -> None:
    # 100 ns to fault in each entry's memory: 2M calls into a 1M-entry buffer fill it once
    cost = MeasuredCost(python_call_ns=500.0, c_call_ns=250.0, loop_slowdown=1.0,
                        fresh_entry_ns=100.0)
    functions = trace({1: (2_000_000, 0)})
    estimate = estimate_slowdown(functions, one(cost), [thread(1)], PID, wall_s=10.0,
                                 parallelism=1.0, buffer_entries=1_000_000)
    assert estimate.calls_s == pytest.approx(1.0 + 0.1)
    unbounded = estimate_slowdown(functions, one(cost), [thread(1)], PID, wall_s=10.0,
                                  parallelism=1.0)
    assert unbounded.calls_s == pytest.approx(1.0 + 0.2)
    assert "plus about 0.10 µs each to fill fresh memory" in explain_slowdown(estimate)


def test_profile_hook_share_comes_from_the_python_time_left_over() -> None:
    # Python 3.11: a call-free loop ran 2x slower; a thread that held the GIL 4 s, 1 s of it
    # the calls' own cost, spent the other 3 s in bytecode that ran 2x slower: 1.5 s added.
    cost = MeasuredCost(python_call_ns=1000.0, c_call_ns=1000.0, loop_slowdown=2.0)
    functions = trace({1: (1_000_000, 0)})
    estimate = estimate_slowdown(functions, one(cost), [thread(1, held=4.0)], PID, wall_s=5.0,
                                 parallelism=1.0)
    assert estimate.calls_s == pytest.approx(1.0)
    assert estimate.hook_s == pytest.approx(1.5)
    assert estimate.added_s == pytest.approx(2.5)
    # without a GIL source, the thread's CPU time stands in for its Python time
    no_gil = estimate_slowdown(functions, one(cost), [thread(1, cpu=4.0)], PID, wall_s=5.0,
                               parallelism=1.0)
    assert no_gil.hook_s == pytest.approx(1.5)


def test_parallel_threads_give_a_range_from_one_threads_share_to_the_sum() -> None:
    functions = trace({1: (2_000_000, 0), 2: (1_000_000, 0)})
    estimate = estimate_slowdown(functions, COSTS, [thread(1), thread(2)], PID, wall_s=5.0,
                                 parallelism=1.8)
    assert estimate.parallel
    assert estimate.added_s == pytest.approx(1.5)
    # at least the busiest thread's calls at the cheap end, at most all of them at the dear end
    assert estimate.added_low_s == pytest.approx(1.0 * (1 - COST_UNCERTAINTY))
    assert estimate.added_high_s == pytest.approx(1.5 * (1 + COST_UNCERTAINTY))
    assert estimate.slowdown_low < estimate.slowdown
    text = explain_slowdown(estimate)
    assert "between 0.80 and 1.80 s" in text and "parallel" in text


def test_measurements_at_start_up_and_exit_bracket_the_cost() -> None:
    slow = MeasuredCost(python_call_ns=200.0, c_call_ns=200.0, loop_slowdown=1.0)
    fast = MeasuredCost(python_call_ns=100.0, c_call_ns=100.0, loop_slowdown=1.0)
    functions = trace({1: (10_000_000, 0)})
    estimate = estimate_slowdown(functions, CostRange.of([slow, fast]), [thread(1)], PID,
                                 wall_s=5.0, parallelism=1.0)
    assert estimate.call_ns == pytest.approx(150.0)
    assert estimate.added_s == pytest.approx(1.5)
    assert estimate.added_low_s == pytest.approx(1.0 * (1 - COST_UNCERTAINTY))
    assert estimate.added_high_s == pytest.approx(2.0 * (1 + COST_UNCERTAINTY))
    text = explain_slowdown(estimate)
    assert "0.10 µs-0.20 µs, measured at start-up and at exit" in text


def test_a_thread_cannot_have_lost_more_than_it_held_the_gil() -> None:
    # measured on a slow moment: 4 s of calls on a thread that held the GIL for 3 s
    functions = trace({1: (8_000_000, 0)})
    estimate = estimate_slowdown(functions, COSTS, [thread(1, held=3.0)], PID,
                                 wall_s=5.0, parallelism=1.0)
    assert estimate.capped and estimate.added_s == pytest.approx(3.0)
    assert "held the GIL" in explain_slowdown(estimate)


def test_calls_filling_the_run_give_a_lower_bound_only() -> None:
    functions = trace({1: (9_000_000, 0)})  # 4.5 s of calls in a 5 s run
    estimate = estimate_slowdown(functions, COSTS, [thread(1)], PID, wall_s=5.0, parallelism=1.0)
    assert estimate.open_ended and estimate.slowdown_high is None
    assert estimate.figures().slowdown_high is None
    assert "at least" in explain_slowdown(estimate)


def test_an_overflowed_trace_is_scaled_up_from_the_part_kept() -> None:
    # the kept calls returned in the last 2 s of an 8 s run: 4x as many were made
    functions = trace({1: (1_000_000, 0)}, overflow=True, kept_from_s=6.0)
    estimate = estimate_slowdown(functions, COSTS, [thread(1)], PID, wall_s=8.0, parallelism=1.0)
    assert estimate.extrapolated and estimate.calls == 4_000_000
    assert estimate.calls_s == pytest.approx(2.0)
    assert "about 4.0M calls" in explain_slowdown(estimate)
    sentence = overflow_sentence(functions, 1_000_000, 8.0)
    assert "1,000,000 entries" in sentence and "75%" in sentence and "last 2.0 s" in sentence


def test_explanation_quotes_both_inputs() -> None:
    functions = trace({1: (4_100_000, 0)})
    cost = MeasuredCost(python_call_ns=900.0, c_call_ns=900.0, loop_slowdown=1.0)
    estimate = estimate_slowdown(functions, one(cost), [thread(1)], PID, wall_s=6.2,
                                 parallelism=1.0)
    text = explain_slowdown(estimate)
    assert "4.1M calls at about 0.90 µs each (measured at start-up" in text
    assert "added about 3.69 s to this 6.20 s run" in text
    assert "about 2.5x slower than it would without VizTracer" in text


def test_lock_contention_is_named_as_left_out() -> None:
    estimate = estimate_slowdown(trace({1: (1_000_000, 0)}), COSTS, [thread(1)],
                                 PID, wall_s=5.0, parallelism=1.0)
    assert "contended" not in explain_slowdown(estimate, contended=10)
    assert "5,000 contended lock acquisitions" in explain_slowdown(estimate, contended=5000)


def test_cost_of_recordings_made_before_c_calls_were_measured_apart() -> None:
    old = MeasuredCost.from_raw({"loop_slowdown": 1.78, "call_overhead_ns": 170.0})
    assert old == MeasuredCost(python_call_ns=170.0, c_call_ns=170.0, loop_slowdown=1.78)
    assert MeasuredCost.from_raw({}) is None


# -- the trace, read in batches -------------------------------------------------------------------

def viztracer_file(path: Path, events: list[dict[str, Any]], overflow: bool = False) -> None:
    """VizTracer's compact layout, as its C dumper writes it."""
    meta = [{"ph": "M", "pid": PID, "tid": 1, "name": "thread_name", "args": {"name": "worker"}}]
    path.write_bytes(orjson.dumps({"traceEvents": meta + events,
                                   "viztracer_metadata": {"overflow": overflow}}))


def calls(n: int, tid: int = 1, start_us: float = 1000.0) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        name = "tiny (prog.py:1)" if i % 3 else "builtins.len"
        out.append({"pid": PID, "tid": tid, "ts": start_us + i, "ph": "X", "cat": "fee",
                    "dur": 0.5, "name": name})
    return out


@pytest.mark.parametrize("batch_bytes", [200, 1 << 20])
def test_trace_is_counted_and_shifted_batch_by_batch(batch_bytes: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functions_module, "BATCH_BYTES", batch_bytes)
    path = tmp_path / "viztracer.json"
    events = calls(300) + calls(30, tid=2, start_us=5000.0)
    events.append({"pid": PID, "tid": 1, "ts": 1500.0, "ph": "i", "name": "threadscope:x",
                   "s": "t", "args": {"t_ns": 1}})
    viztracer_file(path, events)
    # VizTracer's us clock equals monotonic ns / 1000; t0 is 1 ms in
    loaded = load_function_trace(path, [[0.0, 0], [10_000.0, 10_000_000]], t0_ns=1_000_000)
    assert loaded.entries == 331 and not loaded.overflow
    assert loaded.thread_names == {1: "worker"}
    assert loaded.calls[1] == ThreadCalls(python=200, c=100)
    assert loaded.calls[2] == ThreadCalls(python=20, c=10)
    assert loaded.kept_from_s == pytest.approx(0.0, abs=1e-6)  # the first call returned at t0
    kept = loaded.events()
    assert len(kept) == 331 and all(e.get("ph") != "M" for e in kept)
    assert kept[0]["ts"] == pytest.approx(0.0) and kept[1]["ts"] == pytest.approx(1.0)
    if batch_bytes == 200:
        assert len(loaded.chunks) > 10


def test_trace_that_filled_the_buffer_overflowed(tmp_path: Path) -> None:
    path = tmp_path / "viztracer.json"
    viztracer_file(path, calls(50))
    assert load_function_trace(path, [], 0, buffer_entries=50).overflow
    assert not load_function_trace(path, [], 0, buffer_entries=51).overflow
    viztracer_file(path, calls(50), overflow=True)
    assert load_function_trace(path, [], 0).overflow


def test_a_pretty_printed_trace_is_read_whole(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functions_module, "BATCH_BYTES", 64)
    path = tmp_path / "viztracer.json"
    path.write_text(json.dumps({"traceEvents": calls(40)}, indent=2))
    loaded = load_function_trace(path, [], 0)
    assert loaded.entries == 40 and loaded.total_calls == 40
    path.write_text(json.dumps(calls(7)))  # a bare list, as old VizTracer wrote
    assert load_function_trace(path, [], 0).total_calls == 7


def test_chunks_are_spliced_into_trace_json(tmp_path: Path) -> None:
    path = tmp_path / "viztracer.json"
    viztracer_file(path, calls(25))
    loaded = load_function_trace(path, [], 0)
    out = tmp_path / "trace.json"
    write_trace(build_synthetic_model(), out, function_chunks=[*loaded.chunks, b"[]"])
    events = orjson.loads(out.read_bytes())["traceEvents"]
    assert len([e for e in events if e.get("cat") == "fee"]) == 25
    assert events[0]["ph"] == "M"


# -- said up front --------------------------------------------------------------------------------

def viztracer_cost(calls: int, slowdown: float, low: float, high: float | None,
                   wall_s: float) -> VizTracerCost:
    """The cost figures of a run of ``wall_s`` that ``calls`` slowed by ``slowdown`` (``low`` to
    ``high``); the seconds added follow from the ratios."""
    def added(ratio: float) -> float:
        return round(wall_s - wall_s / ratio, 3)

    return VizTracerCost(
        calls=calls, calls_extrapolated=False, call_ns=round(added(slowdown) * 1e9 / calls, 1),
        added_s=added(slowdown), added_low_s=added(low),
        added_high_s=added(high) if high is not None else wall_s,
        slowdown=slowdown, slowdown_low=low, slowdown_high=high)


def slowed_model() -> Any:
    model = build_synthetic_model()
    model.metrics.viztracer = VizTracerFigures(
        overflow=True, dropped_share=0.4,
        cost=viztracer_cost(4_100_000, 2.5, 1.9, 3.5, model.wall_s))
    return model


def test_headlines_say_overflow_first_then_the_slowdown() -> None:
    lines = viztracer_headlines(slowed_model())
    assert "overflowed" in lines[0] and "40%" in lines[0]
    assert "about 2.5x (1.9-3.5x)" in lines[1] and "4.1M calls" in lines[1]
    quiet = build_synthetic_model()
    quiet.metrics.viztracer = VizTracerFigures(
        overflow=False, cost=viztracer_cost(100_000, 1.1, 1.1, 1.1, quiet.wall_s))
    assert viztracer_headlines(quiet) == []


def test_summary_and_report_put_them_before_the_numbers(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    print_summary(slowed_model(), tmp_path, console)
    text = console.export_text()
    assert text.index("buffer overflowed") < text.index("slowed this run") < text.index("wall ")
    render_report(slowed_model(), tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert 'id="viztracer-banner"' in page
    assert page.index('id="viztracer-banner"') < page.index('id="explanation"')
