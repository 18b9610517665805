"""Every source lands on one clock: a marker seen by two sources lands at the same time."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import PROGRAMS, load_model, thread_named, tracer

# The OS sampler reads every 5 ms; a thread that starts spinning may wait a few ms for a core on a
# loaded 2-core machine. 30 ms is several periods wide and still far below the 300 ms phases.
SAMPLER_TOLERANCE_S = 0.030
VIZTRACER_TOLERANCE_S = 0.002


def test_markers_align_across_sources(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = tracer("run", "--out", str(out), "--no-perf", str(PROGRAMS / "spin_marked.py"))
    assert result.returncode == 0, result.stderr
    model = load_model(out)
    marks = {m["name"]: m["start"] for m in model["markers"] if m["kind"] == "mark"}
    spin_start, spin_end = marks["spin_start"], marks["spin_end"]
    assert 0.35 <= spin_end - spin_start <= 1.0

    (spinner,) = thread_named(model, "spinner")
    # The sampler saw the thread come on the CPU when it started spinning and leave it when it
    # stopped (other processes may preempt it in between; that only splits the interval).
    on_cpu = [i for i in spinner["intervals"] if i["state"] == "on_cpu"]
    assert on_cpu, spinner["intervals"]
    assert abs(on_cpu[0]["start"] - spin_start) < SAMPLER_TOLERANCE_S
    assert abs(on_cpu[-1]["end"] - spin_end) < SAMPLER_TOLERANCE_S

    # VizTracer saw the same markers as instant events, and the spin call between them.
    import json

    trace = json.loads((out / "trace.json").read_text())["traceEvents"]
    instants = {e["name"]: e["ts"] / 1e6 for e in trace
                if str(e.get("name", "")).startswith("threadscope:")}
    assert abs(instants["threadscope:spin_start"] - spin_start) < VIZTRACER_TOLERANCE_S
    spins = [e for e in trace
             if e.get("ph") == "X" and str(e.get("name", "")).startswith("spin_for")]
    assert spins
    assert abs(spins[0]["ts"] / 1e6 - spin_start) < VIZTRACER_TOLERANCE_S
