"""model.json is the typed model written out: what is saved loads back as the same typed value,
and what a reader cannot trust (another version, an unknown word) is refused, not half-read."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.fixtures.synthetic_model import (
    build_deadlock_model,
    build_lock_model,
    build_synthetic_model,
)
from tracer.errors import CorruptRecording, UnknownSchema
from tracer.model.schema import (
    SCHEMA_VERSION,
    DeadlockStep,
    EndReason,
    HoldDetail,
    LockStats,
    Method,
    RunModel,
    WaitDetail,
)
from tracer.raw_files import RunStatus, SourceName


@pytest.mark.parametrize("build", [build_synthetic_model, build_lock_model, build_deadlock_model])
def test_a_saved_model_loads_back_equal(build: Any) -> None:
    model = build()
    loaded = RunModel.from_dict(orjson.loads(model.to_json_bytes()))
    assert loaded == model


def test_loaded_parts_are_typed_not_dicts() -> None:
    loaded = RunModel.from_dict(orjson.loads(build_deadlock_model().to_json_bytes()))
    assert isinstance(loaded.target.status, RunStatus)
    assert all(isinstance(name, SourceName) for name in loaded.sources)
    assert all(isinstance(m, Method) for m in loaded.figure_sources.values())
    assert all(isinstance(lock, LockStats) for lock in loaded.locks)
    assert all(isinstance(step, DeadlockStep) for cycle in loaded.deadlocks for step in cycle)
    first = next(t for t in loaded.threads if t.name == "first")
    assert first.end_reason is EndReason.KILLED_AT_EXIT
    assert {type(i.detail) for i in first.intervals if i.detail} == {WaitDetail}
    assert {type(h.detail) for h in first.holds} == {HoldDetail}


def test_words_are_written_as_plain_words() -> None:
    raw = orjson.loads(build_lock_model().to_json_bytes())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["target"]["status"] == "ok"
    assert set(raw["sources"]) == {"viztracer", "py-spy", "sched", "perf"}
    assert raw["figure_sources"]["locks"] == "instrumented"
    handoff = raw["locks"][0]["handoffs"][0]
    assert set(handoff) == {"from_tid", "to_tid", "released_s", "acquired_s"}


def test_other_versions_are_refused() -> None:
    raw = orjson.loads(build_synthetic_model().to_json_bytes())
    raw["schema_version"] = SCHEMA_VERSION - 1
    with pytest.raises(UnknownSchema, match="rebuild it"):
        RunModel.from_dict(raw)


@pytest.mark.parametrize("path, value", [
    (("sources",), {"a-recorder-from-the-future": {"used": True}}),
    (("target", "status"), "sideways"),
    (("figure_sources",), {"gil": "guessed"}),
    (("metrics",), {"cpu_s": 1.0}),
])
def test_unknown_words_and_missing_figures_are_a_corrupt_model(path: tuple[str, ...],
                                                               value: Any) -> None:
    raw = orjson.loads(build_synthetic_model().to_json_bytes())
    holder = raw
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    with pytest.raises(CorruptRecording, match="malformed model"):
        RunModel.from_dict(raw, origin="model.json")
