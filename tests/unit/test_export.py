"""The flame-graph exports: folded stacks and speedscope's file, from a model's ``where`` rows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tracer.export import (
    SPEEDSCOPE_SCHEMA,
    NoStacks,
    Selection,
    UnknownState,
    UnknownThread,
    collapsed_bytes,
    collapsed_lines,
    folded_frame,
    select_threads,
    speedscope_bytes,
    speedscope_document,
)
from tracer.model.schema import (
    GIL_WAIT,
    RUNNING,
    Frame,
    RunMetrics,
    RunModel,
    StackSource,
    Target,
    ThreadTimeline,
    Where,
    WhereRow,
)
from tracer.raw_files import RunStatus

MAIN, W1, W2 = 100, 101, 102
MODULE = Frame("<module>", "app.py", 1)
MAIN_FN = Frame("main", "app.py", 20)
WORK = Frame("Worker.crunch", "app.py", 7)
HOSTILE = Frame("evil;name\nwith break ", "we;ird.py", 3)


def build_where_model(rows: list[WhereRow] | None = None) -> RunModel:
    """Three threads, two of them named alike, and a few seconds attributed to stacks."""
    threads = [
        ThreadTimeline(MAIN, 1, "MainThread", 0.0, 3.0, 1.0, is_main=True),
        ThreadTimeline(W1, 1, "worker", 0.1, 3.0, 1.0),
        ThreadTimeline(W2, 1, "worker", 0.2, 3.0, 1.0),
    ]
    if rows is None:
        rows = [
            WhereRow(MAIN, RUNNING, (MODULE, MAIN_FN), 0.25),
            WhereRow(MAIN, GIL_WAIT, (MODULE, MAIN_FN), 0.5),
            WhereRow(W1, RUNNING, (WORK,), 1.0),
            WhereRow(W1, GIL_WAIT, (WORK,), 0.125),
            WhereRow(W2, RUNNING, (WORK, HOSTILE), 0.375),
            WhereRow(W2, GIL_WAIT, (), 0.0625),
        ]
    return RunModel(
        target=Target("script", "app.py", ["app.py"], "python3", "3.12", 0, RunStatus.OK),
        t0_ns=0, wall_s=3.0, cores=4, sources={}, threads=threads,
        metrics=RunMetrics(cpu_s=3.0, parallelism=None, cores=4, threads=3),
        where=Where(StackSource.VIZTRACER, None, rows),
    )


def weights(lines: list[str]) -> dict[str, int]:
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}


def test_collapsed_weights_sum_to_the_seconds_in_microseconds() -> None:
    model = build_where_model()
    lines = weights(collapsed_lines(model, Selection()))
    assert sum(lines.values()) == round(sum(r.seconds for r in model.where.rows) * 1e6)  # type: ignore[union-attr]
    assert lines["MainThread (tid 100);<module> (app.py:1);main (app.py:20)"] == 750_000


def test_collapsed_roots_each_stack_at_its_thread_when_several() -> None:
    model = build_where_model()
    roots = {stack.split(";")[0] for stack in weights(collapsed_lines(model, Selection()))}
    assert roots == {"MainThread (tid 100)", "worker (tid 101)", "worker (tid 102)"}
    alone = weights(collapsed_lines(model, Selection(tids=frozenset({W1}))))
    assert alone == {"Worker.crunch (app.py:7)": 1_125_000}  # one thread: no root


def test_collapsed_filters_by_state() -> None:
    lines = weights(collapsed_lines(build_where_model(), Selection(GIL_WAIT)))
    assert lines == {
        "MainThread (tid 100);<module> (app.py:1);main (app.py:20)": 500_000,
        "worker (tid 101);Worker.crunch (app.py:7)": 125_000,
        "worker (tid 102);(no Python frames)": 62_500,
    }


def test_thread_names_select_every_thread_of_that_name_and_tids_one() -> None:
    model = build_where_model()
    assert select_threads(model, "worker") == frozenset({W1, W2})
    assert select_threads(model, str(MAIN)) == frozenset({MAIN})
    assert select_threads(model, None) is None
    with pytest.raises(UnknownThread, match="MainThread, worker"):
        select_threads(model, "nobody")


def test_hostile_names_cannot_break_a_folded_line() -> None:
    data = collapsed_bytes(build_where_model(), Selection(RUNNING, frozenset({W2})))
    assert data == b"Worker.crunch (app.py:7);evil:name\\nwith break  (we:ird.py:3) 375000\n"
    assert folded_frame(" a;b\r\nc\td ") == "a:b\\nc d"
    assert folded_frame("   ") == "?"
    for line in collapsed_lines(build_where_model(), Selection()):
        stack, weight = line.rsplit(" ", 1)
        assert weight.isdigit() and "\n" not in line and not stack.endswith(" ")


def test_empty_or_missing_stacks_say_so() -> None:
    model = build_where_model()
    model.where = None
    with pytest.raises(NoStacks):
        collapsed_lines(model, Selection())
    with pytest.raises(NoStacks):
        speedscope_document(build_where_model([]), Selection())
    with pytest.raises(NoStacks, match="lock_wait"):
        collapsed_lines(build_where_model(), Selection("lock_wait"))
    with pytest.raises(UnknownState, match="running"):
        collapsed_lines(build_where_model(), Selection("sleeping"))
    assert NoStacks.exit_code == 1


def _check_speedscope(document: dict[str, Any]) -> None:
    """The keys speedscope's file-format-schema.json requires, with their types."""
    assert document["$schema"] == SPEEDSCOPE_SCHEMA
    assert isinstance(document["exporter"], str) and isinstance(document["name"], str)
    frames = document["shared"]["frames"]
    for frame in frames:
        assert isinstance(frame["name"], str) and isinstance(frame["file"], str)
        assert isinstance(frame["line"], int)
    for profile in document["profiles"]:
        assert set(profile) >= {"type", "name", "unit", "startValue", "endValue", "samples",
                                "weights"}
        assert profile["type"] == "sampled" and profile["unit"] == "seconds"
        assert len(profile["samples"]) == len(profile["weights"])
        assert all(0 <= i < len(frames) for stack in profile["samples"] for i in stack)
        assert profile["endValue"] - profile["startValue"] == pytest.approx(sum(profile["weights"]))


def test_speedscope_has_one_profile_per_thread() -> None:
    model = build_where_model()
    document = orjson.loads(speedscope_bytes(model, Selection()))
    _check_speedscope(document)
    assert [p["name"] for p in document["profiles"]] == [
        "MainThread (tid 100): all states", "worker (tid 101): all states",
        "worker (tid 102): all states"]
    main = document["profiles"][0]
    assert main["weights"] == [0.75]  # running and gil_wait of one stack, together
    frames = document["shared"]["frames"]
    assert [frames[i]["name"] for i in main["samples"][0]] == ["<module>", "main"]  # root first
    assert frames[document["profiles"][2]["samples"][0][1]] == {
        "name": HOSTILE.function, "file": HOSTILE.file, "line": 3}  # JSON needs no escaping
    assert sum(p["endValue"] for p in document["profiles"]) == pytest.approx(2.3125)


def test_speedscope_filters_by_state_and_thread() -> None:
    document = speedscope_document(build_where_model(), Selection(GIL_WAIT, frozenset({W1, W2})))
    _check_speedscope(document)
    assert [p["name"] for p in document["profiles"]] == ["worker (tid 101): gil_wait",
                                                         "worker (tid 102): gil_wait"]
    assert document["profiles"][1]["samples"] == [[]] and document["profiles"][1]["weights"] == [
        0.0625]
