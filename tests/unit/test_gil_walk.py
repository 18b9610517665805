"""The C walk of one thread's GIL events gives what the Python walk (its reference) gives."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_gil_exact import _fixture_events, _header
from tracer.model import gil_walk
from tracer.model.gil_events import EV_ORDER, Ev, EventColumns
from tracer.model.gil_exact import reconstruct
from tracer.model.gil_walk import WalkOutput, walk_thread

if not gil_walk.NATIVE and os.environ.get("CI") != "true":
    pytest.skip("the C walk is not built here", allow_module_level=True)

US = 1_000


def test_ci_has_the_c_walk() -> None:
    assert gil_walk.NATIVE, "setup.py should have built tracer/model/_gilwalk"


def _same(a: WalkOutput, b: WalkOutput) -> None:
    for name in ("out_start", "out_end", "out_state", "stretch_start", "stretch_end",
                 "stretch_cpu", "stretch_hold", "hold_known"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.tolist() == right.tolist(), name
    assert a.waits == b.waits
    assert a.wants == b.wants
    assert a.releases == b.releases


def _both(times: list[int], kinds: list[int], t0_ns: int, end_ns: int) -> WalkOutput:
    t, k = np.array(times, dtype=np.int64), np.array(kinds, dtype=np.int8)
    native = walk_thread(t, k, t0_ns, end_ns)
    python = walk_thread(t, k, t0_ns, end_ns, pure=True)
    _same(native, python)
    return native


def test_the_recorded_convoy_walks_alike_in_c_and_in_python() -> None:
    truth = _header("truth")
    go_ns, end_ns = int(str(truth["go_ns"])), int(str(truth["end_ns"]))
    columns = EventColumns.from_events(_fixture_events())
    walked = 0
    for _, times, kinds in columns.thread_arrays():
        out = _both(times.tolist(), kinds.tolist(), go_ns, end_ns)
        walked += len(out.out_start) + len(out.stretch_start)
    assert walked > 100  # the fixture's threads wait, hold and sleep: the walk has work


def test_a_waiter_woken_by_a_handoff_walks_alike() -> None:
    codes = {kind: n for n, kind in enumerate(EV_ORDER)}
    script = [(0, Ev.START), (10, Ev.WAIT), (11, Ev.SWITCH_OUT), (500, Ev.SWITCH_IN),
              (501, Ev.HANDOFF_WAKE), (900, Ev.WAKE), (950, Ev.WAIT), (960, Ev.SWITCH_OUT),
              (2000, Ev.SWITCH_IN), (2001, Ev.NO_SLEEP), (3000, Ev.HANDOFF_WAIT),
              (3100, Ev.EXIT)]
    out = _both([t * US for t, _ in script], [codes[k] for _, k in script], 0, 4000 * US)
    assert (out.waits[0].start_ns, out.waits[0].end_ns) == (10 * US, 501 * US)
    assert out.releases == [900 * US, 3000 * US]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(range(len(EV_ORDER)))),
                max_size=120),
       st.integers(0, 3000), st.integers(0, 6000))
def test_any_event_sequence_walks_alike(steps: list[tuple[int, int]], t0: int,
                                        length: int) -> None:
    """Gaps of 0-200 us (ties included, and gaps past the wait loop's 50 us bound), any kind in
    any order, windows that start or end inside the events."""
    times, at = [], 0
    for gap, _ in steps:
        at += gap * US
        times.append(at)
    _both(times, [kind for _, kind in steps], t0 * US, (t0 + length) * US)


def test_reconstruct_is_the_same_with_either_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = _header("truth")
    go_ns, end_ns = int(str(truth["go_ns"])), int(str(truth["end_ns"]))
    events = _fixture_events()
    native = reconstruct(events, go_ns, end_ns)
    monkeypatch.setattr(gil_walk, "_core", None)
    python = reconstruct(events, go_ns, end_ns)
    assert native == python
    assert any(iv.state == "running" for t in native.values() for iv in t.intervals)
