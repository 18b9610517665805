"""Every source lands on one clock: a marker seen by two sources lands at the same time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer

# The OS sampler reads every 5 ms and the GIL sampler every 1 ms; a thread that starts spinning
# may wait a few ms for a core on a loaded 2-core machine. 50 ms is several periods wide and far
# below the 300-400 ms phases. perf's events are exact: the 50 ms there is the scheduling slack.
SAMPLER_TOLERANCE_S = 0.050
VIZTRACER_TOLERANCE_S = 0.002

SOURCES = {
    # source: (flags that leave it the finest source of thread states, states it reports). perf
    # alone sees a lone spinner on the CPU but no GIL event (nobody waits for the GIL), so the
    # hold is not proven: on_cpu.
    "sched": (["--no-perf", "--no-gil-sampler"], ("on_cpu",)),
    "gil-sampler": (["--no-perf"], ("running",)),
    "perf": (["--no-gil-sampler"], ("running", "on_cpu")),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_states_align_with_markers(source: str, tmp_path: Path) -> None:
    flags, busy_states = SOURCES[source]
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--no-viztracer", *flags,
                    str(PROGRAMS / "spin_marked.py"))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    if not model["sources"].get(source, {}).get("used"):
        pytest.skip(f"{source} unavailable here: {model['sources'].get(source, {}).get('reason')}")
    marks = {m["name"]: m["start"] for m in model["markers"] if m["kind"] == "mark"}
    spin_start, spin_end = marks["spin_start"], marks["spin_end"]
    assert 0.35 <= spin_end - spin_start <= 3.0  # at least the 0.4 s spin; more when starved

    # The thread came on the CPU (took the GIL) when it started spinning and left it when it
    # stopped; other processes may preempt it in between, which only splits the interval.
    (spinner,) = thread_named(model, "spinner")
    busy = [i for i in spinner["intervals"]
            if i["state"] in busy_states and i["end"] - i["start"] > 0.002]
    assert busy, spinner["intervals"]
    assert abs(busy[0]["start"] - spin_start) < SAMPLER_TOLERANCE_S
    assert abs(busy[-1]["end"] - spin_end) < SAMPLER_TOLERANCE_S


def test_viztracer_sees_markers_at_the_same_time(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--no-perf", "--viztracer",
                    str(PROGRAMS / "spin_marked.py"))
    assert result.returncode == 0, result.stderr
    marks = {m["name"]: m["start"] for m in load_model(out)["markers"] if m["kind"] == "mark"}
    trace = json.loads((out / "trace.json").read_text())["traceEvents"]
    instants = {e["name"]: e["ts"] / 1e6 for e in trace
                if str(e.get("name", "")).startswith("threadscope:")}
    assert abs(instants["threadscope:spin_start"] - marks["spin_start"]) < VIZTRACER_TOLERANCE_S
    spins = [e for e in trace
             if e.get("ph") == "X" and str(e.get("name", "")).startswith("spin_for")]
    assert spins
    assert abs(spins[0]["ts"] / 1e6 - marks["spin_start"]) < VIZTRACER_TOLERANCE_S
