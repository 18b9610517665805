"""The sampled-only mode on a real convoy (an echo client and server next to a CPU-bound thread):
the sampler records each thread's context-switch and on-CPU counters, and every thread's figures
come with bounds that hold together. Whether the convoy forms depends on the run (the I/O thread
may win the GIL back each time), so the counts themselves are not asserted here;
benchmarks/gil_accuracy.py compares them with an independent count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import REPO, load_model, pyenv_interpreters, tracer

PROGRAM = REPO / "benchmarks" / "programs" / "gil_echo_convoy.py"


@pytest.mark.parametrize("python", pyenv_interpreters()[:1])
def test_convoy_figures_come_with_consistent_bounds(python: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = tracer("run", "--no-perf", "--no-pyspy", "--no-viztracer", "--quiet", "--python",
                    python, "--out", str(out), str(PROGRAM))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "raw" / "gil_samples.jsonl").read_text()
            .splitlines() if '"th"' in line]
    # a blocked thread's row also says the syscall it sleeps in
    assert rows and all(len(entry) == 5 or (entry[1] == "B" and len(entry) == 6)
                        for row in rows for entry in row["th"])
    last: dict[int, tuple[int, int]] = {}
    for row in rows:  # times scheduled and on-CPU time only ever grow
        for tid, _, _, runs, cpu, *_ in row["th"]:
            before = last.get(tid, (0, 0))
            assert runs >= before[0] and cpu >= before[1]
            last[tid] = (runs, cpu)

    model = load_model(out)
    measured = [t for t in model["threads"] if t["gil_waits"] is not None]
    assert {"echo-server", "echo-client", "cpu-spin"} <= {t["name"] for t in measured}
    for thread in measured:
        figures = thread["gil_sampled"]
        assert figures is not None, thread["name"]
        high = figures["gil_waits_high"]
        assert figures["gil_waits_low"] <= thread["gil_waits"], thread["name"]
        assert high is None or thread["gil_waits"] <= high, thread["name"]
        longest = thread["max_gil_wait_s"]
        assert figures["max_gil_wait_low_s"] <= longest <= figures["max_gil_wait_high_s"]
        for share in ("gil_held_share", "gil_wait_share"):
            assert 0 <= figures[share] <= 1 and 0 <= figures[f"{share}_pm"] <= 1
    waiting = {t["name"]: t for t in measured}
    # The I/O threads waited for the GIL at least once per few round trips, whatever the run.
    assert waiting["echo-server"]["gil_waits"] >= 1 and waiting["echo-client"]["gil_waits"] >= 1
