"""One recorder loop for `run`, `attach` and the API: recorders start in order and stop in reverse,
one that cannot run is left out with its reason, and one that fails never costs the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracer.errors import RecorderUnavailable
from tracer.model.schema import TURNED_OFF, Source
from tracer.options import RecordOptions
from tracer.recorders.base import RecordContext, Recorder
from tracer.recorders.lifecycle import RecorderSet, build_recorders, recorder_context


class Fake(Recorder):
    def __init__(self, name: str, log: list[str], fails: str = "") -> None:
        self.name = name
        self.log = log
        self.fails = fails  # "check" | "start" | "start-bug" | "stop" | "describe" | ""

    def _step(self, step: str) -> None:
        self.log.append(f"{step} {self.name}")
        if self.fails == step:
            raise RecorderUnavailable(f"{self.name} cannot {step}")
        if self.fails == f"{step}-bug":
            raise RuntimeError(f"{self.name} broke")

    def check(self, ctx: RecordContext) -> None:
        self._step("check")

    def start(self, ctx: RecordContext) -> None:
        self._step("start")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fails == "stop":
            raise RuntimeError(f"{self.name} broke")

    def describe(self) -> Source:
        if self.fails == "describe":
            raise RuntimeError(f"{self.name} broke")
        return Source(used=True, samples=1)

    def final_dump(self) -> None:
        self.log.append(f"final {self.name}")

    def progress(self) -> str:
        return f"{self.name} going"


def _ctx(tmp_path: Path) -> RecordContext:
    return recorder_context(RecordOptions(rate_hz=50.0, perf_budget=False), tmp_path, "python", 7)


def _run(tmp_path: Path, *recorders: Recorder) -> RecorderSet:
    group = RecorderSet(recorders)
    ctx = _ctx(tmp_path)
    group.check(ctx)
    with group.started(ctx):
        pass
    return group


def test_start_in_order_stop_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    group = _run(tmp_path, Fake("a", log), Fake("b", log))
    assert log == ["check a", "check b", "start a", "start b", "stop b", "stop a"]
    assert list(group.sources) == ["b", "a"] and all(s.used for s in group.sources.values())


def test_unavailable_recorders_are_left_out_with_the_reason(tmp_path: Path) -> None:
    log: list[str] = []
    group = _run(tmp_path, Fake("a", log, fails="check"), Fake("b", log, fails="start"),
                 Fake("c", log))
    assert log == ["check a", "check b", "check c", "start b", "start c", "stop c"]
    assert group.sources["a"] == Source(used=False, reason="a cannot check")
    assert group.sources["b"] == Source(used=False, reason="b cannot start")
    assert group.sources["c"].used


def test_a_failing_stop_or_describe_costs_the_others_nothing(tmp_path: Path) -> None:
    log: list[str] = []
    group = _run(tmp_path, Fake("a", log), Fake("b", log, fails="describe"),
                 Fake("c", log, fails="stop"))
    assert log[-3:] == ["stop c", "stop b", "stop a"]
    assert group.sources["a"].used
    assert group.sources["c"].used and "stopping it failed: RuntimeError: c broke" in (
        group.sources["c"].notes)
    assert group.sources["b"].used is False and "RuntimeError: b broke" in group.sources["b"].reason


def test_every_started_recorder_stops_when_the_block_or_a_start_fails(tmp_path: Path) -> None:
    log: list[str] = []
    group = RecorderSet([Fake("a", log), Fake("b", log)])
    with pytest.raises(ValueError), group.started(_ctx(tmp_path)):
        raise ValueError("the target could not be told to go")
    assert log[-2:] == ["stop b", "stop a"]

    log.clear()
    group = RecorderSet([Fake("a", log), Fake("b", log, fails="start-bug"), Fake("c", log)])
    with pytest.raises(RuntimeError), group.started(_ctx(tmp_path)):
        pass
    assert log == ["start a", "start b", "stop a"]


def test_final_dump_and_progress_reach_the_running_recorders_only(tmp_path: Path) -> None:
    log: list[str] = []
    group = RecorderSet([Fake("a", log), Fake("b", log, fails="start")])
    with group.started(_ctx(tmp_path)):
        assert group.progress() == ["a going"]
        group.final_dump()
    assert "final a" in log and "final b" not in log


def test_turned_off_sources_are_marked_as_the_users_choice() -> None:
    group = RecorderSet([])
    group.note_turned_off(RecordOptions(pyspy=False).turned_off())
    assert set(group.sources) == {"viztracer", "py-spy"}
    assert group.sources["py-spy"] == Source(used=False, reason=TURNED_OFF, off_by_choice=True)


def test_the_options_choose_the_recorders_and_tell_them_the_run(tmp_path: Path) -> None:
    names = [r.name for r in build_recorders(RecordOptions())]
    assert names == ["sched", "gil-sampler", "py-spy", "perf"]
    assert [r.name for r in build_recorders(RecordOptions(sched=False, perf=False))] == [
        "gil-sampler", "py-spy"]
    ctx = _ctx(tmp_path)
    assert (ctx.pid, ctx.rate_hz, ctx.options) == (7, 50.0, {"perf_budget": False})


def test_the_base_recorder_keeps_no_final_state(tmp_path: Path) -> None:
    """Recorders that do not override final_dump are left alone when a run is stopped early."""

    class Plain(Fake):
        final_dump = Recorder.final_dump

    log: list[str] = []
    group = RecorderSet([Plain("a", log)])
    with group.started(_ctx(tmp_path)):
        group.final_dump()
    assert log == ["start a", "stop a"]
